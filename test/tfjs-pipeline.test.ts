// PipelineModel against model.fit in one process: every rank trains its stage(s) of a model built
// from the same seeds, on the same batches, and gatherWeights must equal the reference weights
// (<= 1e-5) and be identical on every rank; History, predict and evaluate must match too.
import { describe, expect, it } from 'vitest';
import { expectAllOk, runRanks } from './tfjs-ranks.js';

interface Case {
  net: 'mlp' | 'cnn' | 'mlp4';
  opt: 'sgd' | 'adam';
  stages: number;
  microBatches: number;
  schedule: 'gpipe' | '1f1b';
  splitAt?: number[];
  epochs: number;
  batch: number;
  rows: number;
  builder?: boolean;
}

interface CaseResult {
  case: Case;
  stage: number;
  replica: number;
  layerRange: [number, number];
  maxDiff: number;
  moved: number;
  predictDiff: number;
  evaluateDiff: number;
  weights: number[][];
  history: Record<string, number[]>;
  refHistory: Record<string, number[]>;
  tensorsPerEpoch: number[];
  fitMs: number;
}

interface Result {
  rank: number;
  size: number;
  results: CaseResult[];
}

/** Largest weight difference per case (the same on every rank), for the report. */
export const observed: string[] = [];

function check(results: Result[]): void {
  for (const r of results) {
    r.results.forEach((c, i) => {
      const label = `rank ${r.rank} case ${i} ${JSON.stringify(c.case)}`;
      expect(c.maxDiff, label).toBeLessThanOrEqual(1e-5);
      expect(c.moved, label).toBeGreaterThan(1e-2);
      expect(c.predictDiff, label).toBeLessThanOrEqual(1e-5);
      expect(c.evaluateDiff, label).toBeLessThanOrEqual(1e-5);
      // gatherWeights is bit-identical everywhere, and so is the History.
      expect(c.weights, label).toEqual(results[0]!.results[i]!.weights);
      expect(c.history, label).toEqual(results[0]!.results[i]!.history);
      for (const [k, v] of Object.entries(c.refHistory)) {
        v.forEach((x, e) => expect(Math.abs(c.history[k]![e]! - x), `${label} ${k}[${e}]`).toBeLessThanOrEqual(1e-5));
      }
      // No tensor leaks from epoch to epoch.
      expect(new Set(c.tensorsPerEpoch).size, `${label}: ${c.tensorsPerEpoch.join(',')}`).toBe(1);
      if (r.rank === 0) observed.push(`${JSON.stringify(c.case)}: maxDiff ${c.maxDiff.toExponential(2)}, fit ${c.fitMs.toFixed(0)} ms`);
    });
  }
}

async function run(size: number, cases: Case[]): Promise<Result[]> {
  return expectAllOk(await runRanks<Result>('tfjs-pipeline.mjs', size, { args: [JSON.stringify(cases)], timeoutMs: 90_000 }));
}

describe('PipelineModel equals single-process training', () => {
  it('one stage: micro-batches accumulate to exactly one whole-batch step (SGD and Adam, MLP and CNN, a short last batch)', async () => {
    const results = await run(1, [
      { net: 'mlp', opt: 'sgd', stages: 1, microBatches: 4, schedule: '1f1b', epochs: 3, batch: 8, rows: 20 },
      { net: 'cnn', opt: 'adam', stages: 1, microBatches: 2, schedule: 'gpipe', epochs: 3, batch: 8, rows: 16, builder: true },
    ]);
    check(results);
  }, 100_000);
});
