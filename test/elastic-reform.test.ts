/**
 * Re-formations with the small elastic loop (no tfjs training, a second or two a run): a survivor
 * keeps its local rank (its GPU) while its rank changes, and state.onReset runs once per reset on
 * every survivor with the new rank and size and the state restored; a second death while the
 * survivors gather that leaves fewer than --min-np stops the job with the reason instead of
 * forming a world (or waiting for one).
 */
import { describe, expect, it } from 'vitest';
import { linesOf, startElasticJob, type ElasticRun } from './helpers/processes.js';

const LOOP = ['node', 'test/fixtures/elastic-loop.mjs'];
const describeRun = (run: ElasticRun): string => `exit ${run.code}, ${run.wallMs} ms:\n${run.output.slice(-6000)}`;
const byWorker = (run: ElasticRun, kind: string): Map<number, Record<string, unknown>[]> => {
  const m = new Map<number, Record<string, unknown>[]>();
  for (const l of linesOf(run, kind)) m.set(l.worker!, [...(m.get(l.worker!) ?? []), l.data]);
  return m;
};

describe('elastic re-formation (4 local ranks)', () => {
  it('a survivor keeps its local rank while its rank changes, over two resets; onReset runs after each, with the new rank and size, the state restored', async () => {
    // Worker 0 dies after step 8 (last commit: step 5), worker 1 after step 14 of the next world
    // (last commit: step 10): workers 2 and 3 go from ranks 2, 3 to 1, 2 to 0, 1.
    const run = await startElasticJob(['-np', '4', '--min-np', '2', '--elastic-timeout', '20', '--timeout', '30'], LOOP, {
      STEPS: '20',
      STEP_MS: '20',
      DIE_AT_STEP: '0:8,1:14',
    }, 60_000).done;
    const d = describeRun(run);
    expect(run.code, d).toBe(0);
    const start = byWorker(run, 'START');
    expect([...start.keys()].sort(), d).toEqual([0, 1, 2, 3]);
    for (const [w, [s]] of start) expect(s, d).toMatchObject({ rank: w, size: 4, localRank: w });
    const results = byWorker(run, 'RESULT');
    expect([...results.keys()].sort(), d).toEqual([2, 3]);
    const resets = byWorker(run, 'ONRESET');
    for (const w of [2, 3]) {
      // Same slot (and so GPU) in every world; the rank moved down past each lost worker.
      expect(results.get(w)![0], d).toMatchObject({ rank: w - 2, size: 2, localRank: w, steps: 20, sum: 4 * 5 + 3 * 5 + 2 * 10 });
      expect(resets.get(w), d).toEqual([
        { worker: w, rank: w - 1, size: 3, localRank: w, step: 5 },
        { worker: w, rank: w - 2, size: 2, localRank: w, step: 10 },
      ]);
      expect(byWorker(run, 'RESET').get(w)?.length, d).toBe(2);
    }
    // Worker 1 was reset once (into the world of 3) before it died.
    expect(resets.get(1), d).toEqual([{ worker: 1, rank: 0, size: 3, localRank: 1, step: 5 }]);
    expect(resets.has(0), d).toBe(false);
  }, 60_000);

  it('a second rank dying while the survivors gather, leaving fewer than --min-np, stops the job with the reason (exit 1, no world formed, no hang)', async () => {
    // Worker 3 dies after step 8; worker 0 dies as soon as it sees the loss, before it asks for the
    // next world. 2 live workers < --min-np 3.
    const run = await startElasticJob(['-np', '4', '--min-np', '3', '--elastic-timeout', '20', '--timeout', '30'], LOOP, {
      STEPS: '40',
      STEP_MS: '20',
      DIE_AT_STEP: '3:8',
      DIE_ON_LOSS: '0',
    }, 60_000).done;
    const d = describeRun(run);
    expect(run.hung, d).toBe(false);
    expect(run.code, d).toBe(1);
    expect(run.output, d).toMatch(/elastic: worker 3 \(rank 3\) on localhost was killed by SIGKILL \(exit code 137\); re-forming the world/);
    expect(run.output, d).toMatch(
      /elastic: only 2 rank\(s\) left, below --min-np 3; stopping the job \(lost: worker 3 on localhost: was killed by SIGKILL \(exit code 137\); worker 0 on localhost: was killed by SIGKILL \(exit code 137\)\)/,
    );
    expect(run.output, d).not.toMatch(/generation 1 formed/);
    expect(linesOf(run, 'RESULT').length, d).toBe(0);
  }, 60_000);
});
