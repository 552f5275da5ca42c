/**
 * Tensor-level collectives for custom training loops (what Horovod's hvd.allreduce(tensor) and
 * hvd.broadcast(tensor) are): a tensor in, a new tensor of the same shape and dtype out. The input
 * is never modified or disposed; the caller owns the result.
 */
import * as tf from '@tensorflow/tfjs-core';
import { REDUCE_OPS } from '../dtypes.js';
import { RingtrainError } from '../errors.js';
import type { Communicator, ReduceOp } from '../types.js';
import { resolveCommunicator } from './default-communicator.js';
import { averageLogs } from './metric-average-callback.js';
import { checkRoot } from './packed-transfer.js';
import type { CallbackLogs } from './rank-callback.js';

export interface TensorReduceOptions {
  /** Default `avg` (as Horovod). bool tensors take `min` (logical and) or `max` (logical or). */
  op?: ReduceOp;
  /** Default: the communicator made by init(). */
  comm?: Communicator;
}

export interface TensorBroadcastOptions {
  /** Rank whose value everybody takes. Default 0. */
  root?: number;
  /** Default: the communicator made by init(). */
  comm?: Communicator;
}

function argumentError(who: string, message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: ${who}: ${message}`);
}

function checkTensor(t: unknown, who: string): asserts t is tf.Tensor {
  if (!(t instanceof tf.Tensor)) throw argumentError(who, `expected a tf.Tensor, got ${t === null ? 'null' : typeof t}`);
  if (t.isDisposed) throw argumentError(who, 'the tensor is disposed');
  if (t.dtype !== 'float32' && t.dtype !== 'int32' && t.dtype !== 'bool') {
    throw argumentError(who, `dtype ${t.dtype} is not supported (float32, int32 and bool are)`);
  }
}

/** A private copy of the tensor's values, as the typed array a collective carries. */
async function valuesOf(t: tf.Tensor): Promise<Float32Array | Int32Array | Uint8Array> {
  // Copied: some backends (cpu) hand out the tensor's own storage.
  const data = await t.data();
  if (t.dtype === 'float32') return Float32Array.from(data as Float32Array);
  if (t.dtype === 'int32') return Int32Array.from(data as Int32Array);
  return Uint8Array.from(data as Uint8Array);
}

/**
 * The element-wise reduction of `t` across ranks, as a new tensor. Every rank must pass a tensor of
 * the same shape and dtype and the same op (a difference is ERR_RINGTRAIN_MISMATCH on every rank).
 * int32 `avg` truncates toward zero; bool supports `min` and `max` only.
 */
export async function allreduceTensor<T extends tf.Tensor>(t: T, options: TensorReduceOptions = {}): Promise<T> {
  const who = 'allreduceTensor';
  checkTensor(t, who);
  const op = options.op ?? 'avg';
  if (!REDUCE_OPS.includes(op)) throw argumentError(who, `unknown op '${String(op)}'; use one of ${REDUCE_OPS.join(', ')}`);
  if (t.dtype === 'bool' && op !== 'min' && op !== 'max') {
    throw argumentError(who, `a bool tensor reduces with 'min' (logical and) or 'max' (logical or), not '${op}'`);
  }
  const comm = resolveCommunicator(options.comm, who);
  const values = await valuesOf(t);
  await comm.allreduce(values, { op });
  return tf.tensor(values, t.shape, t.dtype) as T;
}

/** Root's value of `t` on every rank, as a new tensor (same shape and dtype on every rank). */
export async function broadcastTensor<T extends tf.Tensor>(t: T, options: TensorBroadcastOptions = {}): Promise<T> {
  const who = 'broadcastTensor';
  checkTensor(t, who);
  const comm = resolveCommunicator(options.comm, who);
  const root = options.root ?? 0;
  checkRoot(comm, root, who);
  const values = await valuesOf(t);
  await comm.broadcast(values, root);
  return tf.tensor(values, t.shape, t.dtype) as T;
}

/**
 * The mean across ranks of each entry of `logs` (numbers or scalar tensors, e.g. a custom loop's
 * loss and accuracy), as a new object of numbers; `logs` is left as it is. Every rank must pass the
 * same keys (a difference is ERR_RINGTRAIN_MISMATCH on every rank). In-place form for callbacks:
 * averageLogs(comm, logs).
 */
export async function averageMetrics(logs: Readonly<CallbackLogs>, options: { comm?: Communicator } = {}): Promise<Record<string, number>> {
  const who = 'averageMetrics';
  if (typeof logs !== 'object' || logs === null || Array.isArray(logs)) throw argumentError(who, 'expected an object of numbers or scalar tensors');
  const copy: CallbackLogs = {};
  for (const [k, v] of Object.entries(logs)) {
    if (typeof v === 'number') copy[k] = v;
    else if (v instanceof tf.Tensor && !v.isDisposed && v.size === 1) copy[k] = (await v.data())[0]!;
    else throw argumentError(who, `'${k}' must be a number or a one-element tensor`);
  }
  await averageLogs(resolveCommunicator(options.comm, who), copy);
  return copy as Record<string, number>;
}
