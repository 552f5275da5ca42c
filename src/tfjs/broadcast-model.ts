/**
 * broadcastModel / broadcastVariables: make every rank start from root's values, so data-parallel
 * replicas stay identical (same gradients applied to the same weights).
 */
import * as tf from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';
import type { Communicator } from '../types.js';
import { resolveCommunicator } from './default-communicator.js';
import type { NamedTensor } from './distributed-optimizer.js';
import { checkModel, type ModelLike } from './model-like.js';
import { allocateFor, broadcastJson, checkRoot, layoutFor, pack, specOf, unpack, type TensorSpec } from './packed-transfer.js';
import { agree, hash32, layoutSignature } from './rank-agreement.js';

export interface BroadcastOptions {
  /** Rank whose values everybody takes. Default 0. */
  root?: number;
  /** Default: the communicator made by init(). */
  comm?: Communicator;
}

export interface BroadcastModelOptions extends BroadcastOptions {
  /**
   * Whose state to broadcast along with the weights. Default: `model.optimizer` (set by compile;
   * a DistributedOptimizer hands over its inner optimizer's state). `null` broadcasts weights only.
   */
  optimizer?: tf.Optimizer | null;
}

/** Root's description of its optimizer: class and the layout of its state (null: none or not exportable). */
interface OptimizerSpec {
  className: string | null;
  state: { name: string; shape: number[]; dtype: string }[] | null;
}

function elements(specs: readonly TensorSpec[]): number {
  return specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

function isVariable(t: tf.Tensor): boolean {
  return typeof (t as tf.Variable).assign === 'function';
}

async function optimizerState(optimizer: tf.Optimizer | null): Promise<NamedTensor[] | null> {
  if (optimizer === null) return null;
  try {
    return (await optimizer.getWeights()) as NamedTensor[];
  } catch {
    // Optimizers without getWeights (the base class throws): nothing to broadcast.
    return null;
  }
}

/** Tensors that getWeights created for the call (e.g. the iteration count), as opposed to owned state variables. */
function disposeTemporaries(state: NamedTensor[] | null): void {
  if (state) tf.dispose(state.map((w) => w.tensor).filter((t) => !isVariable(t)));
}

/**
 * Copies root's weights (trainable and not, e.g. BatchNorm moving statistics) and optimizer state
 * (e.g. Adam's moments and iteration count) to every rank. Ranks whose model differs from root's
 * (count, shapes, dtypes of weights, or optimizer class) get ERR_RINGTRAIN_MISMATCH on every rank.
 */
export async function broadcastModel(model: ModelLike, options: BroadcastModelOptions = {}): Promise<void> {
  checkModel(model, 'broadcastModel');
  const comm = resolveCommunicator(options.comm, 'broadcastModel');
  const root = options.root ?? 0;
  checkRoot(comm, root, 'broadcastModel');
  const optimizer = options.optimizer !== undefined ? options.optimizer : (model.optimizer ?? null);
  const weights = model.weights;
  const weightSpecs = weights.map((w) => specOf(w.read()));

  const local = await optimizerState(optimizer);
  try {
    const rootSpec = await broadcastJson<OptimizerSpec>(
      comm,
      {
        className: optimizer?.getClassName() ?? null,
        state: local?.map((w) => ({ name: w.name, shape: w.tensor.shape.slice(), dtype: w.tensor.dtype })) ?? null,
      },
      root,
    );
    // A rank can take root's optimizer state only if it has an optimizer of the same class.
    const optimizerMatches = rootSpec.className === null || optimizer?.getClassName() === rootSpec.className;
    await agree(
      comm,
      {
        hash: hash32(`${layoutSignature(weightSpecs)}|${optimizerMatches ? 'ok' : optimizer?.getClassName() ?? 'none'}`),
        counts: [weightSpecs.length, elements(weightSpecs), optimizerMatches ? 1 : 0],
      },
      'the models given to broadcastModel',
      (s) =>
        `${s.counts[0]} weights, ${s.counts[1]} elements${s.counts[2] ? '' : `, no optimizer of root's class (${rootSpec.className})`}`,
      'Every rank must build the same architecture (same layers in the same order) and compile it with the same optimizer class.',
    );

    // Weights.
    const wLayout = layoutFor(weightSpecs, 'broadcastModel');
    const wBufs = comm.rank === root ? await pack(wLayout, weights.map((w) => w.read())) : allocateFor(wLayout);
    for (const b of wBufs) await comm.broadcast(b, root);
    if (comm.rank !== root) {
      const values = unpack(wLayout, weightSpecs, wBufs);
      weights.forEach((w, i) => w.write(values[i]!));
      tf.dispose(values);
    }

    // Optimizer state.
    if (rootSpec.state !== null && optimizer !== null) {
      const sSpecs: TensorSpec[] = rootSpec.state.map(specOf);
      const sLayout = layoutFor(sSpecs, 'broadcastModel (optimizer state)');
      const sBufs = comm.rank === root ? await pack(sLayout, local!.map((w) => w.tensor)) : allocateFor(sLayout);
      for (const b of sBufs) await comm.broadcast(b, root);
      // Root loads its own state back too: setWeights derives hidden state (Adam's beta powers
      // from the iteration count) slightly differently from how training accumulated it, and
      // only going through setWeights everywhere makes the ranks bit-identical.
      const values = unpack(sLayout, sSpecs, sBufs);
      const before = local?.map((w) => w.tensor).filter(isVariable) ?? [];
      try {
        await optimizer.setWeights(rootSpec.state.map((s, i) => ({ name: s.name, tensor: values[i]! })));
      } finally {
        tf.dispose(values);
      }
      // tfjs optimizers' setWeights replace their state variables instead of assigning them; free
      // the replaced ones (those no longer in the optimizer's state).
      const after = await optimizerState(optimizer);
      const kept = new Set(after?.map((w) => w.tensor) ?? []);
      disposeTemporaries(after);
      tf.dispose(before.filter((t) => !kept.has(t)));
    }
  } finally {
    disposeTemporaries(local);
  }
}

/**
 * Copies root's values of `variables` to every rank (assigning in place). A list must have the same
 * order on every rank; a record is taken in sorted key order.
 */
export async function broadcastVariables(
  variables: readonly tf.Variable[] | Readonly<Record<string, tf.Variable>>,
  options: BroadcastOptions = {},
): Promise<void> {
  const comm = resolveCommunicator(options.comm, 'broadcastVariables');
  const root = options.root ?? 0;
  checkRoot(comm, root, 'broadcastVariables');
  if (typeof variables !== 'object' || variables === null) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', 'ringtrain: broadcastVariables: expected an array or a record of tf.Variable');
  }
  const list: tf.Variable[] = Array.isArray(variables)
    ? [...(variables as readonly tf.Variable[])]
    : Object.keys(variables)
        .sort()
        .map((k) => (variables as Record<string, tf.Variable>)[k]!);
  if (list.some((v) => !(v instanceof tf.Variable))) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', 'ringtrain: broadcastVariables: expected an array or a record of tf.Variable');
  }
  const specs = list.map(specOf);
  await agree(
    comm,
    { hash: hash32(layoutSignature(specs)), counts: [specs.length, elements(specs)] },
    'the variables given to broadcastVariables',
    (s) => `${s.counts[0]} variables, ${s.counts[1]} elements`,
    'Pass the same variables (shapes, dtypes, order) on every rank.',
  );
  const layout = layoutFor(specs, 'broadcastVariables');
  const bufs = comm.rank === root ? await pack(layout, list) : allocateFor(layout);
  for (const b of bufs) await comm.broadcast(b, root);
  if (comm.rank !== root) {
    const values = unpack(layout, specs, bufs);
    list.forEach((v, i) => v.assign(values[i]!));
    tf.dispose(values);
  }
}
