// compression: 'fp16' — gradients travel as float16 and are summed in float32 per hop; the error
// of one all-reduce stays within what float16 rounding allows. (Convergence on MNIST with fp16 is
// covered by tfjs-mnist-example.test.ts.)
import { describe, expect, it } from 'vitest';
import { expectResults, runFixtureRanks } from './helpers/processes.js';

interface Result {
  rank: number;
  worst: number;
  inexact: number;
  notHalf: number;
  n: number;
  bytes: number;
  buckets: number;
}

describe('fp16 gradient compression', () => {
  it('one all-reduce over 3 ranks is within float16 rounding bounds and sends half the bytes', async () => {
    const results = expectResults(await runFixtureRanks<Result>('tfjs-fp16.mjs', 3, { timeoutMs: 60_000 }));
    for (const r of results) {
      expect(r.worst, `rank ${r.rank}: worst error / bound`).toBeLessThanOrEqual(1);
      // It really was compressed: results are float16 values, so most differ from the exact mean.
      expect(r.notHalf).toBe(0);
      expect(r.inexact).toBeGreaterThan(r.n / 2);
      // 2 bytes an element on the wire; five 8000-byte tensors fused two per 16 KiB bucket.
      expect(r.bytes).toBe(2 * r.n);
      expect(r.buckets).toBe(3);
    }
  }, 70_000);
});
