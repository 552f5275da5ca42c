// PipelineModel against model.fit in one process: every rank trains its stage(s) of a model built
// from the same seeds, on the same batches, and gatherWeights must equal the reference weights
// (<= 1e-5) and be identical on every rank; History, predict and evaluate must match too.
import { describe, expect, it } from 'vitest';
import { expectResults, runFixtureRanks } from './helpers/processes.js';

interface Case {
  net: 'mlp' | 'mlpreg' | 'cnn' | 'mlp4';
  opt: 'sgd' | 'adam';
  stages: number;
  microBatches: number;
  schedule: 'gpipe' | '1f1b';
  splitAt?: number[];
  epochs: number;
  batch: number;
  rows: number;
  builder?: boolean;
  scrambleReplicas?: boolean;
  validation?: boolean;
  shuffle?: boolean;
  seed?: number;
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
    });
  }
}

async function run(size: number, cases: Case[]): Promise<Result[]> {
  const results = expectResults(await runFixtureRanks<Result>('tfjs-pipeline.mjs', size, { args: [JSON.stringify(cases)], timeoutMs: 90_000 }));
  // Every rank ran every case (an empty result list cannot pass).
  expect(results).toHaveLength(size);
  for (const r of results) expect(r.results, `rank ${r.rank}`).toHaveLength(cases.length);
  return results;
}

describe('PipelineModel equals single-process training', () => {
  it('one stage: micro-batches accumulate to exactly one whole-batch step (SGD and Adam, MLP and CNN, a short last batch)', async () => {
    const results = await run(1, [
      { net: 'mlp', opt: 'sgd', stages: 1, microBatches: 4, schedule: '1f1b', epochs: 3, batch: 8, rows: 20 },
      { net: 'cnn', opt: 'adam', stages: 1, microBatches: 2, schedule: 'gpipe', epochs: 3, batch: 8, rows: 16, builder: true },
    ]);
    check(results);
  }, 100_000);

  it('2 stages on 2 ranks (GPipe and 1F1B; SGD and Adam; MLP, MLP with L2 penalties and CNN; model and layer builder; seeded shuffle; validationData)', async () => {
    const results = await run(2, [
      { net: 'mlp', opt: 'sgd', stages: 2, microBatches: 4, schedule: '1f1b', epochs: 3, batch: 8, rows: 20 },
      { net: 'mlp', opt: 'adam', stages: 2, microBatches: 4, schedule: 'gpipe', epochs: 3, batch: 8, rows: 24 },
      { net: 'mlpreg', opt: 'sgd', stages: 2, microBatches: 2, schedule: '1f1b', epochs: 3, batch: 8, rows: 16, shuffle: true, seed: 9 },
      { net: 'cnn', opt: 'sgd', stages: 2, microBatches: 2, schedule: 'gpipe', epochs: 3, batch: 8, rows: 16, builder: true },
      { net: 'cnn', opt: 'adam', stages: 2, microBatches: 4, schedule: '1f1b', epochs: 3, batch: 8, rows: 16, validation: true },
    ]);
    check(results);
    // validationData: val_loss and val_acc every epoch, as model.fit reports them (compared in check).
    expect(Object.keys(results[0]!.results[4]!.history).sort()).toEqual(['acc', 'loss', 'val_acc', 'val_loss']);
    expect(results.map((r) => r.results[0]!.layerRange)).toEqual([[0, 1], [1, 2]]);
  }, 100_000);

  it('4 stages on 4 ranks (GPipe and 1F1B; SGD and Adam; MLP and CNN; balanced and splitAt)', async () => {
    const results = await run(4, [
      { net: 'mlp4', opt: 'sgd', stages: 4, microBatches: 4, schedule: '1f1b', epochs: 3, batch: 8, rows: 20 },
      { net: 'mlp4', opt: 'adam', stages: 4, microBatches: 8, schedule: 'gpipe', epochs: 3, batch: 16, rows: 32, builder: true },
      { net: 'cnn', opt: 'adam', stages: 4, microBatches: 4, schedule: '1f1b', epochs: 3, batch: 8, rows: 16, builder: true, splitAt: [1, 2, 4] },
      { net: 'cnn', opt: 'sgd', stages: 4, microBatches: 2, schedule: 'gpipe', epochs: 3, batch: 8, rows: 16 },
    ]);
    check(results);
    expect(results.map((r) => r.results[2]!.layerRange)).toEqual([[0, 1], [1, 2], [2, 4], [4, 5]]);
  }, 100_000);

  it('2 stages x 2 data-parallel replicas on 4 ranks (each stage all-reduced in its group; replicas start from replica 0)', async () => {
    const results = await run(4, [
      { net: 'mlp', opt: 'adam', stages: 2, microBatches: 2, schedule: '1f1b', epochs: 3, batch: 8, rows: 20, scrambleReplicas: true },
      { net: 'cnn', opt: 'sgd', stages: 2, microBatches: 2, schedule: 'gpipe', epochs: 3, batch: 8, rows: 16, builder: true },
      { net: 'mlpreg', opt: 'sgd', stages: 2, microBatches: 4, schedule: 'gpipe', epochs: 3, batch: 16, rows: 24 },
    ]);
    check(results);
    expect(results.map((r) => [r.results[0]!.stage, r.results[0]!.replica])).toEqual([[0, 0], [1, 0], [0, 1], [1, 1]]);
  }, 100_000);
});

interface ErrorResult {
  rank: number;
  probe: number;
  results: Record<string, { ok: boolean; code?: string; message?: string }>;
}

describe('PipelineModel errors reach every rank before anything trains', () => {
  it('a model that cannot be split, a batch not divisible by microBatches, ranks with different models, one rank refusing', async () => {
    const names = ['tooManyStages', 'badSplitAt', 'notDivisible', 'modelMismatch', 'oneRankRefuses'];
    const runs = expectResults(await runFixtureRanks<ErrorResult>('tfjs-pipeline-errors.mjs', 2, { args: [JSON.stringify(names)], timeoutMs: 60_000 }));
    for (const r of runs) {
      const got = r.results;
      const label = `rank ${r.rank}`;
      expect(got.tooManyStages, label).toMatchObject({ ok: false, code: 'ERR_RINGTRAIN_ARGUMENT' });
      expect(got.tooManyStages!.message).toMatch(/1 layer .* too few for 2 stages/);
      expect(got.badSplitAt, label).toMatchObject({ ok: false, code: 'ERR_RINGTRAIN_ARGUMENT' });
      expect(got.badSplitAt!.message).toMatch(/splitAt \[2\] is not a strictly increasing list of layer indices in 1\.\.1/);
      expect(got.notDivisible, label).toMatchObject({ ok: false, code: 'ERR_RINGTRAIN_ARGUMENT' });
      expect(got.notDivisible!.message).toMatch(/batchSize 6 is not divisible by microBatches 4.*try batchSize 8/);
      expect(got.modelMismatch, label).toMatchObject({ ok: false, code: 'ERR_RINGTRAIN_MISMATCH' });
      expect(got.modelMismatch!.message).toMatch(/differ between ranks \(rank 0: 2 layers, 37 parameters known; rank 1: 2 layers, 44 parameters known\)/);
      expect(got.oneRankRefuses, label).toMatchObject({ ok: false, code: 'ERR_RINGTRAIN_ARGUMENT' });
      expect(got.oneRankRefuses!.message).toMatch(r.rank === 1 ? /epochs must be an integer >= 1, got 0/ : /rank 1 refused the arguments/);
      // The job's communicator still works afterwards: 1 + 2.
      expect(r.probe, label).toBe(3);
    }
  }, 70_000);
});

interface StatefulResult {
  rank: number;
  net: string;
  maxDiff: number;
  weights: number;
  repeatDiff?: number;
  otherSeedDiff?: number;
  movingStatsMoved?: number;
}

describe('PipelineModel when a stage dies', () => {
  it('the other stage fails at once with ERR_RINGTRAIN_PEER naming the dead rank, instead of waiting', async () => {
    const runs = await runFixtureRanks<ErrorResult & { results: { stageDies: { ms: number } } }>('tfjs-pipeline-errors.mjs', 2, {
      args: [JSON.stringify(['stageDies'])],
      timeoutMs: 60_000,
    });
    expect(runs[1]!.code, runs[1]!.stderr).toBe(3);
    const r = runs[0]!;
    expect(r.code, r.stderr).toBe(0);
    expect(r.result?.results.stageDies, r.stdout).toMatchObject({ ok: false, code: 'ERR_RINGTRAIN_PEER' });
    expect(r.result!.results.stageDies.message).toMatch(/rank 1 \(/);
    // Well before the 30 s communicator timeout: the dead link is noticed, not waited out.
    expect(r.result!.results.stageDies.ms).toBeLessThan(15_000);
  }, 70_000);
});

describe('PipelineModel with Dropout and BatchNormalization in a recomputed stage', () => {
  it('Dropout: the recomputation uses the forward mask (equals a micro-batch reference), the same seed repeats the run', async () => {
    const runs = expectResults(await runFixtureRanks<StatefulResult>('tfjs-pipeline-stateful.mjs', 2, { args: ['dropout'], timeoutMs: 60_000 }));
    for (const r of runs) {
      expect(r.maxDiff, `rank ${r.rank}`).toBeLessThanOrEqual(1e-6);
      expect(r.repeatDiff, `rank ${r.rank}`).toBe(0);
      expect(r.otherSeedDiff, `rank ${r.rank}`).toBeGreaterThan(1e-3);
    }
  }, 70_000);

  it('BatchNormalization: per-micro-batch statistics, moving statistics updated once per micro-batch', async () => {
    const runs = expectResults(await runFixtureRanks<StatefulResult>('tfjs-pipeline-stateful.mjs', 2, { args: ['batchnorm'], timeoutMs: 60_000 }));
    for (const r of runs) {
      expect(r.weights, `rank ${r.rank}`).toBe(8);
      expect(r.maxDiff, `rank ${r.rank}`).toBeLessThanOrEqual(1e-6);
      expect(r.movingStatsMoved, `rank ${r.rank}`).toBeGreaterThan(1e-2);
    }
  }, 70_000);
});
