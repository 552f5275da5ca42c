/** ringtrain/tfjs tensor helpers for custom loops, on real ranks: exact results for every supported dtype. */
import { describe, expect, it } from 'vitest';
import { expectAllOk, runRanks } from './helpers/processes.js';

describe('allreduceTensor, broadcastTensor, averageMetrics', () => {
  it('3 real ranks: float32 / int32 / bool reductions, broadcast and averaged metrics are exact', async () => {
    const results = await runRanks({ size: 3, script: 'test/fixtures/tfjs-tensor-collectives.mjs' });
    expectAllOk(results);
    for (const r of results) {
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      expect(line, r.stderr).toBeDefined();
      const j = JSON.parse(line!.slice(7)) as { checked: number; failures: string[] };
      expect(j.failures).toEqual([]);
      expect(j.checked).toBe(25);
    }
  });
});
