/** Machine-readable error codes carried by every error ringtrain throws. */
export type RingtrainErrorCode =
  | 'ERR_RINGTRAIN_CONTRACT'
  | 'ERR_RINGTRAIN_ARGUMENT'
  | 'ERR_RINGTRAIN_TIMEOUT'
  | 'ERR_RINGTRAIN_PEER'
  | 'ERR_RINGTRAIN_MISMATCH'
  | 'ERR_RINGTRAIN_AUTH'
  | 'ERR_RINGTRAIN_CLOSED'
  | 'ERR_RINGTRAIN_NOT_INITIALIZED'
  | 'ERR_RINGTRAIN_RENDEZVOUS'
  | 'ERR_RINGTRAIN_NO_GPU'
  /** Elastic job: no next world (below --min-np, the launcher stopped the job, or it is gone). */
  | 'ERR_RINGTRAIN_ELASTIC'
  /** Elastic job: the ranks agreed at commit() to re-form the world (workers wait to join); runElastic handles it. */
  | 'ERR_RINGTRAIN_RESET'
  | 'ERR_RINGTRAIN_INTERNAL';

export class RingtrainError extends Error {
  readonly code: RingtrainErrorCode;
  constructor(code: RingtrainErrorCode, message: string) {
    super(message);
    this.name = 'RingtrainError';
    this.code = code;
  }
}
