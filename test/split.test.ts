import { describe, expect, it } from 'vitest';
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
