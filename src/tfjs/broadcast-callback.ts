/** BroadcastCallback: broadcastModel at the start of every model.fit / fitDataset. */
import type { Communicator } from '../types.js';
import { broadcastModel } from './broadcast-model.js';
import type { ModelLike } from './model-like.js';
import { RankCallback } from './rank-callback.js';

export interface BroadcastCallbackOptions {
  /** Rank whose weights and optimizer state everybody takes. Default 0. */
  root?: number;
  /** Default: the communicator made by init(). */
  comm?: Communicator;
  /** The model being trained; needed unless a tf.Callback comes first in the callbacks list (see RankCallback). */
  model?: ModelLike;
}

export class BroadcastCallback extends RankCallback {
  readonly root: number;
  private readonly comm: Communicator | undefined;

  constructor(options: BroadcastCallbackOptions = {}) {
    super(options?.model);
    this.root = options.root ?? 0;
    this.comm = options.comm;
  }

  protected override async trainBegin(): Promise<void> {
    await broadcastModel(this.requireModel('BroadcastCallback'), { root: this.root, comm: this.comm });
  }
}
