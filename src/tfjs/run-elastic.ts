/**
 * runElastic: runs a training function so that it survives the loss of ranks (and takes in new
 * ones) in an elastic job (ringtrain --min-np). When a collective fails because a peer is gone,
 * or the ranks agreed at a commit to take in waiting workers, the rank leaves its world (closes
 * the communicator), asks the launcher for the next one (init()), brings the new world to the
 * newest commit all survivors share (ElasticState.sync), runs the reset callbacks and calls the
 * function again. Anything else (a bug, a bad argument) ends it as usual.
 */
import { elasticClient } from '../elastic-client.js';
import { RingtrainError, type RingtrainErrorCode } from '../errors.js';
import { currentCommunicator, init } from '../init.js';
import type { Communicator } from '../types.js';
import type { ElasticState } from './elastic-state.js';

/** What a peer's loss (or a re-formation) looks like from inside a collective or an init(). */
const RECOVERABLE: ReadonlySet<RingtrainErrorCode> = new Set([
  'ERR_RINGTRAIN_PEER',
  'ERR_RINGTRAIN_TIMEOUT',
  'ERR_RINGTRAIN_CLOSED',
  'ERR_RINGTRAIN_RENDEZVOUS',
  'ERR_RINGTRAIN_RESET',
]);

/** How many worlds in a row may fail to form around this rank before it gives up. */
const MAX_JOIN_ATTEMPTS = 20;

export interface RunElasticOptions {
  /** Told about every reset: why, and how long the rank was out of training (ms). */
  onEvent?: (event: ElasticEvent) => void;
}

export interface ElasticEvent {
  kind: 'reset';
  reason: string;
  /** ms from the failure to the restored state (new world formed, state broadcast). */
  recoveryMs: number;
  /** The commit the world went back to. */
  commitId: number;
  rank: number;
  size: number;
}

function codeOf(e: unknown): RingtrainErrorCode | undefined {
  for (let x: unknown = e, depth = 0; x && depth < 5; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_RINGTRAIN_')) return code as RingtrainErrorCode;
  }
  return undefined;
}

/** Whether runElastic recovers from `e` (a lost peer, a broken or re-forming world). */
export function isRecoverable(e: unknown): boolean {
  const code = codeOf(e);
  return code !== undefined && RECOVERABLE.has(code);
}

function openCommunicator(): Communicator | undefined {
  try {
    return currentCommunicator();
  } catch {
    return undefined;
  }
}

/** Leaves the current world and joins the next one the launcher forms. */
async function rejoin(): Promise<Communicator> {
  let last: unknown;
  for (let attempt = 0; attempt < MAX_JOIN_ATTEMPTS; attempt++) {
    await openCommunicator()?.close().catch(() => undefined);
    try {
      return await init();
    } catch (e) {
      if (!isRecoverable(e)) throw e;
      last = e;
    }
  }
  throw new RingtrainError('ERR_RINGTRAIN_ELASTIC', `ringtrain: elastic: ${MAX_JOIN_ATTEMPTS} worlds in a row failed to form (last: ${(last as Error).message})`);
}

export async function runElastic<S extends ElasticState, R>(state: S, fn: (state: S) => R | Promise<R>, options: RunElasticOptions = {}): Promise<R> {
  const elastic = elasticClient() !== undefined;
  if (!openCommunicator()) await (elastic ? rejoin() : init());
  let failure: { reason: string; at: number } | undefined;
  for (;;) {
    try {
      const { commitId } = await state.sync();
      if (failure) {
        await state.runResetCallbacks();
        options.onEvent?.({ kind: 'reset', reason: failure.reason, recoveryMs: Date.now() - failure.at, commitId, rank: state.rank, size: state.size });
        failure = undefined;
      }
      return await fn(state);
    } catch (e) {
      // Outside an elastic job there is no next world: fail as a plain job does.
      if (!elastic || !isRecoverable(e)) throw e;
      failure ??= { reason: (e as Error).message.replace(/^ringtrain: /, ''), at: Date.now() };
      await rejoin();
    }
  }
}
