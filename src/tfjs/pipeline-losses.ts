/**
 * Losses and metrics for PipelineModel, on tfjs-core alone (ringtrain/tfjs does not depend on
 * tfjs-layers). The named ones follow tfjs-layers' definitions — per-sample values along the last
 * axis, probabilities clipped to [epsilon, 1 - epsilon] — so a pipeline reports what model.fit
 * reports. A function (yTrue, yPred) => per-sample (or scalar) tensor may be given instead.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';

/** Per-sample values (shape [rows]) or a scalar; PipelineModel takes the mean. */
export type LossOrMetricFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

export interface ResolvedFn {
  /** The key in logs and History (tfjs-layers' names: `acc` for accuracy). */
  key: string;
  fn: LossOrMetricFn;
}

function eps(): number {
  return tf.backend().epsilon();
}

function meanSquaredError(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.mean(tf.square(tf.sub(yPred, yTrue)), -1);
}

function meanAbsoluteError(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.mean(tf.abs(tf.sub(yPred, yTrue)), -1);
}

function categoricalCrossentropy(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  const last = yPred.shape.length - 1;
  const normalised = tf.div(yPred, tf.sum(yPred, last, true));
  const clipped = tf.clipByValue(normalised, eps(), 1 - eps());
  return tf.neg(tf.sum(tf.mul(tf.cast(yTrue, 'float32'), tf.log(clipped)), last));
}

function sparseCategoricalCrossentropy(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  const classes = yPred.shape[yPred.shape.length - 1]!;
  const labels = tf.cast(tf.floor(tf.reshape(yTrue, [-1])), 'int32');
  const clipped = tf.clipByValue(yPred, eps(), 1 - eps());
  return categoricalCrossentropy(tf.reshape(tf.oneHot(labels, classes), clipped.shape), clipped);
}

function binaryCrossentropy(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  const p = tf.clipByValue(yPred, eps(), 1 - eps());
  const logits = tf.log(tf.div(p, tf.sub(1, p)));
  // max(x, 0) - x z + log(1 + exp(-|x|)): the stable form of the logistic loss.
  const perElement = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, yTrue)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
  return tf.mean(perElement, -1);
}

function categoricalAccuracy(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.cast(tf.equal(tf.argMax(yTrue, -1), tf.argMax(yPred, -1)), 'float32');
}

function sparseCategoricalAccuracy(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  const labels = tf.cast(tf.reshape(yTrue, [-1]), 'int32');
  return tf.cast(tf.equal(labels, tf.cast(tf.argMax(yPred, -1), 'int32')), 'float32');
}

function binaryAccuracy(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.mean(tf.cast(tf.equal(yTrue, tf.cast(tf.greater(yPred, 0.5), yTrue.dtype)), 'float32'), -1);
}

const LOSSES: Readonly<Record<string, LossOrMetricFn>> = {
  meanSquaredError,
  mse: meanSquaredError,
  MSE: meanSquaredError,
  meanAbsoluteError,
  mae: meanAbsoluteError,
  MAE: meanAbsoluteError,
  categoricalCrossentropy,
  sparseCategoricalCrossentropy,
  binaryCrossentropy,
};

const METRICS: Readonly<Record<string, LossOrMetricFn>> = {
  ...LOSSES,
  categoricalAccuracy,
  sparseCategoricalAccuracy,
  binaryAccuracy,
};

function argumentError(message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: PipelineModel.compile: ${message}`);
}

export function resolveLoss(loss: string | LossOrMetricFn): ResolvedFn {
  if (typeof loss === 'function') return { key: 'loss', fn: loss };
  const fn = LOSSES[loss];
  if (fn === undefined) throw argumentError(`unknown loss '${String(loss)}' (known: ${Object.keys(LOSSES).join(', ')}; or pass a function (yTrue, yPred) => tensor)`);
  return { key: 'loss', fn };
}

/** 'accuracy' / 'acc' picks the accuracy that fits the loss, as tfjs-layers does. */
export function resolveMetric(metric: string | LossOrMetricFn, loss: string | LossOrMetricFn): ResolvedFn {
  if (typeof metric === 'function') return { key: metric.name || 'metric', fn: metric };
  if (metric === 'accuracy' || metric === 'acc') {
    const fn =
      loss === 'categoricalCrossentropy' ? categoricalAccuracy
      : loss === 'sparseCategoricalCrossentropy' ? sparseCategoricalAccuracy
      : binaryAccuracy;
    return { key: 'acc', fn };
  }
  const fn = METRICS[metric];
  if (fn === undefined) throw argumentError(`unknown metric '${metric}' (known: accuracy, ${Object.keys(METRICS).join(', ')}; or pass a function)`);
  return { key: metric, fn };
}
