/**
 * PipelineModel: pipeline-parallel (and pipeline x data-parallel) training of a chain of tfjs
 * layers. With comm.size = stages x d, rank r holds stage r mod stages of replica
 * floor(r / stages): a replica's stages are consecutive ranks (so activations, the traffic of
 * every micro-batch, stay between neighbouring ranks, on one host under the launcher's slot
 * order), and the ranks holding one stage form a data-parallel group (comm.split) that
 * all-reduces that stage's gradients once per batch, fused by GradientReducer as
 * DistributedOptimizer does.
 *
 * Every rank passes the same data. A batch of B rows is cut into d contiguous replica shares,
 * each into micro-batches; stage 0 reads their inputs, the last stage their labels. The last
 * stage weights each micro-batch's mean loss by rows / B, so the gradients summed over
 * micro-batches and replicas are exactly those of the whole batch's mean loss, and the optimizer
 * steps once per batch: training equals model.fit on the whole batch up to float rounding.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';
import type { Communicator } from '../types.js';
import { broadcastVariables } from './broadcast-model.js';
import { resolveCommunicator } from './default-communicator.js';
import { isDistributedOptimizer, type NamedTensor } from './distributed-optimizer.js';
import { GradientReducer } from './gradient-reducer.js';
import {
  countLayerParams,
  disposeLayersOutside,
  lazyChain,
  modelChain,
  resolveSource,
  type LayerChain,
  type LayerLike,
  type PipelineModelSource,
  type ShapeLike,
} from './layer-chain.js';
import type { LayerVariableLike } from './model-like.js';
import { allocateFor, broadcastJson, layoutFor, pack, unpack, type TensorSpec } from './packed-transfer.js';
import { agreeOnPipeline } from './pipeline-agreement.js';
import {
  ACTIVATION_TAG,
  GRADIENT_TAG,
  asPipelineCommunicator,
  recvTensor,
  sendTensor,
  type PipelineCommunicator,
} from './pipeline-comm.js';
import { resolveLoss, resolveMetric, type LossOrMetricFn, type ResolvedFn } from './pipeline-losses.js';
import { pipelineSchedule, type PipelineScheduleKind } from './pipeline-schedule.js';
import { balancedRanges, microBatchRows, rangesFromSplitAt, type LayerRange } from './pipeline-split.js';
import { PipelineStage, type BackwardResult } from './pipeline-stage.js';
import { hash32 } from './rank-agreement.js';
import { permutation, seededRandom } from './seeded-random.js';

export interface PipelineModelOptions {
  /** Default: the communicator made by init(). Its size must be a multiple of `stages`. */
  comm?: Communicator;
  /** Pipeline stages K (ranks per replica). */
  stages: number;
  /** Micro-batches M per batch and replica. Default 4. The bubble is (K-1)/(M+K-1). */
  microBatches?: number;
  /** Default '1f1b' (same bubble as GPipe, at most K-s micro-batch inputs held on stage s instead of M). */
  schedule?: PipelineScheduleKind;
  /** First layer index of stages 1..K-1 (input layers not counted). Default: balanced by parameter count. */
  splitAt?: readonly number[];
  /**
   * Seeds Dropout masks (and fit's shuffle): the same seed, data and ranks give the same run.
   * Default: drawn by rank 0 on every call.
   */
  seed?: number;
}

export interface PipelineCompileArgs {
  /** A tf.Optimizer (not a DistributedOptimizer: the pipeline all-reduces itself), or 'sgd' / 'adam' / 'rmsprop' / 'adagrad' with tfjs-layers' default rates. */
  optimizer: tf.Optimizer | 'sgd' | 'adam' | 'rmsprop' | 'adagrad';
  /** A tfjs-layers loss name or (yTrue, yPred) => per-row tensor. */
  loss: string | LossOrMetricFn;
  metrics?: string | LossOrMetricFn | readonly (string | LossOrMetricFn)[];
}

export type PipelineLogs = Record<string, number>;

/** Plain callback objects; called on every rank with the same logs. */
export interface PipelineCallback {
  onTrainBegin?(logs?: PipelineLogs): unknown;
  onTrainEnd?(logs?: PipelineLogs): unknown;
  onEpochBegin?(epoch: number, logs?: PipelineLogs): unknown;
  onEpochEnd?(epoch: number, logs?: PipelineLogs): unknown;
  onBatchBegin?(batch: number, logs?: PipelineLogs): unknown;
  onBatchEnd?(batch: number, logs?: PipelineLogs): unknown;
}

export interface PipelineFitArgs {
  epochs?: number;
  /** Rows per optimizer step, over all replicas (as model.fit's batchSize for one process). Default 32. */
  batchSize?: number;
  /** Reshuffle the rows every epoch, identically on every rank. Default true (as model.fit). */
  shuffle?: boolean;
  callbacks?: PipelineCallback | readonly PipelineCallback[];
  /** Evaluated after every epoch: logs gain val_loss and val_<metric>. */
  validationData?: readonly [tf.Tensor, tf.Tensor];
  /** Ignored (nothing is printed); accepted for model.fit compatibility. */
  verbose?: number;
}

/** Cumulative timings of this rank's training steps, for progress lines and benchmarks. */
export interface PipelineStats {
  /** Optimizer steps (batches) trained. */
  steps: number;
  /** Milliseconds from a step's first micro-batch step until its last message was delivered. */
  scheduleMs: number;
  /** Of scheduleMs, the milliseconds spent computing (forward, recomputation, backward, loss). */
  computeMs: number;
  /** Milliseconds all-reducing within the data-parallel group and applying the optimizer. */
  applyMs: number;
  /** Float32 elements sent to neighbouring stages (activations and their gradients). */
  sentElements: number;
}

/** The shape of tfjs' History: the same on every rank. */
export interface PipelineHistory {
  epoch: number[];
  history: Record<string, number[]>;
  params: { epochs: number; samples: number; batchSize: number; steps: number; stages: number; replicas: number; microBatches: number };
}

function argumentError(who: string, message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: PipelineModel${who}: ${message}`);
}

const OPTIMIZERS: Record<string, () => tf.Optimizer> = {
  sgd: () => tf.train.sgd(0.01),
  adam: () => tf.train.adam(0.001),
  rmsprop: () => tf.train.rmsprop(0.001),
  adagrad: () => tf.train.adagrad(0.01),
};

interface Compiled {
  optimizer: tf.Optimizer;
  loss: ResolvedFn;
  metrics: ResolvedFn[];
}

interface RowRange {
  start: number;
  size: number;
}

function shapeText(shape: ShapeLike): string {
  return `[${shape.map((d) => (d === null ? 'null' : d)).join(',')}]`;
}

function concrete(shape: ShapeLike, what: string): number[] {
  const rest = shape.slice(1);
  if (rest.some((d) => d === null || d === undefined)) {
    throw argumentError('', `${what} has the shape ${shapeText(shape)} with unknown dimensions; stage boundaries need fixed shapes`);
  }
  return rest as number[];
}

export class PipelineModel {
  readonly comm: Communicator;
  readonly stages: number;
  readonly replicas: number;
  /** This rank's stage, 0..stages-1. */
  readonly stage: number;
  /** This rank's data-parallel replica, 0..replicas-1. */
  readonly replica: number;
  readonly microBatches: number;
  readonly schedule: PipelineScheduleKind;
  /** Layers [start, end) of the chain that this rank holds (input layers not counted). */
  readonly layerRange: LayerRange;
  /** Every stage's layer range. */
  readonly ranges: readonly LayerRange[];
  private readonly chain: LayerChain;
  private readonly runner: PipelineStage;
  private readonly inShape: number[];
  private readonly outShape: number[];
  private readonly prev: number;
  private readonly next: number;
  private readonly p2p: PipelineCommunicator | undefined;
  private readonly seedOption: number | undefined;
  private compiled: Compiled | undefined;
  private dp: Communicator | undefined;
  private reducer: GradientReducer | undefined;
  private replicasSynced = false;
  private steps = 0;
  /** Timings of fit's steps on this rank. The idle share 1 - computeMs / scheduleMs is the measured bubble. */
  readonly stats: PipelineStats = { steps: 0, scheduleMs: 0, computeMs: 0, applyMs: 0, sentElements: 0 };

  constructor(model: PipelineModelSource, options: PipelineModelOptions) {
    if (typeof options !== 'object' || options === null) throw argumentError('', 'options { stages, microBatches?, schedule?, splitAt?, comm? } are required');
    this.comm = resolveCommunicator(options.comm, 'PipelineModel');
    const K = options.stages;
    if (!Number.isInteger(K) || K < 1) throw argumentError('', `stages must be an integer >= 1, got ${String(K)}`);
    if (this.comm.size % K !== 0) {
      throw argumentError('', `comm.size ${this.comm.size} is not a multiple of stages ${K} (ranks = stages x data-parallel replicas)`);
    }
    const M = options.microBatches ?? 4;
    if (!Number.isInteger(M) || M < 1) throw argumentError('', `microBatches must be an integer >= 1, got ${String(M)}`);
    const schedule = options.schedule ?? '1f1b';
    if (schedule !== 'gpipe' && schedule !== '1f1b') throw argumentError('', `schedule must be 'gpipe' or '1f1b', got '${String(schedule)}'`);
    if (options.seed !== undefined && !Number.isInteger(options.seed)) throw argumentError('', `seed must be an integer, got ${String(options.seed)}`);
    this.stages = K;
    this.replicas = this.comm.size / K;
    this.stage = this.comm.rank % K;
    this.replica = Math.floor(this.comm.rank / K);
    this.microBatches = M;
    this.schedule = schedule;
    this.seedOption = options.seed;
    this.p2p = K > 1 || this.replicas > 1 ? asPipelineCommunicator(this.comm, this.replicas > 1) : undefined;

    const { chain, ranges } = this.buildChain(model, options.splitAt);
    this.chain = chain;
    this.ranges = ranges;
    this.layerRange = ranges[this.stage]!;
    const [start, end] = this.layerRange;
    disposeLayersOutside(chain, start, end);
    this.runner = new PipelineStage(chain.layers.slice(start, end));
    // Row shapes of the messages this rank receives (sized here, so they must be fixed).
    this.inShape = this.stage > 0 ? concrete(chain.outputShapes[start - 1]!, `the input of stage ${this.stage}`) : [];
    this.outShape = this.stage < K - 1 ? concrete(chain.outputShapes[end - 1]!, `the output of stage ${this.stage}`) : [];
    this.prev = this.stage > 0 ? this.comm.rank - 1 : -1;
    this.next = this.stage < K - 1 ? this.comm.rank + 1 : -1;
  }

  private buildChain(model: PipelineModelSource, splitAt: readonly number[] | undefined): { chain: LayerChain; ranges: LayerRange[] } {
    const K = this.stages;
    const built = resolveSource(model);
    const rangesOf = (layers: number, counts: () => number[]): LayerRange[] =>
      splitAt !== undefined ? rangesFromSplitAt(layers, K, splitAt) : balancedRanges(counts(), K);
    if (!Array.isArray(built)) {
      const chain = modelChain(built as Exclude<typeof built, readonly LayerLike[]>);
      return { chain, ranges: rangesOf(chain.layers.length, () => chain.paramCounts as number[]) };
    }
    const layers = built as readonly LayerLike[];
    if (splitAt !== undefined) {
      const ranges = rangesFromSplitAt(layers.length, K, splitAt);
      const [s, e] = ranges[this.stage]!;
      return { chain: lazyChain(layers, (i) => i >= s && i < e), ranges };
    }
    // Balanced: count every layer (one at a time), then build the kept ones from a fresh call.
    const counts = countLayerParams(layers);
    const ranges = balancedRanges(counts, K);
    const fresh = resolveSource(model);
    if (!Array.isArray(fresh) || fresh.length !== layers.length) {
      throw argumentError('', 'the builder must return the same layers on every call (it is called twice when splitAt is not given)');
    }
    const [s, e] = ranges[this.stage]!;
    const chain = lazyChain(fresh as readonly LayerLike[], (i) => i >= s && i < e);
    return { chain: { ...chain, paramCounts: counts }, ranges };
  }

  /** Parameters per stage (null where unknown: a builder's layers on other stages, with splitAt). */
  get stageParams(): (number | null)[] {
    return this.ranges.map(([s, e]) => {
      const counts = this.chain.paramCounts.slice(s, e);
      return counts.some((c) => c === null) ? null : (counts as number[]).reduce((a, b) => a + b, 0);
    });
  }

  /** Bytes of this rank's weights (trainable and not). */
  get weightBytes(): number {
    return [...this.runner.trainable, ...this.runner.nonTrainable].reduce((n, w) => n + w.read().size * 4, 0);
  }

  compile(args: PipelineCompileArgs): void {
    if (typeof args !== 'object' || args === null) throw argumentError('.compile', '{ optimizer, loss, metrics? } is required');
    let optimizer: tf.Optimizer;
    if (typeof args.optimizer === 'string') {
      const make = OPTIMIZERS[args.optimizer];
      if (!make) throw argumentError('.compile', `unknown optimizer '${args.optimizer}' (sgd, adam, rmsprop, adagrad, or a tf.Optimizer)`);
      optimizer = make();
    } else {
      optimizer = args.optimizer;
      if (typeof optimizer?.applyGradients !== 'function') throw argumentError('.compile', 'optimizer must be a tf.Optimizer or a name');
      if (isDistributedOptimizer(optimizer)) {
        throw argumentError('.compile', 'pass the plain optimizer, not a DistributedOptimizer: the pipeline all-reduces each stage within its data-parallel group itself');
      }
    }
    const metricList = args.metrics === undefined ? [] : Array.isArray(args.metrics) ? args.metrics : [args.metrics];
    this.compiled = {
      optimizer,
      loss: resolveLoss(args.loss),
      metrics: (metricList as (string | LossOrMetricFn)[]).map((m) => resolveMetric(m, args.loss)),
    };
  }

  // ---- the per-call agreement ----

  private describeModel(): string {
    // Parameter counts only where every rank knows them all (not a builder's layers with splitAt:
    // then each rank knows its own stage's, compared between replicas by stageHash).
    const counts = this.chain.paramCounts.every((c) => c !== null);
    const layers = this.chain.layers.map((l, i) => `${l.getClassName()}${shapeText(this.chain.outputShapes[i]!)}${counts ? `#${this.chain.paramCounts[i]}` : ''}`);
    return `${layers.join(';')}|in${shapeText(this.chain.inputShape)}|K${this.stages}|M${this.microBatches}|${this.schedule}|${this.ranges.map((r) => r.join('-')).join(',')}|d${this.replicas}`;
  }

  private stageHash(): number {
    const w = [...this.runner.trainable, ...this.runner.nonTrainable].map((v) => `${v.dtype}[${v.read().shape.join(',')}]${v.trainable ? 't' : 'n'}`);
    return hash32(w.join(';'));
  }

  /** Validates locally, then agrees with every rank; returns the call's shared seed. */
  private async prepare(who: string, describeCall: string, validate: () => void): Promise<number> {
    let error: RingtrainError | undefined;
    try {
      validate();
    } catch (e) {
      if (!(e instanceof RingtrainError)) throw e;
      error = e;
    }
    const known = this.chain.paramCounts.filter((c): c is number => c !== null).reduce((a, b) => a + b, 0);
    const seed = await agreeOnPipeline(this.comm, `PipelineModel.${who}`, {
      error,
      globalHash: hash32(`${this.describeModel()}|${describeCall}`),
      stageHash: this.stageHash(),
      stage: this.stage,
      layers: this.chain.layers.length,
      params: known,
      seed: this.seedOption ?? Math.floor(Math.random() * 2 ** 31),
    });
    if (this.replicas > 1 && this.dp === undefined) {
      const sub = await this.p2p!.split(this.stage, this.replica);
      if (sub === null) throw new RingtrainError('ERR_RINGTRAIN_INTERNAL', 'ringtrain: PipelineModel: split gave no data-parallel group');
      this.dp = sub;
    }
    return seed;
  }

  private checkData(who: string, xs: tf.Tensor, ys: tf.Tensor | undefined): void {
    if (!(xs instanceof tf.Tensor)) throw argumentError(who, 'xs must be a tf.Tensor (rows along axis 0)');
    if (ys !== undefined && !(ys instanceof tf.Tensor)) throw argumentError(who, 'ys must be a tf.Tensor (rows along axis 0)');
    if (ys !== undefined && ys.shape[0] !== xs.shape[0]) throw argumentError(who, `xs has ${xs.shape[0]} rows but ys has ${ys.shape[0]}`);
    const expected = this.chain.inputShape.slice(1);
    const got = xs.shape.slice(1);
    if (got.length !== expected.length || expected.some((d, i) => d !== null && d !== got[i])) {
      throw argumentError(who, `xs rows have the shape [${got.join(',')}] but the model takes ${shapeText(this.chain.inputShape)}`);
    }
  }

  private requireCompiled(who: string): Compiled {
    if (!this.compiled) throw argumentError(who, 'call compile({ optimizer, loss, metrics }) first');
    return this.compiled;
  }

  // ---- training ----

  async fit(xs: tf.Tensor, ys: tf.Tensor, args: PipelineFitArgs = {}): Promise<PipelineHistory> {
    const epochs = args.epochs ?? 1;
    const batchSize = args.batchSize ?? 32;
    const shuffle = args.shuffle ?? true;
    const callbacks = args.callbacks === undefined ? [] : Array.isArray(args.callbacks) ? args.callbacks : [args.callbacks as PipelineCallback];
    const rows = xs?.shape?.[0] ?? 0;
    const seed = await this.prepare('fit', `fit|${xs?.shape}|${ys?.shape}|${epochs}|${batchSize}|${shuffle}`, () => {
      this.requireCompiled('.fit');
      this.checkData('.fit', xs, ys);
      if (!Number.isInteger(epochs) || epochs < 1) throw argumentError('.fit', `epochs must be an integer >= 1, got ${epochs}`);
      if (!Number.isInteger(batchSize) || batchSize < 1) throw argumentError('.fit', `batchSize must be an integer >= 1, got ${batchSize}`);
      const per = this.replicas * this.microBatches;
      if (batchSize % per !== 0) {
        throw argumentError(
          '.fit',
          `batchSize ${batchSize} is not divisible by ${this.replicas > 1 ? `replicas x microBatches = ${this.replicas} x ${this.microBatches} = ${per}` : `microBatches ${this.microBatches}`}` +
            `: every micro-batch of a full batch must have the same rows (try batchSize ${Math.max(per, Math.round(batchSize / per) * per)})`,
        );
      }
    });
    const compiled = this.compiled!;
    await this.syncReplicas();
    const keys = ['loss', ...compiled.metrics.map((m) => m.key)];
    const history: PipelineHistory = {
      epoch: [],
      history: {},
      params: { epochs, samples: rows, batchSize, steps: Math.ceil(rows / batchSize), stages: this.stages, replicas: this.replicas, microBatches: this.microBatches },
    };
    for (const cb of callbacks) await cb.onTrainBegin?.({});
    for (let epoch = 0; epoch < epochs; epoch++) {
      for (const cb of callbacks) await cb.onEpochBegin?.(epoch, {});
      const order = shuffle ? permutation(rows, seededRandom(seed, epoch)) : Int32Array.from({ length: rows }, (_, i) => i);
      const sums = new Float64Array(keys.length);
      let batch = 0;
      for (let start = 0; start < rows; start += batchSize, batch++) {
        const indices = order.subarray(start, Math.min(rows, start + batchSize));
        for (const cb of callbacks) await cb.onBatchBegin?.(batch, { batch, size: indices.length });
        const values = await this.trainBatch(xs, ys, indices, compiled, seed);
        values.forEach((v, i) => (sums[i]! += v * indices.length));
        const logs: PipelineLogs = { batch, size: indices.length };
        keys.forEach((k, i) => (logs[k] = values[i]!));
        for (const cb of callbacks) await cb.onBatchEnd?.(batch, logs);
      }
      const logs: PipelineLogs = {};
      keys.forEach((k, i) => (logs[k] = sums[i]! / rows));
      if (args.validationData) {
        const val = await this.evaluateValues(args.validationData[0], args.validationData[1], batchSize);
        keys.forEach((k, i) => (logs[`val_${k}`] = val[i]!));
      }
      history.epoch.push(epoch);
      for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
      for (const cb of callbacks) await cb.onEpochEnd?.(epoch, logs);
    }
    for (const cb of callbacks) await cb.onTrainEnd?.({});
    return history;
  }

  /** Replicas of a stage start from replica 0's weights (their initialisers may differ). */
  private async syncReplicas(): Promise<void> {
    if (this.replicasSynced || this.dp === undefined) return;
    const vars = [...this.runner.trainable, ...this.runner.nonTrainable].map((w) => w.read() as tf.Variable);
    await broadcastVariables(vars, { root: 0, comm: this.dp });
    this.replicasSynced = true;
  }

  private microBatchesOf(batchRows: number): RowRange[] {
    return microBatchRows(batchRows, this.replicas, this.replica, this.microBatches);
  }

  private rowsOf(t: tf.Tensor, indices: Int32Array, mb: RowRange): tf.Tensor {
    return tf.tidy(() => tf.gather(t, tf.tensor1d(indices.subarray(mb.start, mb.start + mb.size), 'int32')));
  }

  /** One optimizer step on the batch `indices`; returns the batch's loss and metrics (same on every rank). */
  private async trainBatch(xs: tf.Tensor, ys: tf.Tensor, indices: Int32Array, compiled: Compiled, seed: number): Promise<number[]> {
    const first = this.stage === 0;
    const last = this.stage === this.stages - 1;
    const micro = this.microBatchesOf(indices.length);
    const steps = pipelineSchedule(this.schedule, this.stages, micro.length)[this.stage]!;
    const trainable = this.runner.trainable;
    const acc: (tf.Tensor | null)[] = trainable.map(() => null);
    const inputs: (tf.Tensor | undefined)[] = [];
    const sends: Promise<unknown>[] = [];
    const sums = new Float64Array(1 + compiled.metrics.length);
    const stepSeed = (m: number): string => `${seed}:${this.steps}:${m}:${this.stage}`;
    const stats = this.stats;
    const timed = <T>(fn: () => T): T => {
      const t0 = performance.now();
      try {
        return fn();
      } finally {
        stats.computeMs += performance.now() - t0;
      }
    };
    const send = (t: tf.Tensor, dst: number, tag: number): void => {
      stats.sentElements += t.size;
      sends.push(sendTensor(this.p2p!, t, dst, tag));
    };
    const started = performance.now();
    try {
      for (const step of steps) {
        const m = step.microBatch;
        const mb = micro[m]!;
        if (step.kind === 'forward') {
          const x = first ? this.rowsOf(xs, indices, mb) : await recvTensor(this.p2p!, [mb.size, ...this.inShape], this.prev, ACTIVATION_TAG);
          inputs[m] = x;
          if (last) continue; // the last stage runs its forward inside the loss step
          const y = timed(() => this.runner.forward(x, true, stepSeed(m)));
          send(y, this.next, ACTIVATION_TAG);
          y.dispose();
          continue;
        }
        const x = inputs[m]!;
        let result: BackwardResult & { lossSum?: number; metricSums?: number[] };
        if (last) {
          const y = this.rowsOf(ys, indices, mb);
          try {
            const r = compiled.loss.fn;
            result = timed(() => this.runner.lossStep(x, y, mb.size / indices.length, stepSeed(m), r, compiled.metrics.map((f) => f.fn), !first));
          } finally {
            y.dispose();
          }
          sums[0]! += result.lossSum!;
          result.metricSums!.forEach((v, i) => (sums[i + 1]! += v));
        } else {
          const dy = await recvTensor(this.p2p!, [mb.size, ...this.outShape], this.next, GRADIENT_TAG);
          try {
            result = timed(() => this.runner.backward(x, dy, stepSeed(m), !first));
          } finally {
            dy.dispose();
          }
        }
        timed(() => this.accumulate(acc, result.grads));
        if (result.dx) {
          if (!first) send(result.dx, this.prev, GRADIENT_TAG);
          result.dx.dispose();
        }
        x.dispose();
        inputs[m] = undefined;
      }
      await Promise.all(sends);
    } catch (e) {
      tf.dispose(acc.filter((g): g is tf.Tensor => g !== null));
      // Settle the sends in flight so none rejects unobserved.
      await Promise.allSettled(sends);
      throw e;
    } finally {
      tf.dispose(inputs.filter((t): t is tf.Tensor => t !== undefined));
    }
    const scheduled = performance.now();
    stats.scheduleMs += scheduled - started;
    // Weight penalties once per batch, on replica 0 only: the replicas' gradients are summed.
    const penalty = this.replica === 0 ? timed(() => this.runner.regularization()) : null;
    if (penalty) this.accumulate(acc, penalty.grads);
    this.applyGradients(acc, compiled.optimizer);
    stats.applyMs += performance.now() - scheduled;
    stats.steps++;
    this.steps++;
    return this.shareLogs(sums, last ? micro.reduce((n, r) => n + r.size, 0) : 0, penalty?.value ?? 0);
  }

  private accumulate(acc: (tf.Tensor | null)[], grads: readonly (tf.Tensor | null)[]): void {
    grads.forEach((g, i) => {
      if (g === null || g === undefined) return;
      const a = acc[i] ?? null;
      if (a === null) {
        acc[i] = g;
      } else {
        acc[i] = tf.add(a, g);
        a.dispose();
        g.dispose();
      }
    });
  }

  /** All-reduces (sum) within the data-parallel group and steps the optimizer once. */
  private applyGradients(acc: (tf.Tensor | null)[], optimizer: tf.Optimizer): void {
    const trainable = this.runner.trainable;
    // Zeros for weights without a gradient, so every replica reduces the same structure.
    let grads: tf.Tensor[] = acc.map((g, i) => g ?? tf.zeros(trainable[i]!.read().shape, 'float32'));
    try {
      if (this.dp !== undefined) {
        const reduced = this.reducerFor(this.dp).reduce(grads) as tf.Tensor[];
        tf.dispose(grads);
        grads = reduced;
      }
      const named: NamedTensor[] = trainable.map((w, i) => ({ name: (w.read() as tf.Variable).name, tensor: grads[i]! }));
      if (named.length > 0) optimizer.applyGradients(named);
    } finally {
      tf.dispose(grads);
    }
  }

  private reducerFor(dp: Communicator): GradientReducer {
    this.reducer ??= new GradientReducer(dp, {
      op: 'sum',
      compression: 'none',
      fusionBytes: dp.settings.fusionBytes,
      pipelineBytes: dp.settings.pipelineBytes,
      backwardPassesPerStep: 1,
    });
    return this.reducer;
  }

  /**
   * Sums [loss, metrics...] over the last stages (other ranks add zeros) and divides by the rows;
   * adds the regularization penalties of all stages to the loss, as tfjs-layers reports it.
   */
  private async shareLogs(sums: Float64Array, rows: number, penalty = 0): Promise<number[]> {
    const v = new Float64Array(sums.length + 2);
    if (rows > 0) {
      v.set(sums);
      v[sums.length] = rows;
    }
    v[sums.length + 1] = penalty;
    await this.comm.allreduce(v, { op: 'sum' });
    const total = v[sums.length]!;
    const out = Array.from(v.subarray(0, sums.length), (s) => (total > 0 ? s / total : NaN));
    out[0]! += v[sums.length + 1]!;
    return out;
  }

  // ---- inference ----

  /**
   * Forward only, in micro-batches through the stages; calls `atLast` on the last stage with each
   * micro-batch's output and its rows (positions in 0..rows-1).
   */
  private async forwardAll(xs: tf.Tensor, batchSize: number, atLast: (out: tf.Tensor, rows: Int32Array) => void): Promise<void> {
    const rows = xs.shape[0]!;
    const first = this.stage === 0;
    const last = this.stage === this.stages - 1;
    const sends: Promise<unknown>[] = [];
    try {
      for (let start = 0; start < rows; start += batchSize) {
        const size = Math.min(batchSize, rows - start);
        const indices = Int32Array.from({ length: size }, (_, i) => start + i);
        for (const mb of this.microBatchesOf(size)) {
          const x = first ? this.rowsOf(xs, indices, mb) : await recvTensor(this.p2p!, [mb.size, ...this.inShape], this.prev, ACTIVATION_TAG);
          const y = this.runner.infer(x);
          x.dispose();
          if (last) atLast(y, indices.subarray(mb.start, mb.start + mb.size));
          else sends.push(sendTensor(this.p2p!, y, this.next, ACTIVATION_TAG));
          y.dispose();
        }
      }
      await Promise.all(sends);
    } catch (e) {
      await Promise.allSettled(sends);
      throw e;
    }
  }

  private async evaluateValues(xs: tf.Tensor, ys: tf.Tensor, batchSize: number): Promise<number[]> {
    const compiled = this.compiled!;
    const sums = new Float64Array(1 + compiled.metrics.length);
    let counted = 0;
    await this.forwardAll(xs, batchSize, (out, rows) => {
      const values = tf.tidy(() => {
        const y = tf.gather(ys, tf.tensor1d(rows, 'int32'));
        const per = [compiled.loss, ...compiled.metrics].map((f) => {
          const v = f.fn(y, out);
          return v.rank === 0 ? tf.mul(v, rows.length) : tf.sum(v);
        });
        return tf.stack(per);
      });
      Array.from(values.dataSync()).forEach((v, i) => (sums[i]! += v));
      values.dispose();
      counted += rows.length;
    });
    return this.shareLogs(sums, counted);
  }

  /** Loss (and metrics) over xs, ys: a Scalar, or [loss, ...metrics] with metrics; the same on every rank. */
  async evaluate(xs: tf.Tensor, ys: tf.Tensor, args: { batchSize?: number } = {}): Promise<tf.Scalar | tf.Scalar[]> {
    const batchSize = args.batchSize ?? 32;
    await this.prepare('evaluate', `evaluate|${xs?.shape}|${ys?.shape}|${batchSize}`, () => {
      this.requireCompiled('.evaluate');
      this.checkData('.evaluate', xs, ys);
      if (!Number.isInteger(batchSize) || batchSize < 1) throw argumentError('.evaluate', `batchSize must be an integer >= 1, got ${batchSize}`);
    });
    const values = await this.evaluateValues(xs, ys, batchSize);
    const scalars = values.map((v) => tf.scalar(v));
    return scalars.length === 1 ? scalars[0]! : scalars;
  }

  /** The model's output for every row of xs, on every rank. */
  async predict(xs: tf.Tensor, args: { batchSize?: number } = {}): Promise<tf.Tensor> {
    const batchSize = args.batchSize ?? 32;
    await this.prepare('predict', `predict|${xs?.shape}|${batchSize}`, () => {
      this.checkData('.predict', xs, undefined);
      if (!Number.isInteger(batchSize) || batchSize < 1) throw argumentError('.predict', `batchSize must be an integer >= 1, got ${batchSize}`);
    });
    const rows = xs.shape[0]!;
    const outShape = concrete(this.chain.outputShapes[this.chain.outputShapes.length - 1]!, 'the model output');
    const width = outShape.reduce((a, b) => a * b, 1);
    // Each last stage writes its rows; a sum over the job (zeros elsewhere) gives everyone all rows.
    const all = new Float32Array(rows * width);
    await this.forwardAll(xs, batchSize, (out, at) => {
      const data = out.dataSync() as Float32Array;
      at.forEach((row, i) => all.set(data.subarray(i * width, (i + 1) * width), row * width));
    });
    if (this.comm.size > 1) await this.comm.allreduce(all, { op: 'sum' });
    return tf.tensor(all, [rows, ...outShape], 'float32');
  }

  // ---- weights ----

  /**
   * The whole model's weights on every rank, in model.getWeights() order (every stage's trainable
   * weights in layer order, then every stage's non-trainable ones), taken from replica 0. The
   * caller owns the tensors.
   */
  async gatherWeights(): Promise<tf.Tensor[]> {
    const trainable: tf.Tensor[] = [];
    const nonTrainable: tf.Tensor[] = [];
    for (let s = 0; s < this.stages; s++) {
      const root = s; // replica 0's stage s
      const mine = this.comm.rank === root;
      const own = (list: readonly LayerVariableLike[]): TensorSpec[] => list.map((w) => ({ shape: w.read().shape, dtype: w.read().dtype }));
      const specs = await broadcastJson(this.comm, mine ? { t: own(this.runner.trainable), n: own(this.runner.nonTrainable) } : undefined, root);
      const all = [...specs.t, ...specs.n];
      const layout = layoutFor(all, 'PipelineModel.gatherWeights');
      const tensors = [...this.runner.trainable, ...this.runner.nonTrainable].map((w) => w.read());
      const bufs = mine ? await pack(layout, tensors) : allocateFor(layout);
      for (const b of bufs) await this.comm.broadcast(b, root);
      const values = unpack(layout, all, bufs);
      trainable.push(...values.slice(0, specs.t.length));
      nonTrainable.push(...values.slice(specs.t.length));
    }
    return [...trainable, ...nonTrainable];
  }

  /** Closes the data-parallel group and frees this rank's layers. */
  async dispose(): Promise<void> {
    if (this.dp !== undefined) await this.dp.close();
    this.dp = undefined;
    disposeLayersOutside(this.chain, 0, 0);
  }
}

