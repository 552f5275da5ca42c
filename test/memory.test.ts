import { describe, expect, it } from 'vitest';
import { expectAllOk, runRanks } from './helpers/processes.js';

describe('memory', () => {
  it('a 256 MiB all-reduce raises a rank\'s peak RSS by at most 1.25 x 256 MiB (the buffer itself included)', async () => {
    const results = await runRanks({ size: 4, script: 'test/fixtures/memory-worker.mjs', env: { RINGTRAIN_TIMEOUT_MS: '60000' }, killAfterMs: 120_000 });
    expectAllOk(results);
    for (const r of results) {
      const j = r.json as { ok: boolean; baseMiB: number; peakMiB: number; bufferMiB: number };
      expect(j.ok).toBe(true);
      console.log(`rank ${r.rank}: peak RSS +${(j.peakMiB - j.baseMiB).toFixed(1)} MiB for a ${j.bufferMiB} MiB all-reduce`);
      expect(j.peakMiB - j.baseMiB).toBeLessThanOrEqual(1.25 * j.bufferMiB);
    }
  }, 150_000);
});
