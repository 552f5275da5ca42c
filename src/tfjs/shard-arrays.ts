/** shardArrays: this rank's rows of in-memory data (tensors or arrays), e.g. before model.fit. */
import * as tf from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';
import { shardIndices, type ShardOptions } from './shard-plan.js';

type Rows = tf.Tensor | readonly unknown[];

function rowCount(name: string, v: Rows): number {
  if (v instanceof tf.Tensor) {
    if (v.rank === 0) throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: shardArrays: '${name}' is a scalar; rows run along axis 0`);
    return v.shape[0]!;
  }
  if (Array.isArray(v)) return v.length;
  throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: shardArrays: '${name}' must be a tf.Tensor or an array`);
}

/**
 * Returns, for every entry of `parts` (e.g. { xs, ys }), this rank's rows along axis 0 — the same
 * rows for every entry. Rows are dealt like shardDataset's elements (with a seed: a seeded
 * permutation first). Tensors in the result are new (dispose them, or the inputs, as you like).
 */
export function shardArrays<P extends Record<string, Rows>>(parts: P, options: ShardOptions = {}): P {
  const names = Object.keys(parts);
  if (names.length === 0) throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', 'ringtrain: shardArrays: nothing to shard');
  const n = rowCount(names[0]!, parts[names[0]!]!);
  for (const name of names) {
    const m = rowCount(name, parts[name]!);
    if (m !== n) {
      throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: shardArrays: '${names[0]}' has ${n} rows but '${name}' has ${m}`);
    }
  }
  const idx = shardIndices(n, options);
  const out: Record<string, Rows> = {};
  for (const name of names) {
    const v = parts[name]!;
    if (v instanceof tf.Tensor) {
      out[name] = tf.tidy(() => tf.gather(v, tf.tensor1d(idx, 'int32')));
    } else {
      out[name] = Array.from(idx, (i) => v[i]);
    }
  }
  return out as P;
}
