// Keeping replicas identical: broadcastModel (weights and optimizer state), BroadcastCallback and
// MetricAverageCallback inside model.fit (both ways tfjs drives callbacks), averageModel including
// BatchNorm statistics, and LocalSGD against an in-process simulation.
import { beforeAll, describe, expect, it } from 'vitest';
import { expectResults, runFixtureRanks } from './helpers/processes.js';

type W = number[][];
interface OptState {
  name: string;
  values: number[];
}
interface Snapshot {
  weights: W;
  optimizer: OptState[];
  iterations: number;
}
interface Result {
  rank: number;
  size: number;
  before: Snapshot;
  after: Snapshot;
  tensorsAfterBroadcast: number;
  continued: W;
  localLogs: Record<string, number>[];
  history: Record<string, number[]>;
  trainable: W;
  history2: Record<string, number[]>;
  trainable2: W;
  bnPre: W;
  bnAfter: W;
  localSgd: W;
  localSgdSyncs: number;
  localSgdReference: W;
  savedOptimizer: { className: string; config: Record<string, unknown>; weightNames: string[] };
}

function maxDiff(a: W, b: W): number {
  let m = 0;
  a.forEach((x, i) => x.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i]![j]!)))));
  return m;
}

const SIZE = 3;
const ROOT = SIZE - 1;
let results: Result[];

describe('replica synchronisation helpers (3 ranks)', () => {
  beforeAll(async () => {
    results = expectResults(await runFixtureRanks<Result>('tfjs-sync.mjs', SIZE, { timeoutMs: 90_000 }));
  }, 100_000);

  it('broadcastModel gives every rank root’s weights and optimizer state, even ranks with no state yet', () => {
    const root = results[ROOT]!;
    expect(root.before.iterations).toBe(ROOT);
    expect(results[0]!.before.optimizer.length).toBe(1); // a fresh Adam: only its iteration count
    expect(root.before.optimizer.length).toBeGreaterThan(1); // iteration count + moments
    // The ranks really started different.
    expect(maxDiff(results[0]!.before.weights, root.before.weights)).toBeGreaterThan(0.01);
    for (const r of results) {
      expect(r.after.weights).toEqual(root.before.weights);
      expect(r.after.optimizer).toEqual(root.before.optimizer);
      expect(r.after.iterations).toBe(ROOT);
      // Replaced optimizer state was freed: every rank holds the same number of tensors.
      expect(r.tensorsAfterBroadcast).toBe(root.tensorsAfterBroadcast);
      // Continuing with the same data gives the same weights everywhere.
      expect(r.continued).toEqual(root.continued);
    }
  });

  it('BroadcastCallback + DistributedOptimizer keep trainable weights identical; MetricAverageCallback averages the logs', () => {
    for (const r of results) {
      expect(r.trainable).toEqual(results[0]!.trainable);
      expect(r.trainable2).toEqual(results[0]!.trainable2);
      expect(r.history).toEqual(results[0]!.history);
      expect(r.history2).toEqual(results[0]!.history2);
    }
    // The averaged history is the mean of the per-rank logs recorded before averaging.
    for (const key of ['loss', 'mae', 'val_loss', 'val_mae']) {
      const perEpoch = results[0]!.history[key]!;
      expect(perEpoch.length).toBe(2);
      perEpoch.forEach((v, epoch) => {
        const mean = results.reduce((s, r) => s + r.localLogs[epoch]![key]!, 0) / SIZE;
        expect(Math.abs(v - mean), `${key} epoch ${epoch}`).toBeLessThan(1e-6);
      });
      // Ranks saw different data, so the local values differed.
      expect(results[0]!.localLogs[0]![key]).not.toBe(results[1]!.localLogs[0]![key]);
    }
  });

  it('averageModel averages every weight, including BatchNorm moving statistics that differ per rank', () => {
    expect(maxDiff(results[0]!.bnPre, results[1]!.bnPre)).toBeGreaterThan(1e-4);
    const mean = results[0]!.bnPre.map((w, i) => w.map((_, j) => results.reduce((s, r) => s + r.bnPre[i]![j]!, 0) / SIZE));
    for (const r of results) {
      expect(maxDiff(r.bnAfter, mean)).toBeLessThan(1e-6);
      expect(r.bnAfter).toEqual(results[0]!.bnAfter);
    }
  });

  it('model.save with includeOptimizer records the inner optimizer’s class, config and state', () => {
    const saved = results[0]!.savedOptimizer;
    expect(saved.className).toBe('Adam');
    expect(saved.config.learningRate).toBe(0.01);
    // iteration count, then first and second moments of the 4 weights
    expect(saved.weightNames.length).toBe(9);
    expect(saved.weightNames[0]).toBe('iter');
    expect(saved.weightNames.filter((n) => n.endsWith('/m')).length).toBe(4);
  });

  it('LocalSGD averages every 2 batches and at the end, matching an in-process simulation', () => {
    for (const r of results) {
      expect(r.localSgdSyncs).toBe(3); // after batches 2 and 4, and at the end (batch 5)
      expect(maxDiff(r.localSgd, r.localSgdReference)).toBeLessThan(1e-5);
      expect(r.localSgd).toEqual(results[0]!.localSgd);
    }
  });
});
