/**
 * ElasticState: what an elastic job (ringtrain --min-np, runElastic) must not lose when the world
 * changes: the model's weights, its optimizer's state and the user's own fields (epoch, batch...).
 *
 * commit() takes an in-memory snapshot. Snapshots are cheap: tfjs tensors are immutable and a
 * variable's assign() swaps its data for new data, so a clone of a weight keeps the committed values
 * while training goes on, without a copy. A commit is complete once every rank has taken it (one
 * tiny all-reduce); until then the previous one is kept too, so after any failure the survivors
 * still share one commit: the newest that all of them hold (see sync()).
 */
import * as tf from '@tensorflow/tfjs-core';
import { elasticClient } from '../elastic-client.js';
import { RingtrainError } from '../errors.js';
import { currentCommunicator } from '../init.js';
import type { Communicator } from '../types.js';
import { broadcastModel } from './broadcast-model.js';
import type { NamedTensor } from './distributed-optimizer.js';
import type { ModelLike } from './model-like.js';
import { broadcastJson } from './packed-transfer.js';
import { PipelineModel } from './pipeline-model.js';

/** JSON-able values a state may carry besides the model. */
export type ElasticField = string | number | boolean | null | ElasticField[] | { [key: string]: ElasticField };

export interface ElasticStateInit {
  /** Whose weights (and `model.optimizer` state) are committed. Optional: a state may hold fields only. */
  model?: ModelLike;
  /** Default `model.optimizer`; null for none. */
  optimizer?: tf.Optimizer | null;
  [field: string]: unknown;
}

interface Snapshot {
  id: number;
  weights: tf.Tensor[];
  optimizer: NamedTensor[] | null;
  fields: string;
}

const NONE = 2 ** 31 - 1;
const RESERVED = new Set(['model', 'optimizer', 'rank', 'size', 'commit', 'onReset', 'sync', 'commitId']);

function isVariable(t: tf.Tensor): boolean {
  return typeof (t as tf.Variable).assign === 'function';
}

export type ResetCallback = (state: ElasticState) => void | Promise<void>;

export class ElasticState {
  readonly model: ModelLike | undefined;
  readonly optimizer: tf.Optimizer | null;
  /** Id of the last complete commit (0: the state as runElastic started it). */
  commitId = -1;
  private readonly fieldNames: string[];
  /** Oldest first; at most two: the last complete commit and one being taken. */
  private snapshots: Snapshot[] = [];
  private readonly resetCallbacks: ResetCallback[] = [];
  [field: string]: unknown;

  constructor(init: ElasticStateInit) {
    if ((init.model as unknown) instanceof PipelineModel) {
      // Its stages live on different ranks (a lost rank takes a part of the model no survivor
      // holds) and its layout is fixed to one world's size and communicator.
      throw new RingtrainError(
        'ERR_RINGTRAIN_ARGUMENT',
        'ringtrain: ElasticState: a PipelineModel cannot be elastic (a lost rank takes its stage with it, and the stages are laid out for one world); ' +
          'train the model data-parallel with DistributedOptimizer, or run the pipeline without --min-np',
      );
    }
    this.model = init.model;
    this.optimizer = init.optimizer !== undefined ? init.optimizer : (init.model?.optimizer ?? null);
    this.fieldNames = Object.keys(init).filter((k) => k !== 'model' && k !== 'optimizer');
    for (const k of this.fieldNames) {
      // `k in this` also catches the other members (dispose, heldTensors, the private fields) and
      // Object's own (constructor, toString...): a field by such a name would replace or hit them.
      if (RESERVED.has(k) || k in this) throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: ElasticState: '${k}' is reserved; name the field differently`);
      this[k] = init[k];
    }
  }

  /** This rank in the current world. */
  get rank(): number {
    return currentCommunicator().rank;
  }

  /** Ranks in the current world. */
  get size(): number {
    return currentCommunicator().size;
  }

  /** Runs `cb` after every reset (a new world, the state restored), e.g. to rescale the learning rate by `state.size`. */
  onReset(cb: ResetCallback): this {
    this.resetCallbacks.push(cb);
    return this;
  }

  /** Tensors held by snapshots (for leak checks). */
  get heldTensors(): number {
    return this.snapshots.reduce((n, s) => n + s.weights.length + (s.optimizer?.length ?? 0), 0);
  }

  /**
   * Snapshots the state; complete once every rank of the world has taken it. If workers wait to
   * join, the ranks leave the world here together (ERR_RINGTRAIN_RESET, handled by runElastic) and
   * the next world takes them in.
   */
  async commit(): Promise<void> {
    const comm = currentCommunicator();
    const id = this.commitId + 1;
    this.snapshots.push(await this.snapshot(id));
    const v = new Int32Array([id, -id, elasticClient()?.joinPending ? 1 : 0]);
    await comm.allreduce(v, { op: 'max' });
    if (v[0] !== id || -v[1]! !== id) {
      throw new RingtrainError(
        'ERR_RINGTRAIN_MISMATCH',
        `ringtrain: ElasticState.commit(): ranks are at different commits (${-v[1]!}..${v[0]}); every rank must call commit() at the same points`,
      );
    }
    // Every rank has commit `id` now: the previous one can go.
    this.keepOnly(id);
    this.commitId = id;
    if (v[2]! > 0) throw new RingtrainError('ERR_RINGTRAIN_RESET', 'ringtrain: workers wait to join: re-forming the world at this commit');
  }

  /**
   * Brings every rank of a (new) world to one state: agrees on the newest commit all holders have,
   * restores it on the lowest rank that has it, broadcasts it from there (weights, optimizer state,
   * fields: bit for bit) and takes it as every rank's commit. Ranks without a commit (the first
   * start, workers that joined) just receive. Called by runElastic.
   */
  async sync(comm: Communicator = currentCommunicator()): Promise<{ commitId: number; root: number }> {
    const newest = this.snapshots.at(-1)?.id;
    const a = new Int32Array([newest ?? NONE, newest === undefined ? NONE : comm.rank]);
    await comm.allreduce(a, { op: 'min' });
    const agreed = a[0] === NONE ? undefined : a[0]!;
    let root = 0;
    if (agreed !== undefined) {
      const mine = this.snapshots.find((s) => s.id === agreed);
      const b = new Int32Array([newest !== undefined && !mine ? -1 : 0, mine ? comm.rank : NONE]);
      await comm.allreduce(b, { op: 'min' });
      if (b[0] !== 0) {
        throw new RingtrainError('ERR_RINGTRAIN_INTERNAL', `ringtrain: ElasticState: a rank lacks commit ${agreed}, the newest the others share`);
      }
      root = b[1]!;
      if (comm.rank === root) await this.restore(mine!);
    }
    if (this.model) await broadcastModel(this.model, { root, comm, optimizer: this.optimizer });
    const fields = await broadcastJson<Record<string, unknown>>(comm, comm.rank === root ? this.fieldValues() : undefined, root);
    for (const k of this.fieldNames) this[k] = fields[k];
    const id = agreed ?? 0;
    const snap = await this.snapshot(id);
    this.disposeAll();
    this.snapshots = [snap];
    this.commitId = id;
    return { commitId: id, root };
  }

  /** Runs the reset callbacks (runElastic does, after each re-formation). */
  async runResetCallbacks(): Promise<void> {
    for (const cb of this.resetCallbacks) await cb(this);
  }

  /** Frees every snapshot (the state is not usable for recovery afterwards). */
  dispose(): void {
    this.disposeAll();
    this.snapshots = [];
  }

  private fieldValues(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const k of this.fieldNames) out[k] = this[k];
    return out;
  }

  private async snapshot(id: number): Promise<Snapshot> {
    const fields = JSON.stringify(this.fieldValues());
    const weights = this.model ? this.model.weights.map((w) => tf.keep(tf.clone(w.read()))) : [];
    let optimizer: NamedTensor[] | null = null;
    if (this.optimizer) {
      let state: NamedTensor[] | null = null;
      try {
        state = (await this.optimizer.getWeights()) as NamedTensor[];
      } catch {
        state = null; // an optimizer without exportable state
      }
      // getWeights hands out its own variables (cloned here) and fresh tensors such as the
      // iteration count (kept as they are).
      optimizer = state?.map((w) => ({ name: w.name, tensor: tf.keep(isVariable(w.tensor) ? tf.clone(w.tensor) : w.tensor) })) ?? null;
    }
    return { id, weights, optimizer, fields };
  }

  /** Puts snapshot `s` back into the model, optimizer and fields of this rank. */
  private async restore(s: Snapshot): Promise<void> {
    if (this.model) this.model.weights.forEach((w, i) => w.write(s.weights[i]!));
    if (this.optimizer && s.optimizer) {
      const before = await this.optimizerVariables();
      const copies = s.optimizer.map((w) => ({ name: w.name, tensor: tf.clone(w.tensor) }));
      try {
        await this.optimizer.setWeights(copies);
      } finally {
        tf.dispose(copies.map((c) => c.tensor));
      }
      // tfjs optimizers' setWeights make new state variables; free the replaced ones.
      const after = new Set(await this.optimizerVariables());
      tf.dispose(before.filter((t) => !after.has(t)));
    }
    const fields = JSON.parse(s.fields) as Record<string, unknown>;
    for (const k of this.fieldNames) this[k] = fields[k];
  }

  private async optimizerVariables(): Promise<tf.Tensor[]> {
    try {
      const state = (await this.optimizer!.getWeights()) as NamedTensor[];
      tf.dispose(state.map((w) => w.tensor).filter((t) => !isVariable(t)));
      return state.map((w) => w.tensor).filter(isVariable);
    } catch {
      return [];
    }
  }

  private keepOnly(id: number): void {
    for (const s of this.snapshots) if (s.id !== id) this.disposeSnapshot(s);
    this.snapshots = this.snapshots.filter((s) => s.id === id);
  }

  private disposeAll(): void {
    for (const s of this.snapshots) this.disposeSnapshot(s);
  }

  private disposeSnapshot(s: Snapshot): void {
    tf.dispose(s.weights);
    if (s.optimizer) tf.dispose(s.optimizer.map((w) => w.tensor));
  }
}
