// PipelineModel's losses and metrics (written on tfjs-core alone) report what tfjs-layers' own do:
// each named loss, and the accuracy 'accuracy' picks for it, against model.evaluate of a small
// compiled model on the same predictions.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveLoss, resolveMetric } from '../../dist/tfjs/pipeline-losses.js';
import { mulberry32 } from '../helpers/mulberry32.mjs';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function uniform(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

const ROWS = 13;
const CLASSES = 4;

/** tfjs-layers' [loss, accuracy] for `model` on x, y, and ours on the same predictions. */
function both(loss: string, activation: string, units: number, y: tf.Tensor): { theirs: number[]; ours: number[] } {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [5], units, activation, kernelInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: 3 }) })],
  });
  model.compile({ optimizer: 'sgd', loss, metrics: ['accuracy'] });
  const x = tf.tensor2d(uniform(ROWS * 5, 7), [ROWS, 5]);
  const theirs = (model.evaluate(x, y) as tf.Scalar[]).map((s) => s.dataSync()[0]!);
  const pred = model.predict(x) as tf.Tensor;
  const ours = [resolveLoss(loss), resolveMetric('accuracy', loss)].map((f) => tf.mean(f.fn(y, pred)).dataSync()[0]!);
  return { theirs, ours };
}

describe('pipeline losses and metrics match tfjs-layers', () => {
  it('categoricalCrossentropy and categorical accuracy', () => {
    const labels = Array.from(uniform(ROWS, 11), (v) => Math.floor((v + 1) * 2) % CLASSES);
    const { theirs, ours } = both('categoricalCrossentropy', 'softmax', CLASSES, tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES).toFloat());
    ours.forEach((v, i) => expect(v).toBeCloseTo(theirs[i]!, 6));
  });

  it('sparseCategoricalCrossentropy and sparse accuracy', () => {
    const labels = Array.from(uniform(ROWS, 12), (v) => Math.floor((v + 1) * 2) % CLASSES);
    const { theirs, ours } = both('sparseCategoricalCrossentropy', 'softmax', CLASSES, tf.tensor2d(labels, [ROWS, 1]));
    ours.forEach((v, i) => expect(v).toBeCloseTo(theirs[i]!, 6));
  });

  it('binaryCrossentropy and binary accuracy', () => {
    const labels = Array.from(uniform(ROWS * 2, 13), (v) => (v > 0 ? 1 : 0));
    const { theirs, ours } = both('binaryCrossentropy', 'sigmoid', 2, tf.tensor2d(labels, [ROWS, 2]));
    ours.forEach((v, i) => expect(v).toBeCloseTo(theirs[i]!, 6));
  });

  it('meanSquaredError and meanAbsoluteError', () => {
    const y = tf.tensor2d(uniform(ROWS * 3, 14), [ROWS, 3]);
    for (const loss of ['meanSquaredError', 'meanAbsoluteError']) {
      const { theirs, ours } = both(loss, 'linear', 3, y);
      expect(ours[0]).toBeCloseTo(theirs[0]!, 6);
    }
    expect(resolveMetric('mae', 'mse').key).toBe('mae');
    expect(resolveMetric('accuracy', 'categoricalCrossentropy').key).toBe('acc');
  });
});
