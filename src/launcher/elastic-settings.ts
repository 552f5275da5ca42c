/** Checks the elastic options of the command line (--min-np, --max-np, --elastic-timeout) before anything starts. */
import { DEFAULT_ELASTIC_TIMEOUT_S } from '../elastic-protocol.js';
import { RingtrainError } from '../errors.js';
import type { ElasticOptions } from './launcher.js';

function argumentError(message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_ARGUMENT', message);
}

function count(value: number | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1) throw argumentError(`${what} must be a whole number >= 1, got ${value}`);
  return value;
}

/**
 * Undefined for a job that is not elastic (no --min-np). `np` is the -np the job starts with
 * (given, or the slots it will fill).
 */
export function elasticSettings(
  np: number,
  minNp: number | undefined,
  maxNp: number | undefined,
  timeoutS: number | undefined,
): ElasticOptions | undefined {
  const min = count(minNp, '--min-np');
  const max = count(maxNp, '--max-np');
  if (min === undefined) {
    if (max !== undefined) throw argumentError('--max-np needs --min-np (an elastic job): give --min-np too');
    if (timeoutS !== undefined) throw argumentError('--elastic-timeout needs --min-np (an elastic job)');
    return undefined;
  }
  const top = max ?? np;
  if (!(min <= np && np <= top)) {
    throw argumentError(`an elastic job needs --min-np <= -np <= --max-np, got --min-np ${min}, -np ${np}, --max-np ${top}${max === undefined ? ' (the default: -np)' : ''}`);
  }
  const t = timeoutS ?? DEFAULT_ELASTIC_TIMEOUT_S;
  if (!Number.isFinite(t) || t <= 0) throw argumentError(`--elastic-timeout must be a number of seconds > 0, got ${t}`);
  return { minNp: min, maxNp: top, timeoutS: t };
}
