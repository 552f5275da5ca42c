/**
 * Base of ringtrain's model.fit / fitDataset callbacks, usable without importing tfjs-layers.
 *
 * tfjs-layers accepts either tf.Callback instances (checked with instanceof on the first element
 * of the list) or plain "CustomCallbackArgs" objects, which it wraps in a CustomCallback and calls
 * as `wrapper.handler(...)`. A ringtrain callback works both ways:
 * - it has every method of tf.Callback, so in a list that starts with a real tf.Callback it is
 *   driven directly and gets the model through setModel;
 * - its on* handlers are own properties that ignore their `this` for state, so when wrapped they
 *   still act on this object, and they pick the model up from the wrapper (which tfjs gives the
 *   model before onTrainBegin).
 * A list that starts with a ringtrain callback makes tfjs wrap every element, which breaks real
 * tf.Callback instances later in the list (tf.callbacks.earlyStopping...): put those first.
 */
import type { Tensor } from '@tensorflow/tfjs-core';
import type { ModelLike } from './model-like.js';

/** Values tfjs puts in logs: numbers, or scalar tensors not yet downloaded. */
export type LogValue = number | Tensor;
export type CallbackLogs = Record<string, LogValue>;

type Handler<A extends unknown[]> = (...args: A) => Promise<void>;

function holdsModel(ctx: unknown): ctx is { model: ModelLike } {
  return typeof ctx === 'object' && ctx !== null && 'model' in ctx && (ctx as { model: unknown }).model != null;
}

export abstract class RankCallback {
  /** Set by tfjs before training starts. */
  model: ModelLike | undefined = undefined;
  params: Record<string, unknown> | undefined = undefined;
  validationData: unknown = null;

  readonly onTrainBegin: Handler<[logs?: CallbackLogs]>;
  readonly onTrainEnd: Handler<[logs?: CallbackLogs]>;
  readonly onEpochBegin: Handler<[epoch: number, logs?: CallbackLogs]>;
  readonly onEpochEnd: Handler<[epoch: number, logs?: CallbackLogs]>;
  readonly onBatchBegin: Handler<[batch: number, logs?: CallbackLogs]>;
  readonly onBatchEnd: Handler<[batch: number, logs?: CallbackLogs]>;

  protected constructor() {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- handlers must reach this object whatever `this` tfjs calls them with
    const self = this;
    function wrap<A extends unknown[]>(body: (...args: A) => Promise<void>): Handler<A> {
      return async function (this: unknown, ...args: A): Promise<void> {
        if (this !== self && holdsModel(this)) self.model = this.model;
        await body.apply(self, args);
      };
    }
    this.onTrainBegin = wrap((logs?: CallbackLogs) => this.trainBegin(logs));
    this.onTrainEnd = wrap((logs?: CallbackLogs) => this.trainEnd(logs));
    this.onEpochBegin = wrap((epoch: number, logs?: CallbackLogs) => this.epochBegin(epoch, logs));
    this.onEpochEnd = wrap((epoch: number, logs?: CallbackLogs) => this.epochEnd(epoch, logs));
    this.onBatchBegin = wrap((batch: number, logs?: CallbackLogs) => this.batchBegin(batch, logs));
    this.onBatchEnd = wrap((batch: number, logs?: CallbackLogs) => this.batchEnd(batch, logs));
  }

  setParams(params: Record<string, unknown>): void {
    this.params = params;
  }

  setModel(model: ModelLike): void {
    this.model = model;
  }

  /** The model being trained; throws if tfjs has not provided one (e.g. a handler called by hand). */
  protected requireModel(who: string): ModelLike {
    if (this.model === undefined) {
      throw new Error(`ringtrain: ${who} has no model: use it in the callbacks of model.fit or model.fitDataset`);
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
