// Shard plans: the options a shard is resolved from, and the per-rank lengths and padding.
import { describe, expect, it } from 'vitest';
import { paddingPosition, resolveShard, shardLength } from '../../dist/tfjs/shard-plan.js';

describe('shard plans', () => {
  it('resolves rank, size, seed and remainder from explicit options (pad by default)', () => {
    expect(resolveShard({ rank: 1, size: 3 }, 'test')).toEqual({ rank: 1, size: 3, seed: undefined, remainder: 'pad' });
    expect(resolveShard({ rank: 0, size: 1, seed: 'x', remainder: 'drop' }, 'test')).toEqual({ rank: 0, size: 1, seed: 'x', remainder: 'drop' });
  });

  it.each([
    [{ rank: 0, size: 0 }, /test: size must be an integer >= 1, got 0/],
    [{ rank: 3, size: 3 }, /test: rank must be in 0\.\.2, got 3/],
    [{ rank: -1, size: 3 }, /test: rank must be in 0\.\.2, got -1/],
    [{ rank: 0, size: 2, remainder: 'keep' as 'pad' }, /test: remainder must be 'pad' or 'drop', got 'keep'/],
    [{ rank: 0, size: 2, seed: Number.NaN }, /test: seed must be a finite number or a string/],
  ])('rejects %j with an argument error naming the caller', (options, message) => {
    expect(() => resolveShard(options, 'test')).toThrow(message);
    expect(() => resolveShard(options, 'test')).toThrow(expect.objectContaining({ code: 'ERR_RINGTRAIN_ARGUMENT' }));
  });

  it('pads to ceil(n / size) elements per rank, or drops to floor(n / size)', () => {
    expect(shardLength(10, { size: 4, remainder: 'pad' })).toBe(3);
    expect(shardLength(10, { size: 4, remainder: 'drop' })).toBe(2);
    expect(shardLength(12, { size: 4, remainder: 'pad' })).toBe(3);
    expect(shardLength(0, { size: 4, remainder: 'pad' })).toBe(0);
  });

  it('padding ranks cycle through the leftover group', () => {
    // n = 10, size = 4: leftover group of 2; ranks 2 and 3 pad with its elements 0 and 1.
    expect([2, 3].map((r) => paddingPosition(r, 2))).toEqual([0, 1]);
    // n = 9, size = 8: one leftover element that ranks 1..7 all repeat.
    expect([1, 2, 7].map((r) => paddingPosition(r, 1))).toEqual([0, 0, 0]);
  });
});
