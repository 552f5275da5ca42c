/**
 * MetricAverageCallback: replaces the epoch's logs (loss, metrics, val_*) with their mean across
 * ranks, so what rank 0 prints and what History records describe the whole data set, not one shard.
 * Callbacks after it in the list (and History) see the averaged values.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';
import type { Communicator } from '../types.js';
import { resolveCommunicator } from './default-communicator.js';
import { agree, hash32 } from './rank-agreement.js';
import { RankCallback, type CallbackLogs } from './rank-callback.js';

export interface MetricAverageCallbackOptions {
  /** Default: the communicator made by init(). */
  comm?: Communicator;
}

export class MetricAverageCallback extends RankCallback {
  private readonly comm: Communicator | undefined;

  constructor(options: MetricAverageCallbackOptions = {}) {
    super();
    this.comm = options.comm;
  }

  protected override async epochEnd(_epoch: number, logs?: CallbackLogs): Promise<void> {
    if (logs === undefined) return;
    await averageLogs(resolveCommunicator(this.comm, 'MetricAverageCallback'), logs);
  }
}

/** Averages the numeric entries of `logs` across ranks, in place (scalar tensors are read and disposed). */
export async function averageLogs(comm: Communicator, logs: CallbackLogs): Promise<void> {
  if (typeof logs !== 'object' || logs === null) throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', 'ringtrain: averageLogs: expected an object of numbers or scalar tensors');
  const keys = Object.keys(logs).sort();
  const values = new Float64Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const v = logs[keys[i]!]!;
    if (typeof v !== 'number' && !(v instanceof tf.Tensor && !v.isDisposed && v.size === 1)) {
      throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: averageLogs: '${keys[i]}' must be a number or a one-element tensor`);
    }
    values[i] = typeof v === 'number' ? v : (await v.data())[0]!;
  }
  await agree(
    comm,
    { hash: hash32(keys.join('\n')), counts: [keys.length] },
    'the logged metrics',
    (s) => `${s.counts[0]} entries`,
    'Every rank must compile the same metrics and use validation data on all ranks or on none.',
  );
  await comm.allreduce(values, { op: 'avg' });
  keys.forEach((k, i) => {
    const old = logs[k];
    logs[k] = values[i]!;
    if (typeof old !== 'number' && old !== undefined) tf.dispose(old);
  });
}
