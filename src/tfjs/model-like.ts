/**
 * Structural views of the tfjs-layers objects ringtrain touches. Declared here rather than imported
 * so that `ringtrain/tfjs` depends on @tensorflow/tfjs-core alone: a tfjs-layers LayersModel (from
 * @tensorflow/tfjs, tfjs-node or tfjs-node-gpu) satisfies these, whichever package provided it.
 */
import type { Optimizer, Tensor } from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';

/** A tfjs-layers LayerVariable: a model weight, trainable or not (e.g. BatchNorm moving statistics). */
export interface LayerVariableLike {
  readonly name: string;
  /** Declared shape (tfjs-layers' Shape allows null); the value's actual shape is `read().shape`. */
  readonly shape: readonly (number | null)[];
  readonly dtype: string;
  readonly trainable: boolean;
  /** The backing tf.Variable; owned by the layer, never disposed by ringtrain. */
  read(): Tensor;
  /** Assigns a copy of `value`; the caller keeps ownership of `value`. */
  write(value: Tensor): unknown;
}

/** A tfjs-layers LayersModel, as far as ringtrain is concerned. */
export interface ModelLike {
  /** All weights, trainable first then non-trainable, in a deterministic layer order. */
  readonly weights: readonly LayerVariableLike[];
  /** Set by `compile`; absent or null before. */
  readonly optimizer?: Optimizer | null;
}


/** Throws ERR_RINGTRAIN_ARGUMENT unless `model` looks like a tfjs-layers model (has a weights list). */
export function checkModel(model: unknown, who: string): asserts model is ModelLike {
  const weights = (model as { weights?: unknown } | null | undefined)?.weights;
  if (!Array.isArray(weights)) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: ${who}: expected a tf.LayersModel (an object with a weights list), got ${model === null ? 'null' : typeof model}`);
  }
}
