/** Typed arrays over a SharedArrayBuffer work in every collective, with exact results. */
import { describe, expect, it } from 'vitest';
import { expectAllOk, runRanks } from './helpers/processes.js';

describe('SharedArrayBuffer views', () => {
  it('allreduce, allreduceSync, broadcast, allgather, reducescatter and sendrecv on shared memory, every dtype, 3 real ranks: exact', async () => {
    const results = await runRanks({ size: 3, script: 'test/fixtures/shared-buffer-worker.mjs' });
    expectAllOk(results);
    for (const r of results) {
      const j = r.json as { checked: number; failures: string[] };
      expect(j.failures).toEqual([]);
      expect(j.checked).toBeGreaterThan(1000);
    }
  });
});
