import { describe, expect, it } from 'vitest';
import { DTYPES, REDUCE_OPS } from '../src/dtypes.js';
import { expectAllOk, runRanks, type RankResult } from './helpers/processes.js';

type Out = { rank: number; checked: number; failures: string[]; errors: Record<string, { code: string; message?: string; ms?: number }>; ms: Record<string, number> };
const out = (r: RankResult): Out => r.json as unknown as Out;

async function job(size: number, spec: unknown, env: Record<string, string> = {}): Promise<RankResult[]> {
  return runRanks({ size, script: 'test/fixtures/split-worker.mjs', args: [JSON.stringify(spec)], env, killAfterMs: 90_000 });
}

describe('split: sub-communicators', () => {
  for (const n of [2, 3, 5]) {
    it(`orders members by key, runs exact collectives and send/recv concurrently with the parent and siblings, null for color < 0, closes with the parent (${n} ranks)`, async () => {
      const results = await job(n, { basic: true });
      expectAllOk(results);
      for (const r of results) {
        expect(out(r).failures, `rank ${r.rank}`).toEqual([]);
        expect(out(r).checked).toBeGreaterThan(20);
        expect(out(r).errors.afterParentClose?.code).toBe('ERR_RINGTRAIN_CLOSED');
        expect(out(r).errors.p2pAfterParentClose?.code).toBe('ERR_RINGTRAIN_CLOSED');
      }
    }, 90_000);
  }

  // One check per call: allreduce and reducescatter per dtype x op x size, broadcast per dtype x size
  // x root, allgather per dtype x size, plus the membership check of each split.
  const perSplit = (groupSize: number, sizes: number[]): number => 1 + DTYPES.length * sizes.length * (2 * REDUCE_OPS.length + groupSize + 1);
  for (const [n, splits] of [
    [2, [[0, 0]]],
    [3, [[0, 0, 0]]],
    [8, [[0, 1, 0, 1, 0, 1, 0, 1], [0, 0, 0, 1, 1, 1, 1, 1]]],
  ] as [number, number[][]][]) {
    const shape = splits.map((c) => c.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<number, number>())).map((m) => [...m.values()].join('+')).join(', then ');
    it(`sub-communicator allreduce, reducescatter, broadcast and allgather are exact for every dtype and op at sizes 0, 1, 13, 1031, small and ring paths (${n} ranks: groups ${shape})`, async () => {
      // With the small-message limit at 1 KiB, 13 elements take the small-message path and 1031 (a
      // prime, over 1 KiB in every dtype) the ring, at a fraction of the cost of ring-sized defaults.
      const sizes = [0, 1, 13, 1031];
      const results = await job(n, { everyType: { splits, sizes } }, { RINGTRAIN_SMALL_BYTES: '1024' });
      expectAllOk(results);
      for (const r of results) {
        expect(out(r).failures, `rank ${r.rank}`).toEqual([]);
        const want = splits.reduce((a, colors) => a + perSplit(colors.filter((c) => c === colors[r.rank]).length, sizes), 0);
        expect(out(r).checked, `rank ${r.rank}`).toBe(want);
      }
    }, 90_000);
  }

  it('detects mismatched collectives on a sub-communicator, naming both sides', async () => {
    const results = await job(2, { mismatch: true });
    expectAllOk(results);
    for (const r of results) {
      const e = out(r).errors.subMismatch;
      expect(e?.code, e?.message).toBe('ERR_RINGTRAIN_MISMATCH');
      expect(e?.message).toMatch(/allreduce #\d+ \(1[01] x float32, sum\).*rank 1 \(.*\) called allreduce #\d+ \(1[01] x float32|rank 0 \(.*\) called allreduce/);
    }
  }, 60_000);

  it('a rank killed with SIGKILL fails every communicator on every member within timeout + 2 s, naming it', async () => {
    const timeoutMs = 3000;
    const results = await job(4, { dead: { victim: 2 } }, { RINGTRAIN_TIMEOUT_MS: String(timeoutMs) });
    expect(results[2]!.signal).toBe('SIGKILL');
    for (const r of results.filter((x) => x.rank !== 2)) {
      expect(r.code, r.stderr).toBe(0);
      for (const name of ['sub', 'parent']) {
        const e = out(r).errors[name];
        expect(e?.message, `rank ${r.rank} ${name}`).toMatch(/rank 2 \(/);
        expect(e?.ms, `rank ${r.rank} ${name}`).toBeLessThan(300 + timeoutMs + 2000);
      }
    }
  }, 60_000);
});
