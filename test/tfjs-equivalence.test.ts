// DistributedOptimizer(op avg) on N ranks, each with 1/N of every batch, must end where a single
// process training on the full batches ends (within 1e-5), with the same weights on every rank.
import { describe, expect, it } from 'vitest';
import { expectResults, runFixtureRanks } from './helpers/processes.js';

interface CaseResult {
  mode: string;
  opt: string;
  k: number;
  maxDiff: number;
  moved: number;
  weights: number[][];
  iterations: number;
  unusedChanged: boolean;
  tensorsPerPass: number[];
  collectivesPerStep: number;
  bucketsPerStep: number;
}

interface Result {
  rank: number;
  size: number;
  results: CaseResult[];
}

const STEPS = 3;
const CASES = [
  { mode: 'fit', opt: 'sgd', steps: STEPS, batch: 8 },
  { mode: 'fit', opt: 'adam', steps: STEPS, batch: 8 },
  { mode: 'loop', opt: 'sgd', steps: STEPS, batch: 8 },
  { mode: 'loop', opt: 'adam', steps: STEPS, batch: 8 },
  { mode: 'minimize', opt: 'adam', steps: STEPS, batch: 8 },
  { mode: 'dataset', opt: 'adam', steps: STEPS, batch: 8 },
  // backwardPassesPerStep = 2: two passes of 8 rows each per step == one step of a 16-row batch.
  { mode: 'fit', opt: 'adam', steps: STEPS, batch: 8, k: 2 },
  { mode: 'loop', opt: 'sgd', steps: STEPS, batch: 8, k: 2 },
  // Small buckets (160 B) split into 52-byte collectives that straddle tensor boundaries.
  { mode: 'fit', opt: 'adam', steps: STEPS, batch: 8, fusionBytes: 160, pipelineBytes: 52 },
];

function checkEquivalence(results: Result[]): void {
  const size = results.length;
  for (const r of results) {
    expect(r.size).toBe(size);
    // Every case ran (an empty result list cannot pass).
    expect(r.results, `rank ${r.rank}`).toHaveLength(CASES.length);
    r.results.forEach((c, i) => {
      const label = `rank ${r.rank} case ${i} (${c.mode}/${c.opt}/k=${c.k})`;
      expect(c.maxDiff, label).toBeLessThanOrEqual(1e-5);
      // The comparison means something only if training moved the weights.
      expect(c.moved, label).toBeGreaterThan(1e-2);
      // Exactly one inner step per k passes.
      expect(c.iterations, label).toBe(STEPS);
      expect(c.unusedChanged, label).toBe(false);
      // Identical on every rank, bit for bit.
      expect(c.weights, label).toEqual(results[0]!.results[i]!.weights);
      // No tensor leaks: the count is flat from step to step once the optimizer state exists.
      const atStepEnds = c.tensorsPerPass.filter((_, p) => (p + 1) % c.k === 0);
      expect(atStepEnds.length, label).toBe(STEPS);
      expect(new Set(atStepEnds.slice(1)).size, `${label}: ${c.tensorsPerPass.join(',')}`).toBe(1);
      expect(atStepEnds[STEPS - 1], label).toBe(atStepEnds[1]);
      // 83 float32 gradients fit one bucket by default. With 40-element buckets: [6,8] (48, alone)
      // and [8]+[8,3]+[3] (35), cut into 13-element collectives: 4 + 3.
      if (i === CASES.length - 1) {
        expect(c.bucketsPerStep, label).toBe(2);
        expect(c.collectivesPerStep, label).toBe(7);
      } else {
        expect(c.collectivesPerStep, label).toBe(1);
      }
    });
  }
}

describe('DistributedOptimizer equivalence with single-process training', () => {
  it('2 ranks on half batches match one process on full batches (fit, fitDataset, variableGrads, minimize; SGD and Adam; k=1 and 2)', async () => {
    const results = expectResults(await runFixtureRanks<Result>('tfjs-equivalence.mjs', 2, { args: [JSON.stringify(CASES)], timeoutMs: 90_000 }));
    checkEquivalence(results);
  }, 100_000);

  it('4 ranks on quarter batches match one process on full batches', async () => {
    const results = expectResults(await runFixtureRanks<Result>('tfjs-equivalence.mjs', 4, { args: [JSON.stringify(CASES)], timeoutMs: 90_000 }));
    checkEquivalence(results);
  }, 100_000);
});
