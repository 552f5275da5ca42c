/**
 * Base of ringtrain's model.fit / fitDataset callbacks, usable without importing tfjs-layers.
 *
 * tfjs-layers accepts either tf.Callback instances (checked with instanceof on the first element
 * of the list) or plain "CustomCallbackArgs" objects, which it wraps in a CustomCallback and calls
 * as `wrapper.onX(...)`. A ringtrain callback works both ways:
 * - it has every method of tf.Callback, so in a list that starts with a real tf.Callback it is
 *   driven directly and tfjs hands it the model through setModel;
 * - its on* handlers are own properties bound to this object, so when tfjs wraps it they still act
 *   on it. tfjs does not give wrapped callbacks the model, so callbacks that need it take a
 *   `model` option for that case.
 * A list that starts with a ringtrain callback (or any plain object) makes tfjs wrap every element,
 * which breaks real tf.Callback instances later in the list (tf.callbacks.earlyStopping, ...): put
 * those first.
 */
import type { Tensor } from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';
import type { ModelLike } from './model-like.js';

/** Values tfjs puts in logs: numbers, or scalar tensors not yet downloaded. */
export type LogValue = number | Tensor;
export type CallbackLogs = Record<string, LogValue>;

type Handler<A extends unknown[]> = (...args: A) => Promise<void>;

export abstract class RankCallback {
  /** Set by tfjs before training starts. */
  model: ModelLike | undefined;
  params: Record<string, unknown> | undefined = undefined;
  validationData: unknown = null;

  readonly onTrainBegin: Handler<[logs?: CallbackLogs]>;
  readonly onTrainEnd: Handler<[logs?: CallbackLogs]>;
  readonly onEpochBegin: Handler<[epoch: number, logs?: CallbackLogs]>;
  readonly onEpochEnd: Handler<[epoch: number, logs?: CallbackLogs]>;
  readonly onBatchBegin: Handler<[batch: number, logs?: CallbackLogs]>;
  readonly onBatchEnd: Handler<[batch: number, logs?: CallbackLogs]>;

  protected constructor(model?: ModelLike) {
    this.model = model;
    // Arrow functions: `this` stays this object whatever tfjs calls the handler on.
    this.onTrainBegin = (logs) => this.trainBegin(logs);
    this.onTrainEnd = (logs) => this.trainEnd(logs);
    this.onEpochBegin = (epoch, logs) => this.epochBegin(epoch, logs);
    this.onEpochEnd = (epoch, logs) => this.epochEnd(epoch, logs);
    this.onBatchBegin = (batch, logs) => this.batchBegin(batch, logs);
    this.onBatchEnd = (batch, logs) => this.batchEnd(batch, logs);
  }

  setParams(params: Record<string, unknown>): void {
    this.params = params;
  }

  setModel(model: ModelLike): void {
    this.model = model;
  }

  /** The model being trained: from the `model` option, or from tfjs when it drives this callback directly. */
  protected requireModel(who: string): ModelLike {
    if (this.model === undefined) {
      throw new RingtrainError(
        'ERR_RINGTRAIN_ARGUMENT',
        `ringtrain: ${who} does not know the model: pass it, new ${who}({ model, ... }) ` +
          '(tfjs-layers gives the model only to tf.Callback instances, and only when one comes first in the callbacks list)',
      );
    }
    return this.model;
  }

  protected async trainBegin(_logs?: CallbackLogs): Promise<void> {}
  protected async trainEnd(_logs?: CallbackLogs): Promise<void> {}
  protected async epochBegin(_epoch: number, _logs?: CallbackLogs): Promise<void> {}
  protected async epochEnd(_epoch: number, _logs?: CallbackLogs): Promise<void> {}
  protected async batchBegin(_batch: number, _logs?: CallbackLogs): Promise<void> {}
  protected async batchEnd(_batch: number, _logs?: CallbackLogs): Promise<void> {}
}
