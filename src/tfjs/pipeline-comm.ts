/**
 * What PipelineModel needs from a communicator beyond the collectives: point-to-point messages
 * between stages and a split into data-parallel groups. Activations and their gradients travel
 * as float32; every rank knows every boundary's shape from the layer chain, so a receiver sizes
 * its buffer itself and the native length check turns any disagreement into ERR_RINGTRAIN_MISMATCH.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';
import type { Communicator } from '../types.js';

/** The communicator a pipeline runs on: send/recv between stages, split into data-parallel groups. */
export type PipelineCommunicator = Communicator;

/** Tags of the two message streams between neighbouring stages. */
export const ACTIVATION_TAG = 1201;
export const GRADIENT_TAG = 1202;

export function asPipelineCommunicator(comm: Communicator, needsSplit: boolean): PipelineCommunicator {
  const c = comm as Partial<PipelineCommunicator>;
  const missing = [
    ...(typeof c.send === 'function' ? [] : ['send']),
    ...(typeof c.recv === 'function' ? [] : ['recv']),
    ...(!needsSplit || typeof c.split === 'function' ? [] : ['split']),
  ];
  if (missing.length > 0) {
    throw new RingtrainError(
      'ERR_RINGTRAIN_ARGUMENT',
      `ringtrain: PipelineModel: the communicator has no ${missing.join('/')} (point-to-point messages and split are needed between stages)`,
    );
  }
  return comm as PipelineCommunicator;
}

function elements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Sends a float32 copy of `t` (the caller may dispose `t` at once). The returned promise settles
 * when the receiver has the data; callers do not await it before their next step (an isend).
 */
export function sendTensor(comm: PipelineCommunicator, t: tf.Tensor, dst: number, tag: number): Promise<unknown> {
  const data = t.dtype === 'float32' ? (t.dataSync() as Float32Array) : Float32Array.from(t.dataSync() as ArrayLike<number>);
  // A copy: on the cpu backend dataSync is the tensor's own storage, freed with it.
  return comm.send(data.slice(), dst, { tag });
}

/** Receives a float32 tensor of `shape` from `src`. */
export async function recvTensor(comm: PipelineCommunicator, shape: readonly number[], src: number, tag: number): Promise<tf.Tensor> {
  const buf = await comm.recv(new Float32Array(elements(shape)), src, { tag });
  return tf.tensor(buf, shape.slice(), 'float32');
}
