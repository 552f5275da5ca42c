/**
 * LocalSGD: every rank trains on its own shard with a plain (non-distributed) optimizer, and the
 * weights are averaged across ranks every `syncEvery` batches, trading gradient traffic on every
 * step for one weight average every k steps.
 */
import type { Communicator } from '../types.js';
import { averageModel } from './average-model.js';
import type { ModelLike } from './model-like.js';
import { RankCallback } from './rank-callback.js';
import { RingtrainError } from '../errors.js';

export interface LocalSGDOptions {
  /** Average the weights after every `syncEvery` batches (counted across epochs). */
  syncEvery: number;
  /** Also average when training ends on a batch count that is not a multiple of syncEvery. Default true. */
  syncAtEnd?: boolean;
  /** Default: the communicator made by init(). */
  comm?: Communicator;
  /** The model being trained; needed unless a tf.Callback comes first in the callbacks list (see RankCallback). */
  model?: ModelLike;
}

export class LocalSGD extends RankCallback {
  readonly syncEvery: number;
  readonly syncAtEnd: boolean;
  /** Number of averages done, for logs and tests. */
  syncs = 0;
  private readonly comm: Communicator | undefined;
  private batches = 0;

  constructor(options: LocalSGDOptions) {
    super(options?.model);
    const k = options?.syncEvery;
    if (!Number.isInteger(k) || k < 1) {
      throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: LocalSGD: syncEvery must be an integer >= 1, got ${String(k)}`);
    }
    this.syncEvery = k;
    this.syncAtEnd = options.syncAtEnd ?? true;
    this.comm = options.comm;
  }

  protected override async trainBegin(): Promise<void> {
    this.batches = 0;
  }

  protected override async batchEnd(): Promise<void> {
    this.batches++;
    if (this.batches % this.syncEvery === 0) await this.sync();
  }

  protected override async trainEnd(): Promise<void> {
    if (this.syncAtEnd && this.batches % this.syncEvery !== 0) await this.sync();
  }

  private async sync(): Promise<void> {
    await averageModel(this.requireModel('LocalSGD'), { comm: this.comm });
    this.syncs++;
  }
}
