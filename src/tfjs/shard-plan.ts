/**
 * Which elements a rank takes. Element i of an epoch (after the optional shuffle) goes to rank
 * i mod size, so shards are disjoint and together cover the data. When the element count n is not
 * a multiple of size, ranks would take different numbers of steps, and a synchronous all-reduce
 * would then wait forever for the ranks that stopped early; so the last, partial group of
 * L = n mod size elements is either
 * - `pad` (default): ranks L..size-1 each also take one element of that group (at most size-1
 *   duplicates an epoch; every element is still covered), or
 * - `drop`: dropped on every rank (strictly disjoint; with a shuffle, different elements every epoch).
 */
import { RingtrainError } from '../errors.js';
import type { Communicator } from '../types.js';
import { resolveCommunicator } from './default-communicator.js';
import { permutation, seededRandom } from './seeded-random.js';

export type ShardRemainder = 'pad' | 'drop';

export interface ShardOptions {
  /** Where rank and size come from. Default: the communicator made by init(). */
  comm?: Communicator;
  /** Overrides comm.rank (with `size`, no communicator is needed). */
  rank?: number;
  size?: number;
  /** Shuffle with this seed (same on every rank): a new order every epoch, identical across ranks. */
  seed?: number | string;
  /** Handling of the n mod size leftover elements. Default `pad`. */
  remainder?: ShardRemainder;
}

export interface ResolvedShard {
  rank: number;
  size: number;
  seed: number | string | undefined;
  remainder: ShardRemainder;
}

function argumentError(who: string, message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: ${who}: ${message}`);
}

export function resolveShard(options: ShardOptions, who: string): ResolvedShard {
  let rank = options.rank;
  let size = options.size;
  if (rank === undefined || size === undefined) {
    const comm = resolveCommunicator(options.comm, who);
    rank ??= comm.rank;
    size ??= comm.size;
  }
  if (!Number.isInteger(size) || size < 1) throw argumentError(who, `size must be an integer >= 1, got ${size}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= size) throw argumentError(who, `rank must be in 0..${size - 1}, got ${rank}`);
  const remainder = options.remainder ?? 'pad';
  if (remainder !== 'pad' && remainder !== 'drop') throw argumentError(who, `remainder must be 'pad' or 'drop', got '${String(remainder)}'`);
  const seed = options.seed;
  if (seed !== undefined && typeof seed !== 'string' && !Number.isFinite(seed)) throw argumentError(who, `seed must be a finite number or a string`);
  return { rank, size, seed, remainder };
}

/** Number of elements each rank gets from n. */
export function shardLength(n: number, s: Pick<ResolvedShard, 'size' | 'remainder'>): number {
  return s.remainder === 'pad' ? Math.ceil(n / s.size) : Math.floor(n / s.size);
}

/** Position (within the last, partial group of `left` elements) that a padding rank takes. */
export function paddingPosition(rank: number, left: number): number {
  return (rank - left) % left;
}

/**
 * Indices (into 0..n-1) that `rank` takes, in order. With a seed, the order is a permutation of
 * the data drawn from the seed (`epoch` picks a fresh one).
 */
export function shardIndices(n: number, options: ShardOptions & { epoch?: number } = {}): Int32Array {
  if (!Number.isInteger(n) || n < 0) throw argumentError('shardIndices', `n must be an integer >= 0, got ${n}`);
  const s = resolveShard(options, 'shardIndices');
  const order = s.seed === undefined ? undefined : permutation(n, seededRandom(s.seed, options.epoch ?? 0));
  const at = (i: number): number => (order ? order[i]! : i);
  const full = Math.floor(n / s.size);
  const left = n - full * s.size;
  const out = new Int32Array(shardLength(n, s));
  for (let g = 0; g < full; g++) out[g] = at(g * s.size + s.rank);
  if (left > 0 && s.remainder === 'pad') {
    const base = full * s.size;
    out[full] = at(base + (s.rank < left ? s.rank : paddingPosition(s.rank, left)));
  }
  return out;
}
