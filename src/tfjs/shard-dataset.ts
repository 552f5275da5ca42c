/**
 * shardDataset: this rank's part of a tf.data.Dataset, re-dealt every epoch (every iterator() call).
 *
 * Every rank reads the whole upstream stream and keeps element i when i mod size == rank (see
 * shard-plan.ts for the leftover rule); the others are disposed as they pass. With a seed, the
 * stream first goes through a seeded shuffle buffer whose order is the same on every rank and new
 * every epoch. Reading everything on every rank costs upstream work, but needs no index access and
 * works for any stream (generators, CSV, ...); shard arrays up front with shardArrays where that
 * matters.
 *
 * The result is built on the same Dataset / LazyIterator classes as the input (found through its
 * prototype chain), so .batch(), .map(), fitDataset and so on work as usual, without ringtrain
 * importing a second copy of tfjs-data.
 */
import { RingtrainError } from '../errors.js';
import * as tf from '@tensorflow/tfjs-core';
import { seededRandom } from './seeded-random.js';
import { paddingPosition, resolveShard, shardLength, type ResolvedShard, type ShardOptions } from './shard-plan.js';

/** The part of tf.data.LazyIterator that ringtrain uses. */
export interface LazyIteratorLike<T> {
  next(): Promise<IteratorResult<T>>;
  summary?(): string;
}

/** The part of tf.data.Dataset that ringtrain uses. */
export interface DatasetLike<T> {
  size: number | null;
  iterator(): Promise<LazyIteratorLike<T>>;
}

export interface ShardDatasetOptions extends ShardOptions {
  /** Elements held by the seeded shuffle. Default: the dataset size if known, at most 10000. */
  shuffleBuffer?: number;
}

/** The topmost prototype below Object.prototype: Dataset.prototype / LazyIterator.prototype for tfjs-data objects. */
function rootPrototype(obj: object): object {
  let p = Object.getPrototypeOf(obj) as object | null;
  if (p === null) return Object.prototype;
  for (;;) {
    const up = Object.getPrototypeOf(p) as object | null;
    if (up === null || up === Object.prototype) return p;
    p = up;
  }
}

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

function disposeAll(values: readonly unknown[]): void {
  for (const v of values) tf.dispose(v as tf.TensorContainer);
}

/** A deterministic shuffle buffer: fill, then hand out a random held element and refill its place. */
function shuffled<T>(source: LazyIteratorLike<T>, capacity: number, random: () => number): LazyIteratorLike<T> {
  const held: T[] = [];
  let upstreamDone = false;
  return {
    next: serialized<T>(async (): Promise<IteratorResult<T>> => {
      while (!upstreamDone && held.length < capacity) {
        const r = await source.next();
        if (r.done) upstreamDone = true;
        else held.push(r.value);
      }
      if (held.length === 0) return DONE;
      const i = Math.floor(random() * held.length);
      const value = held[i]!;
      held[i] = held[held.length - 1]!;
      held.pop();
      return { value, done: false };
    }),
  };
}

/**
 * Runs calls one after another even when the caller does not await (a downstream prefetch may call
 * next() several times at once); each call reads several upstream elements, so interleaving them
 * would deal elements differently on different ranks.
 */
function serialized<T>(step: () => Promise<IteratorResult<T>>): () => Promise<IteratorResult<T>> {
  let last: Promise<unknown> = Promise.resolve();
  return () => {
    const p = last.then(step);
    last = p.catch(() => undefined);
    return p;
  };
}

function dealer<T>(source: LazyIteratorLike<T>, s: ResolvedShard): () => Promise<IteratorResult<T>> {
  let finished = false;
  return serialized<T>(async (): Promise<IteratorResult<T>> => {
    if (finished) return DONE;
    const group: T[] = [];
    while (group.length < s.size) {
      const r = await source.next();
      if (r.done) break;
      group.push(r.value);
    }
    let pick: number;
    if (group.length === s.size) {
      pick = s.rank;
    } else {
      finished = true;
      const left = group.length;
      if (left === 0) return DONE;
      if (s.remainder === 'drop') {
        disposeAll(group);
        return DONE;
      }
      pick = s.rank < left ? s.rank : paddingPosition(s.rank, left);
    }
    const value = group[pick]!;
    disposeAll(group.filter((_, i) => i !== pick));
    return { value, done: false };
  });
}

/**
 * This rank's shard of `dataset`: disjoint from the other ranks' shards and, together with them,
 * covering every element every epoch; every rank gets the same number of elements (see
 * `remainder`). Batch after sharding (`shardDataset(ds, opts).batch(32)`), so that batches are
 * formed from this rank's elements.
 */
export function shardDataset<T, D extends DatasetLike<T>>(dataset: D & DatasetLike<T>, options: ShardDatasetOptions = {}): D {
  const s = resolveShard(options, 'shardDataset');
  const n = dataset.size;
  const known = typeof n === 'number' && Number.isFinite(n);
  const capacity = options.shuffleBuffer ?? Math.max(1, Math.min(known ? n : 10000, 10000));
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: shardDataset: shuffleBuffer must be an integer >= 1, got ${capacity}`);
  }
  let epoch = 0;
  const sharded = Object.create(rootPrototype(dataset)) as DatasetLike<T>;
  sharded.size = known ? shardLength(n, s) : n;
  sharded.iterator = async (): Promise<LazyIteratorLike<T>> => {
    const upstream = await dataset.iterator();
    const source = s.seed === undefined ? upstream : shuffled(upstream, capacity, seededRandom(s.seed, epoch));
    epoch++;
    const it = Object.create(rootPrototype(upstream)) as LazyIteratorLike<T>;
    it.next = dealer(source, s);
    it.summary = () => `${upstream.summary?.() ?? 'Iterator'} -> ${s.seed === undefined ? '' : 'SeededShuffle -> '}Shard(${s.rank}/${s.size})`;
    return it;
  };
  return sharded as D;
}
