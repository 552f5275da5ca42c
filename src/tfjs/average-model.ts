/**
 * averageModel: the "merge the model" step. Replaces every rank's weights with their mean across
 * ranks, non-trainable ones included (BatchNorm moving mean/variance), so replicas that drifted
 * apart (LocalSGD, or BatchNorm statistics computed on different shards) become identical.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Communicator } from '../types.js';
import { resolveCommunicator } from './default-communicator.js';
import { checkModel, type ModelLike } from './model-like.js';
import { layoutFor, pack, specOf, unpack, type TensorSpec } from './packed-transfer.js';
import { agree, hash32 } from './rank-agreement.js';

export interface AverageModelOptions {
  /** Default: the communicator made by init(). */
  comm?: Communicator;
  /** Average only the trainable weights and leave e.g. BatchNorm statistics as they are. Default false. */
  trainableOnly?: boolean;
}

/**
 * Averages the model's float32 weights across ranks in place (one fused all-reduce). Integer and
 * boolean weights, which have no meaningful mean, are taken from rank 0 instead.
 */
export async function averageModel(model: ModelLike, options: AverageModelOptions = {}): Promise<void> {
  checkModel(model, 'averageModel');
  const comm = resolveCommunicator(options.comm, 'averageModel');
  const weights = options.trainableOnly ? model.weights.filter((w) => w.trainable) : [...model.weights];
  const specs: TensorSpec[] = weights.map((w) => specOf(w.read()));
  await agree(
    comm,
    {
      hash: hash32(specs.map((s) => `${s.dtype}[${s.shape.join(',')}]`).join(';')),
      counts: [specs.length, specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0)],
    },
    'the models given to averageModel',
    (s) => `${s.counts[0]} weights, ${s.counts[1]} elements`,
    'Every rank must build the same architecture (same layers in the same order).',
  );
  const layout = layoutFor(specs, 'averageModel');
  const bufs = await pack(
    layout,
    weights.map((w) => w.read()),
  );
  for (let g = 0; g < layout.groups.length; g++) {
    if (layout.groups[g]!.transport === 'float32') await comm.allreduce(bufs[g]!, { op: 'avg' });
    else await comm.broadcast(bufs[g]!, 0);
  }
  const values = unpack(layout, specs, bufs);
  weights.forEach((w, i) => w.write(values[i]!));
  tf.dispose(values);
}
