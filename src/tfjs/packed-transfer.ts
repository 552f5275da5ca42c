/**
 * Moves many tensors through one collective per dtype: they are flattened and concatenated on the
 * backend, downloaded once, reduced or broadcast in place, and rebuilt as tensors of the original
 * shapes. Used by broadcastModel, broadcastVariables and averageModel (asynchronous paths; the
 * per-step gradient path has its own reducer).
 */
import * as tf from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';
import type { Communicator, CollectiveView } from '../types.js';

/** Shape and dtype of one tensor to transfer; equal on every rank (check before transferring). */
export interface TensorSpec {
  shape: readonly number[];
  dtype: string;
}

/** The spec of a tensor (or of anything with a concrete shape and a dtype). */
export function specOf(t: { shape: readonly number[]; dtype: string }): TensorSpec {
  return { shape: t.shape, dtype: t.dtype };
}

type Transport = 'float32' | 'int32' | 'uint8';

function transportOf(dtype: string, where: string): Transport {
  switch (dtype) {
    case 'float32':
      return 'float32';
    case 'int32':
      return 'int32';
    case 'bool':
      return 'uint8';
    default:
      throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: ${where}: cannot transfer a ${dtype} tensor (float32, int32 and bool only)`);
  }
}

function allocate(transport: Transport, n: number): Float32Array | Int32Array | Uint8Array {
  if (transport === 'float32') return new Float32Array(n);
  if (transport === 'int32') return new Int32Array(n);
  return new Uint8Array(n);
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Which specs go into which per-dtype buffer, and where. */
export interface PackLayout {
  groups: { transport: Transport; members: number[]; offsets: number[]; elements: number }[];
}

export function layoutFor(specs: readonly TensorSpec[], where: string): PackLayout {
  const byTransport = new Map<Transport, { transport: Transport; members: number[]; offsets: number[]; elements: number }>();
  specs.forEach((s, i) => {
    const t = transportOf(s.dtype, where);
    let g = byTransport.get(t);
    if (!g) {
      g = { transport: t, members: [], offsets: [], elements: 0 };
      byTransport.set(t, g);
    }
    g.members.push(i);
    g.offsets.push(g.elements);
    g.elements += sizeOf(s.shape);
  });
  // Fixed order so every rank issues the collectives in the same sequence.
  const order: Transport[] = ['float32', 'int32', 'uint8'];
  return { groups: order.flatMap((t) => (byTransport.get(t)?.elements ? [byTransport.get(t)!] : [])) };
}

/** Downloads `tensors` (laid out by `layout`) into fresh host buffers, one per group. */
export async function pack(layout: PackLayout, tensors: readonly tf.Tensor[]): Promise<CollectiveView[]> {
  const out: CollectiveView[] = [];
  for (const g of layout.groups) {
    const flat = tf.tidy(() => tf.concat(g.members.map((i) => tf.reshape(tensors[i]!, [-1]))));
    try {
      const data = (await flat.data()) as Float32Array | Int32Array | Uint8Array;
      // Copy: on the cpu backend data() is the tensor's own storage, which collectives would rewrite.
      const buf = allocate(g.transport, g.elements);
      buf.set(data);
      out.push(buf);
    } finally {
      flat.dispose();
    }
  }
  return out;
}

/** Empty host buffers for receiving, one per group. */
export function allocateFor(layout: PackLayout): CollectiveView[] {
  return layout.groups.map((g) => allocate(g.transport, g.elements));
}

/**
 * Rebuilds tensors from host buffers. The tensors may share the buffers' memory (zero-copy on the
 * cpu backend); the buffers must not be reused afterwards, which holds since they are fresh per call.
 */
export function unpack(layout: PackLayout, specs: readonly TensorSpec[], buffers: readonly CollectiveView[]): tf.Tensor[] {
  const out: tf.Tensor[] = new Array<tf.Tensor>(specs.length);
  layout.groups.forEach((g, gi) => {
    const buf = buffers[gi] as Float32Array | Int32Array | Uint8Array;
    g.members.forEach((i, k) => {
      const s = specs[i]!;
      const n = sizeOf(s.shape);
      const view = buf.subarray(g.offsets[k]!, g.offsets[k]! + n);
      out[i] = tf.tensor(view, s.shape.slice(), s.dtype as tf.DataType);
    });
  });
  return out;
}

/** Sends a small JSON value from `root` to every rank (length first, then UTF-8 bytes). */
export async function broadcastJson<T>(comm: Communicator, value: T | undefined, root: number): Promise<T> {
  const bytes = comm.rank === root ? new TextEncoder().encode(JSON.stringify(value)) : undefined;
  const len = new Int32Array([bytes?.length ?? 0]);
  await comm.broadcast(len, root);
  const buf = bytes ?? new Uint8Array(len[0]!);
  await comm.broadcast(buf, root);
  return JSON.parse(new TextDecoder().decode(buf)) as T;
}

export function checkRoot(comm: Communicator, root: number, who: string): void {
  if (!Number.isInteger(root) || root < 0 || root >= comm.size) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: ${who}: root must be a rank in 0..${comm.size - 1}, got ${root}`);
  }
}
