/**
 * The communicator ringtrain/tfjs uses when a call is not given one: the one made by the last
 * successful `init()`.
 */
import { currentCommunicator } from '../init.js';
import { RingtrainError } from '../errors.js';
import type { Communicator } from '../types.js';

/** `comm` if given, else init()'s; throws a clear error if neither is open. */
export function resolveCommunicator(comm: Communicator | undefined, who: string): Communicator {
  if (comm === undefined) {
    try {
      return currentCommunicator();
    } catch (e) {
      const code = e instanceof RingtrainError ? e.code : 'ERR_RINGTRAIN_NOT_INITIALIZED';
      const why = code === 'ERR_RINGTRAIN_CLOSED' ? "the communicator made by init() is closed: call `await init()` again" : 'call `await init()` first';
      throw new RingtrainError(code, `ringtrain: ${who} needs a communicator: ${why}, or pass { comm }`);
    }
  }
  if (comm.closed) throw new RingtrainError('ERR_RINGTRAIN_CLOSED', `ringtrain: ${who}: the communicator is closed`);
  return comm;
}
