// shardDataset / shardArrays / shardIndices: every rank's part, computed here for every rank with
// explicit { rank, size } (the dealing depends only on those, the seed and the data).
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { shardArrays, shardDataset, shardIndices } from '../../dist/tfjs/index.js';

await tf.setBackend('cpu');

/** Ids seen by each rank for `epochs` epochs of a dataset of n elements { id: scalar tensor }. */
async function dealt(n: number, size: number, opts: Record<string, unknown>, epochs: number): Promise<number[][][]> {
  const perRank: number[][][] = [];
  for (let rank = 0; rank < size; rank++) {
    const base = tf.data.array(Array.from({ length: n }, (_, i) => ({ id: i })));
    const ds = shardDataset(base, { rank, size, ...opts });
    const seen: number[][] = [];
    for (let e = 0; e < epochs; e++) {
      const ids: number[] = [];
      await ds.forEachAsync((el) => {
        ids.push((el as { id: number }).id);
      });
      seen.push(ids);
    }
    perRank.push(seen);
  }
  return perRank;
}

describe('shardDataset', () => {
  it('gives disjoint shards that cover the data every epoch when n is a multiple of size', async () => {
    const per = await dealt(12, 3, {}, 2);
    for (let e = 0; e < 2; e++) {
      const all = per.flatMap((r) => r[e]!);
      expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
      per.forEach((r) => expect(r[e]!.length).toBe(4));
    }
    expect(per[1]![0]).toEqual([1, 4, 7, 10]);
  });

  it('with a seed, reshuffles every epoch, identically on every rank, still disjoint and covering', async () => {
    const per = await dealt(30, 3, { seed: 42 }, 3);
    const orders: string[] = [];
    for (let e = 0; e < 3; e++) {
      const all = per.flatMap((r) => r[e]!);
      expect(new Set(all).size).toBe(30);
      orders.push(JSON.stringify(per.map((r) => r[e])));
    }
    expect(new Set(orders).size).toBe(3); // a new order every epoch
    expect(per[0]![0]).not.toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24, 27]); // shuffled at all
    // Same seed, same dealing (what another process computes).
    const again = await dealt(30, 3, { seed: 42 }, 3);
    expect(again).toEqual(per);
    const other = await dealt(30, 3, { seed: 43 }, 1);
    expect(other[0]![0]).not.toEqual(per[0]![0]);
  });

  it('pads the leftover so every rank takes the same number of steps, covering everything', async () => {
    const per = await dealt(10, 4, { seed: 'x' }, 2);
    for (let e = 0; e < 2; e++) {
      per.forEach((r) => expect(r[e]!.length).toBe(3));
      const all = per.flatMap((r) => r[e]!);
      expect(new Set(all).size).toBe(10);
      expect(all.length - new Set(all).size).toBe(2); // 12 slots for 10 elements: 2 repeats
    }
  });

  it("remainder 'drop' keeps shards strictly disjoint with equal lengths", async () => {
    const per = await dealt(10, 4, { remainder: 'drop' }, 1);
    per.forEach((r) => expect(r[0]!.length).toBe(2));
    const all = per.flatMap((r) => r[0]!);
    expect(new Set(all).size).toBe(8);
  });

  it('reports its size, batches, and disposes the elements it skips', async () => {
    const xs = Array.from({ length: 9 }, (_, i) => tf.tensor1d([i, i]));
    const base = tf.data.array(xs);
    const ds = shardDataset(base, { rank: 1, size: 2 });
    expect(ds.size).toBe(5);
    const before = tf.memory().numTensors;
    const batches: number[][] = [];
    await ds.batch(2).forEachAsync((b) => {
      batches.push(Array.from((b as tf.Tensor).dataSync()));
      (b as tf.Tensor).dispose();
    });
    expect(batches).toEqual([[1, 1, 3, 3], [5, 5, 7, 7], [8, 8]]); // the leftover element 8 also pads rank 1
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(xs);
  });
});

describe('shardArrays and shardIndices', () => {
  it('deals the same rows of every entry, disjoint across ranks and covering all rows', () => {
    const xs = tf.tensor2d(Array.from({ length: 16 }, (_, i) => i), [8, 2]);
    const ys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const seen: number[] = [];
    for (let rank = 0; rank < 4; rank++) {
      const part = shardArrays({ xs, ys }, { rank, size: 4, seed: 5 });
      const rows = (part.xs.arraySync() as number[][]).map((r) => r[0]! / 2);
      expect(part.ys).toEqual(rows.map((r) => ys[r]));
      seen.push(...rows);
      part.xs.dispose();
    }
    expect(seen.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    xs.dispose();
  });

  it('rejects entries with different row counts', () => {
    expect(() => shardArrays({ a: [1, 2, 3], b: [1, 2] }, { rank: 0, size: 2 })).toThrow(/3 rows but 'b' has 2/);
  });

  it('shardIndices: modulo dealing, and a fresh permutation per epoch with a seed', () => {
    expect(Array.from(shardIndices(7, { rank: 2, size: 3 }))).toEqual([2, 5, 6]); // 6 is the leftover, repeated
    const e0 = Array.from(shardIndices(100, { rank: 0, size: 1, seed: 1, epoch: 0 }));
    const e1 = Array.from(shardIndices(100, { rank: 0, size: 1, seed: 1, epoch: 1 }));
    expect([...e0].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(e0).not.toEqual(e1);
  });
});
