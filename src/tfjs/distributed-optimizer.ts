/**
 * DistributedOptimizer: wraps any tf.Optimizer so that every applied gradient is first all-reduced
 * across ranks. Works with model.fit / fitDataset / trainOnBatch (which call minimize ->
 * applyGradients) and with custom loops that call applyGradients themselves.
 *
 * tfjs calls applyGradients synchronously and disposes the gradients right after it returns, so
 * the all-reduce must finish inside the call: the reducer uses the blocking native all-reduce.
 * Everything that is not gradient handling (class name, config, weights, iterations) is the inner
 * optimizer's, so model.save({includeOptimizer: true}) records e.g. 'Adam' with Adam's state.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';
import { settingDefault, settingEnv } from '../settings.js';
import type { Communicator } from '../types.js';
import { resolveCommunicator } from './default-communicator.js';
import { GradientReducer, type GradientCompression, type ReducerStats } from './gradient-reducer.js';

/** tfjs-core's NamedTensor (not re-exported from its index). */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

// Defaults and variables of fusionBytes / pipelineBytes live in the settings table (src/settings.ts);
// the communicator carries their resolved values (comm.settings).
export const DEFAULT_FUSION_BYTES = settingDefault('fusionBytes');
export const FUSION_BYTES_ENV = settingEnv('fusionBytes');
export const DEFAULT_PIPELINE_BYTES = settingDefault('pipelineBytes');
export const PIPELINE_BYTES_ENV = settingEnv('pipelineBytes');

export interface DistributedOptimizerOptions {
  /**
   * Default: the communicator of the last init(), looked up on every step, so that in an elastic
   * job (runElastic) the optimizer follows each new world without being rebuilt.
   */
  comm?: Communicator;
  /** `avg` (default) divides the sum by the number of ranks, matching one big batch with a mean loss. */
  op?: 'avg' | 'sum';
  /** `fp16`: gradients travel as float16 (half the bytes) and are summed in float32 on every hop. */
  compression?: GradientCompression;
  /** Largest fused bucket in bytes on the wire. Default: comm.settings.fusionBytes ($RINGTRAIN_FUSION_BYTES, else 64 MiB). */
  fusionBytes?: number;
  /**
   * Buckets travel as native all-reduces of at most this many bytes, so that copying the next
   * piece overlaps the transfer of the previous one. 0: one all-reduce per bucket.
   * Default: comm.settings.pipelineBytes ($RINGTRAIN_PIPELINE_BYTES, else 1 MiB).
   */
  pipelineBytes?: number;
  /**
   * k > 1: the gradients of k consecutive calls are averaged locally and all-reduced on every k-th
   * call only, which then updates the weights once (a k-times larger batch). Default 1.
   */
  backwardPassesPerStep?: number;
}

function argumentError(message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: DistributedOptimizer: ${message}`);
}

/** The option when given, else the communicator's resolved setting; `min` is 1 for sizes, 0 where 0 means "off". */
function resolveBytes(option: number | undefined, name: string, fallback: number, min: number): number {
  if (option === undefined) return fallback;
  if (!Number.isFinite(option) || option < min) throw argumentError(`${name} must be a number >= ${min}, got ${option}`);
  return Math.floor(option);
}

function isOptimizer(value: unknown): value is tf.Optimizer {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as tf.Optimizer).applyGradients === 'function' &&
    typeof (value as tf.Optimizer).getConfig === 'function'
  );
}

const wrappers = new WeakSet<object>();

/** True for a DistributedOptimizer (instanceof cannot tell: tf.Optimizer's instance check is structural). */
export function isDistributedOptimizer(value: unknown): boolean {
  return typeof value === 'object' && value !== null && wrappers.has(value);
}

export class DistributedOptimizer extends tf.Optimizer {
  readonly inner: tf.Optimizer;
  private readonly fixedComm: Communicator | undefined;
  readonly op: 'avg' | 'sum';
  readonly compression: GradientCompression;
  readonly fusionBytes: number;
  readonly pipelineBytes: number;
  readonly backwardPassesPerStep: number;
  private readonly reducer: GradientReducer;
  /** Local sums of the passes since the last step (k > 1 only); kept out of any tidy scope. */
  private accumulated: (tf.Tensor | null)[] | undefined;
  private passes = 0;

  constructor(inner: tf.Optimizer, options: DistributedOptimizerOptions = {}) {
    super();
    if (!isOptimizer(inner)) throw argumentError('the first argument must be a tf.Optimizer, e.g. tf.train.adam(1e-3)');
    // Not instanceof: tf.Optimizer's Symbol.hasInstance is structural and matches any optimizer.
    if (wrappers.has(inner)) throw argumentError('the inner optimizer is already a DistributedOptimizer');
    const op = options.op ?? 'avg';
    if (op !== 'avg' && op !== 'sum') throw argumentError(`op must be 'avg' or 'sum', got '${String(op)}'`);
    const compression = options.compression ?? 'none';
    if (compression !== 'none' && compression !== 'fp16') {
      throw argumentError(`compression must be 'none' or 'fp16', got '${String(compression)}'`);
    }
    const k = options.backwardPassesPerStep ?? 1;
    if (!Number.isInteger(k) || k < 1) throw argumentError(`backwardPassesPerStep must be an integer >= 1, got ${k}`);
    this.inner = inner;
    // Checked now so a missing init() fails here; without an explicit comm, every step takes the current one.
    resolveCommunicator(options.comm, 'DistributedOptimizer');
    this.fixedComm = options.comm;
    this.op = op;
    this.compression = compression;
    this.fusionBytes = resolveBytes(options.fusionBytes, 'fusionBytes', this.comm.settings.fusionBytes, 1);
    this.pipelineBytes = resolveBytes(options.pipelineBytes, 'pipelineBytes', this.comm.settings.pipelineBytes, 0);
    this.backwardPassesPerStep = k;
    this.reducer = new GradientReducer(() => this.comm, {
      op,
      compression,
      fusionBytes: this.fusionBytes,
      pipelineBytes: this.pipelineBytes,
      backwardPassesPerStep: k,
    });
    wrappers.add(this);
  }

  /** The communicator the next step reduces over: the one given, else the current world's. */
  get comm(): Communicator {
    return resolveCommunicator(this.fixedComm, 'DistributedOptimizer');
  }

  /** Time and bytes spent all-reducing so far. */
  get stats(): Readonly<ReducerStats> {
    return this.reducer.stats;
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const asList = Array.isArray(variableGradients);
    const names = asList ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    const grads: (tf.Tensor | null)[] = asList
      ? variableGradients.map((v) => v.tensor ?? null)
      : names.map((n) => variableGradients[n] ?? null);

    let local = grads;
    let owned: tf.Tensor[] = [];
    if (this.backwardPassesPerStep > 1) {
      this.accumulate(grads);
      if (this.passes < this.backwardPassesPerStep) return;
      const scale = 1 / this.backwardPassesPerStep;
      const sums = this.accumulated!;
      this.accumulated = undefined;
      this.passes = 0;
      local = sums.map((a) => (a === null ? null : tf.tidy(() => tf.mul(a, scale))));
      tf.dispose(sums.filter((a): a is tf.Tensor => a !== null));
      owned = local.filter((a): a is tf.Tensor => a !== null);
    }

    let reduced: (tf.Tensor | null)[];
    try {
      reduced = this.reducer.reduce(local);
    } finally {
      tf.dispose(owned);
    }
    try {
      if (asList) {
        this.inner.applyGradients(names.map((name, i) => ({ name, tensor: reduced[i] as tf.Tensor })));
      } else {
        const map: tf.NamedTensorMap = {};
        names.forEach((name, i) => {
          map[name] = reduced[i] as tf.Tensor;
        });
        this.inner.applyGradients(map);
      }
    } finally {
      tf.dispose(reduced.filter((t): t is tf.Tensor => t !== null));
    }
  }

  private accumulate(grads: readonly (tf.Tensor | null)[]): void {
    if (this.accumulated !== undefined && this.accumulated.length !== grads.length) {
      throw argumentError(
        `backwardPassesPerStep: pass ${this.passes + 1} has ${grads.length} gradients but the previous passes had ${this.accumulated.length}`,
      );
    }
    const prev = this.accumulated;
    // tf.keep: applyGradients runs inside model.fit's tidy scope, and these must outlive it.
    this.accumulated = grads.map((g, i) => {
      const a = prev?.[i] ?? null;
      if (g === null) return a;
      if (a === null) return tf.keep(tf.clone(g));
      const sum = tf.keep(tf.add(a, g));
      a.dispose();
      return sum;
    });
    this.passes++;
  }

  // ---- everything else is the inner optimizer's ----

  override getClassName(): string {
    return this.inner.getClassName();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.inner.getConfig();
  }

  override get iterations(): number {
    return this.inner.iterations;
  }

  /**
   * As tf.Optimizer's, but the gradients and the loss are freed when the all-reduce fails too (a
   * lost peer in an elastic job must not leak a step's tensors).
   */
  override minimize(f: () => tf.Scalar, returnCost = false, varList?: tf.Variable[]): tf.Scalar | null {
    const { value, grads } = this.computeGradients(f, varList);
    try {
      this.applyGradients(varList != null ? varList.map((v) => ({ name: v.name, tensor: grads[v.name]! })) : grads);
    } catch (e) {
      value.dispose();
      throw e;
    } finally {
      tf.dispose(grads);
    }
    if (returnCost) return value;
    value.dispose();
    return null;
  }

  override computeGradients(f: () => tf.Scalar, varList?: tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
    return this.inner.computeGradients(f, varList);
  }

  override async getWeights(): Promise<NamedTensor[]> {
    return this.inner.getWeights();
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    return this.inner.setWeights(weightValues);
  }

  override async saveIterations(): Promise<NamedTensor> {
    return this.inner.saveIterations();
  }

  override dispose(): void {
    if (this.accumulated) tf.dispose(this.accumulated.filter((a): a is tf.Tensor => a !== null));
    this.accumulated = undefined;
    this.passes = 0;
    this.inner.dispose();
  }
}
