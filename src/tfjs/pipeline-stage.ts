/**
 * One stage's compute: its layers' forward pass, and the backward pass by rematerialisation.
 *
 * tfjs records a tape only inside one gradients call, and a pipeline's backward for a
 * micro-batch happens steps after its forward (other micro-batches in between, on other ranks),
 * so the forward runs without a tape and keeps only the stage's *input*; the backward runs the
 * forward again under tf.engine().gradients with the upstream gradient as dy, giving the
 * gradients of the stage's weights and of its input in one go. Cost: one extra forward per
 * micro-batch on every stage but the last (which runs forward and backward together), in
 * exchange for holding one input per micro-batch in flight instead of every intermediate
 * activation. Two side effects of running the forward twice are neutralised:
 * - random layers (Dropout) draw the same mask both times: Math.random, which seeds every
 *   unseeded tfjs random op, is replaced by a stream seeded per (step, micro-batch, stage);
 * - layers that update state in a training forward (BatchNormalization's moving statistics)
 *   update it once: the non-trainable weights are restored after the recomputation.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerLike } from './layer-chain.js';
import type { LayerVariableLike } from './model-like.js';
import type { LossOrMetricFn } from './pipeline-losses.js';
import { seededRandom } from './seeded-random.js';

export interface BackwardResult {
  /** Gradient of the stage input (null on stage 0, which has no upstream). */
  dx: tf.Tensor | null;
  /** Gradients of `trainable`, in order; null where the output does not depend on a weight. */
  grads: (tf.Tensor | null)[];
}

export interface LossResult extends BackwardResult {
  /** Sum over the micro-batch's rows of the per-row loss, and of each metric. */
  lossSum: number;
  metricSums: number[];
}

/** Runs `fn` with Math.random replaced by a stream determined by `seed`. Synchronous only. */
function withSeededRandom<T>(seed: string, fn: () => T): T {
  const saved = Math.random;
  Math.random = seededRandom(seed);
  try {
    return fn();
  } finally {
    Math.random = saved;
  }
}

function rowSum(t: tf.Tensor, rows: number): tf.Tensor {
  return t.rank === 0 ? tf.mul(t, rows) : tf.sum(t);
}

export class PipelineStage {
  readonly trainable: readonly LayerVariableLike[];
  readonly nonTrainable: readonly LayerVariableLike[];

  constructor(readonly layers: readonly LayerLike[]) {
    this.trainable = layers.flatMap((l) => l.trainableWeights);
    this.nonTrainable = layers.flatMap((l) => l.nonTrainableWeights);
  }

  /** Re-reads the weight lists (a builder's layers get theirs on first use). */
  static weightsOf(layers: readonly LayerLike[]): { trainable: LayerVariableLike[]; nonTrainable: LayerVariableLike[] } {
    return { trainable: layers.flatMap((l) => l.trainableWeights), nonTrainable: layers.flatMap((l) => l.nonTrainableWeights) };
  }

  private run(x: tf.Tensor, training: boolean): tf.Tensor {
    let h = x;
    for (const layer of this.layers) h = layer.apply(h, { training }) as tf.Tensor;
    return h;
  }

  /** The stage's output, computed without a tape. The caller owns it. */
  forward(x: tf.Tensor, training: boolean, seed: string): tf.Tensor {
    return withSeededRandom(seed, () => tf.tidy(() => this.run(x, training)));
  }

  /** Recomputes the forward from `x` and back-propagates `dy`. */
  backward(x: tf.Tensor, dy: tf.Tensor, seed: string, wantInputGrad: boolean): BackwardResult {
    return this.withStateRestored(() =>
      this.differentiate(x, wantInputGrad, seed, () => this.run(x, true), dy),
    );
  }

  /**
   * The last stage: forward, loss (the per-row mean times `weight`, the micro-batch's share of
   * the whole batch) and backward in one pass, plus the metrics of the same predictions.
   */
  lossStep(
    x: tf.Tensor,
    y: tf.Tensor,
    weight: number,
    seed: string,
    loss: LossOrMetricFn,
    metrics: readonly LossOrMetricFn[],
    wantInputGrad: boolean,
  ): LossResult {
    const rows = x.shape[0]!;
    let pred: tf.Tensor | undefined;
    let perRowLoss: tf.Tensor | undefined;
    const result = this.differentiate(x, wantInputGrad, seed, () => {
      const out = this.run(x, true);
      pred = tf.keep(out);
      const l = loss(y, out);
      perRowLoss = tf.keep(rowSum(l, rows));
      return tf.mul(tf.mean(l), weight) as tf.Scalar;
    });
    try {
      const sums = tf.tidy(() => tf.stack([perRowLoss!, ...metrics.map((m) => rowSum(m(y, pred!), rows))]));
      const values = Array.from(sums.dataSync());
      sums.dispose();
      return { ...result, lossSum: values[0]!, metricSums: values.slice(1) };
    } finally {
      tf.dispose([pred!, perRowLoss!]);
    }
  }

  /**
   * The stage's weight-regularizer penalty and its gradients (null: no regularizers). tfjs-layers
   * adds the penalties to every batch's loss; it depends on the weights only, so it is
   * differentiated once per batch, not per micro-batch.
   */
  regularization(): { value: number; grads: (tf.Tensor | null)[] } | null {
    const penalised = this.layers.filter((l) => (l.losses?.length ?? 0) > 0 && typeof l.calculateLosses === 'function');
    if (penalised.length === 0 || this.trainable.length === 0) return null;
    const vars = this.trainable.map((w) => w.read());
    const { value, grads } = tf.engine().gradients(
      () => tf.addN(penalised.flatMap((l) => l.calculateLosses!())) as tf.Scalar,
      vars,
      undefined,
      true,
    );
    const v = value.dataSync()[0]!;
    value.dispose();
    return { value: v, grads: (grads as (tf.Tensor | null | undefined)[]).map((g) => g ?? null) };
  }

  /** Forward only, inference mode, for predict/evaluate. */
  infer(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.run(x, false));
  }

  private differentiate(x: tf.Tensor, wantInputGrad: boolean, seed: string, f: () => tf.Tensor, dy?: tf.Tensor): BackwardResult {
    const vars = this.trainable.map((w) => w.read());
    const xs = wantInputGrad ? [x, ...vars] : vars;
    if (xs.length === 0) {
      // Nothing to differentiate (a parameter-free first stage): still run the forward for its side effects.
      tf.dispose(withSeededRandom(seed, () => tf.tidy(f)));
      return { dx: null, grads: [] };
    }
    const { value, grads } = withSeededRandom(seed, () => tf.engine().gradients(f, xs, dy, true));
    value.dispose();
    const all = (grads as (tf.Tensor | null | undefined)[]).map((g) => g ?? null);
    return { dx: wantInputGrad ? all[0] ?? null : null, grads: wantInputGrad ? all.slice(1) : all };
  }

  /** Runs `fn` and puts the non-trainable weights (BatchNorm statistics) back as they were. */
  private withStateRestored<T>(fn: () => T): T {
    if (this.nonTrainable.length === 0) return fn();
    const saved = this.nonTrainable.map((w) => tf.clone(w.read()));
    try {
      return fn();
    } finally {
      this.nonTrainable.forEach((w, i) => w.write(saved[i]!));
      tf.dispose(saved);
    }
  }
}
