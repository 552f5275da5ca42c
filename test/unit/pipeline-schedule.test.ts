// The pure parts of PipelineModel: schedules (each stage's ordered forward/backward steps), their
// bubble on a unit clock, the parameter-balanced split, splitAt validation and micro-batch rows.
import { describe, expect, it } from 'vitest';
import {
  balancedRanges,
  microBatchRows,
  pipelineSchedule,
  predictedBubble,
  rangesFromSplitAt,
  simulateSchedule,
  type PipelineStep,
} from '../../dist/tfjs/index.js';

const text = (steps: readonly PipelineStep[]): string => steps.map((s) => `${s.kind === 'forward' ? 'F' : 'B'}${s.microBatch}`).join(' ');

describe('pipeline schedules', () => {
  it('GPipe runs every forward, then every backward, on every stage', () => {
    const s = pipelineSchedule('gpipe', 3, 4);
    expect(s).toHaveLength(3);
    for (const stage of s) expect(text(stage)).toBe('F0 F1 F2 F3 B0 B1 B2 B3');
  });

  it('1F1B warms up with K-1-s forwards, alternates, then drains', () => {
    const s = pipelineSchedule('1f1b', 4, 6).map(text);
    expect(s[0]).toBe('F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5');
    expect(s[1]).toBe('F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 B4 B5');
    expect(s[2]).toBe('F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 B5');
    expect(s[3]).toBe('F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5');
  });

  it('1F1B with fewer micro-batches than stages still lists every step once', () => {
    const s = pipelineSchedule('1f1b', 4, 2).map(text);
    expect(s[0]).toBe('F0 F1 B0 B1');
    expect(s[3]).toBe('F0 B0 F1 B1');
  });

  it('every schedule has each micro-batch forward once and backward once, forward first', () => {
    for (const kind of ['gpipe', '1f1b'] as const) {
      for (const K of [1, 2, 3, 4, 5, 8]) {
        for (const M of [0, 1, 2, 3, 7, 8, 16]) {
          for (const stage of pipelineSchedule(kind, K, M)) {
            expect(stage).toHaveLength(2 * M);
            for (let m = 0; m < M; m++) {
              const f = stage.findIndex((s) => s.kind === 'forward' && s.microBatch === m);
              const b = stage.findIndex((s) => s.kind === 'backward' && s.microBatch === m);
              expect(f).toBeGreaterThanOrEqual(0);
              expect(b).toBeGreaterThan(f);
            }
          }
        }
      }
    }
  });

  it('both schedules finish without deadlock and idle (K-1)/(M+K-1) of the time on a unit clock', () => {
    for (const kind of ['gpipe', '1f1b'] as const) {
      for (const K of [1, 2, 3, 4, 8]) {
        for (const M of [1, 2, 4, 8, 13]) {
          for (const costs of [{ forward: 1, backward: 1 }, { forward: 1, backward: 2 }]) {
            const r = simulateSchedule(pipelineSchedule(kind, K, M), costs);
            expect(r.makespan, `${kind} K=${K} M=${M}`).toBe((M + K - 1) * (costs.forward + costs.backward));
            expect(r.bubble).toBeCloseTo(predictedBubble(K, M), 12);
          }
        }
      }
    }
    expect(predictedBubble(2, 8)).toBeCloseTo(1 / 9, 12);
    expect(predictedBubble(4, 8)).toBeCloseTo(3 / 11, 12);
  });

  it('1F1B holds at most K-s micro-batch inputs on stage s; GPipe holds all M', () => {
    const K = 4;
    const M = 8;
    expect(simulateSchedule(pipelineSchedule('1f1b', K, M)).peakInFlight).toEqual([4, 3, 2, 1]);
    expect(simulateSchedule(pipelineSchedule('gpipe', K, M)).peakInFlight).toEqual([8, 8, 8, 8]);
  });

  it('the simulator reports a schedule that deadlocks', () => {
    // Stage 0 waits for B0 from stage 1 before sending F1, which stage 1 needs before its B0.
    const bad: PipelineStep[][] = [
      [{ kind: 'forward', microBatch: 0 }, { kind: 'backward', microBatch: 0 }, { kind: 'forward', microBatch: 1 }, { kind: 'backward', microBatch: 1 }],
      [{ kind: 'forward', microBatch: 0 }, { kind: 'forward', microBatch: 1 }, { kind: 'backward', microBatch: 0 }, { kind: 'backward', microBatch: 1 }],
    ];
    expect(() => simulateSchedule(bad)).toThrow(/deadlocks/);
  });

  it('rejects bad schedule arguments', () => {
    expect(() => pipelineSchedule('zigzag' as 'gpipe', 2, 2)).toThrow(/schedule must be 'gpipe' or '1f1b'/);
    expect(() => pipelineSchedule('gpipe', 0, 2)).toThrow(/stages must be an integer >= 1/);
    expect(() => pipelineSchedule('gpipe', 2, 1.5)).toThrow(/microBatches/);
  });
});

describe('pipeline split', () => {
  it('balances contiguous stages by parameter count', () => {
    expect(balancedRanges([10, 10, 10, 10], 2)).toEqual([[0, 2], [2, 4]]);
    expect(balancedRanges([50240, 650], 2)).toEqual([[0, 1], [1, 2]]);
    expect(balancedRanges([1, 1, 1, 1, 100], 2)).toEqual([[0, 4], [4, 5]]);
    expect(balancedRanges([5, 1, 1, 1, 1, 1], 3)).toEqual([[0, 1], [1, 3], [3, 6]]);
    expect(balancedRanges([4, 4, 1, 1, 1, 1, 4], 3)).toEqual([[0, 1], [1, 4], [4, 7]]);
  });

  it('gives every stage a layer even when layers have no parameters, and is deterministic', () => {
    expect(balancedRanges([30, 0, 0, 148, 48], 3)).toEqual([[0, 1], [1, 4], [4, 5]]);
    expect(balancedRanges([0, 0, 0, 0], 4)).toEqual([[0, 1], [1, 2], [2, 3], [3, 4]]);
    // Ties on the largest stage (10) go to the smaller sum of squares: 10 | 1+3 | 2 rather than 10 | 1 | 3+2.
    expect(balancedRanges([10, 1, 3, 2], 3)).toEqual([[0, 1], [1, 3], [3, 4]]);
  });

  it('refuses more stages than layers, naming both', () => {
    expect(() => balancedRanges([1, 2], 3)).toThrow(/2 layers .* too few for 3 stages/);
  });

  it('turns splitAt into ranges and rejects indices that are not strictly increasing inside the model', () => {
    expect(rangesFromSplitAt(5, 3, [1, 4])).toEqual([[0, 1], [1, 4], [4, 5]]);
    expect(() => rangesFromSplitAt(5, 3, [1])).toThrow(/must list 2 layer indexes/);
    expect(() => rangesFromSplitAt(5, 3, [3, 2])).toThrow(/strictly increasing/);
    expect(() => rangesFromSplitAt(5, 2, [5])).toThrow(/in 1\.\.4/);
    expect(() => rangesFromSplitAt(5, 2, [0])).toThrow(/strictly increasing/);
  });

  it('cuts a batch into replica shares and micro-batches, evenly, covering every row once', () => {
    expect(microBatchRows(16, 1, 0, 4)).toEqual([0, 4, 8, 12].map((start) => ({ start, size: 4 })));
    expect(microBatchRows(16, 2, 1, 4)).toEqual([8, 10, 12, 14].map((start) => ({ start, size: 2 })));
    // A short last batch: 5 rows, 2 replicas of 3 and 2 rows, at most 4 micro-batches each.
    expect(microBatchRows(5, 2, 0, 4)).toEqual([{ start: 0, size: 1 }, { start: 1, size: 1 }, { start: 2, size: 1 }]);
    expect(microBatchRows(5, 2, 1, 4)).toEqual([{ start: 3, size: 1 }, { start: 4, size: 1 }]);
    expect(microBatchRows(1, 2, 1, 4)).toEqual([]);
    for (const [rows, d, M] of [[17, 3, 4], [64, 2, 8], [7, 1, 3]] as const) {
      const all = Array.from({ length: d }, (_, r) => microBatchRows(rows, d, r, M)).flat();
      const covered = all.flatMap((m) => Array.from({ length: m.size }, (_, i) => m.start + i));
      expect(covered).toEqual(Array.from({ length: rows }, (_, i) => i));
    }
  });
});
