/**
 * Pure arithmetic of a pipeline: which layers each stage holds, and how a batch is cut into
 * data-parallel shares and micro-batches. No tensors, no communication.
 */
import { RingtrainError } from '../errors.js';

/** Layers [start, end) of the chain. */
export type LayerRange = readonly [start: number, end: number];

function argumentError(message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: PipelineModel: ${message}`);
}

function checkStages(layers: number, stages: number): void {
  if (!Number.isInteger(stages) || stages < 1) throw argumentError(`stages must be an integer >= 1, got ${stages}`);
  if (layers < stages) {
    throw argumentError(`the model has ${layers} layer${layers === 1 ? '' : 's'} (input layers not counted), too few for ${stages} stages: every stage needs at least one layer`);
  }
}

/** Ranges from the first layer index of stages 1..K-1. */
export function rangesFromSplitAt(layers: number, stages: number, splitAt: readonly number[]): LayerRange[] {
  checkStages(layers, stages);
  if (!Array.isArray(splitAt) || splitAt.length !== stages - 1) {
    throw argumentError(`splitAt must list ${stages - 1} layer index${stages === 2 ? '' : 'es'} (where stages 1..${stages - 1} start) for ${stages} stages, got ${JSON.stringify(splitAt)}`);
  }
  let previous = 0;
  for (const at of splitAt) {
    if (!Number.isInteger(at) || at <= previous || at >= layers) {
      throw argumentError(
        `splitAt ${JSON.stringify(splitAt)} is not a strictly increasing list of layer indices in 1..${layers - 1} (the model has ${layers} layers; every stage needs at least one)`,
      );
    }
    previous = at;
  }
  const bounds = [0, ...splitAt, layers];
  return bounds.slice(0, -1).map((start, s) => [start, bounds[s + 1]!] as const);
}

/**
 * Contiguous ranges that minimise the largest stage's parameter count, then the sum of squares
 * of the stages' counts (the evener of two splits with the same largest stage); every stage gets
 * at least one layer. Parameters stand in for compute: give splitAt where they differ (a
 * convolution has few parameters and much compute). Deterministic: equal inputs give equal
 * splits on every rank.
 */
export function balancedRanges(paramCounts: readonly number[], stages: number): LayerRange[] {
  const n = paramCounts.length;
  checkStages(n, stages);
  const prefix = [0];
  for (const c of paramCounts) prefix.push(prefix[prefix.length - 1]! + c);
  const sum = (a: number, b: number): number => prefix[b]! - prefix[a]!;
  // best[k][i]: cost of the first i layers in k stages, as [max, sum of squares]; cut[k][i]: where stage k-1 starts.
  const best: [number, number][][] = [];
  const cut: number[][] = [];
  for (let k = 0; k <= stages; k++) {
    best.push(new Array<[number, number]>(n + 1).fill([Infinity, Infinity]));
    cut.push(new Array<number>(n + 1).fill(-1));
  }
  best[0]![0] = [0, 0];
  for (let k = 1; k <= stages; k++) {
    for (let i = k; i <= n - (stages - k); i++) {
      for (let j = k - 1; j < i; j++) {
        const prev = best[k - 1]![j]!;
        if (prev[0] === Infinity) continue;
        const part = sum(j, i);
        const cost: [number, number] = [Math.max(prev[0], part), prev[1] + part * part];
        const cur = best[k]![i]!;
        if (cost[0] < cur[0] || (cost[0] === cur[0] && cost[1] < cur[1])) {
          best[k]![i] = cost;
          cut[k]![i] = j;
        }
      }
    }
  }
  const ranges: LayerRange[] = [];
  let end = n;
  for (let k = stages; k >= 1; k--) {
    const start = cut[k]![end]!;
    ranges.unshift([start, end]);
    end = start;
  }
  return ranges;
}

/** `total` items in `parts` contiguous shares, as even as possible (the first total mod parts get one more). */
export function evenShares(total: number, parts: number): { start: number; size: number }[] {
  const base = Math.floor(total / parts);
  const extra = total % parts;
  const out: { start: number; size: number }[] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const size = base + (p < extra ? 1 : 0);
    out.push({ start, size });
    start += size;
  }
  return out;
}

/**
 * The rows of one batch that a replica trains on, cut into micro-batches: [start, size] pairs
 * relative to the batch. The replica's share is cut into min(microBatches, its rows) micro-batches,
 * so a short last batch still runs (with fewer, possibly unequal micro-batches; the loss weights
 * each by its rows, so the result still equals whole-batch training).
 */
export function microBatchRows(batchRows: number, replicas: number, replica: number, microBatches: number): { start: number; size: number }[] {
  const share = evenShares(batchRows, replicas)[replica]!;
  return evenShares(share.size, Math.min(microBatches, share.size)).map((m) => ({ start: share.start + m.start, size: m.size }));
}
