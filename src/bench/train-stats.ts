/**
 * The arithmetic of the training benchmark, kept free of TensorFlow.js: where each step's time
 * went on each rank, throughput, and weak-scaling efficiency.
 */

/** One timed step on one rank, from the tfjs hook's stats (DistributedOptimizer.stats deltas). */
export interface StepSample {
  /** onBatchBegin to onBatchEnd: the forward and backward pass, the hook, the optimizer update. */
  stepMs: number;
  /** The hook's time in the native all-reduce: transfer plus waiting for the slowest rank. */
  allreduceMs: number;
  /** The hook's fusion copies in and out (gather + scatter). */
  copyMs: number;
}

/** A rank's mean step, split. compute + copy + transfer + wait = step. */
export interface StepSplit {
  stepMs: number;
  computeMs: number;
  copyMs: number;
  transferMs: number;
  waitMs: number;
}

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/**
 * Splits every rank's steps. Ranks leave each step's all-reduce together, so a rank that computed
 * for c_r ms reaches the next all-reduce max(c) - c_r before the slowest one: that is its wait, and
 * the rest of its all-reduce time is the transfer. `perRank[r][s]` is rank r's step s.
 */
export function splitSteps(perRank: readonly (readonly StepSample[])[]): StepSplit[] {
  const steps = Math.min(...perRank.map((s) => s.length));
  const compute = perRank.map((samples) => samples.slice(0, steps).map((s) => Math.max(0, s.stepMs - s.allreduceMs - s.copyMs)));
  return perRank.map((samples, r) => {
    const waits: number[] = [];
    for (let s = 0; s < steps; s++) {
      const slowest = Math.max(...compute.map((c) => c[s]!));
      waits.push(Math.min(samples[s]!.allreduceMs, slowest - compute[r]![s]!));
    }
    const allreduce = mean(samples.slice(0, steps).map((s) => s.allreduceMs));
    const waitMs = mean(waits);
    return {
      stepMs: mean(samples.slice(0, steps).map((s) => s.stepMs)),
      computeMs: mean(compute[r]!),
      copyMs: mean(samples.slice(0, steps).map((s) => s.copyMs)),
      transferMs: Math.max(0, allreduce - waitMs),
      waitMs,
    };
  });
}

/** Weak scaling: throughput(n) / (n * throughput(1)), the same per-rank batch in both. */
export function scalingEfficiency(totalSamplesPerSec: number, singleSamplesPerSec: number, ranks: number): number {
  return singleSamplesPerSec > 0 && ranks > 0 ? totalSamplesPerSec / (ranks * singleSamplesPerSec) : 0;
}

export function samplesPerSec(samples: number, ms: number): number {
  return ms > 0 ? (samples * 1000) / ms : 0;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return 0;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** What a phase's ranks got and spent: cores kept busy (CPU time / wall time) and samples/s, per rank. */
export interface RankCpu {
  cpuCores: number;
  samplesPerSec: number;
}

/**
 * Scaling efficiency as the product of two factors, because throughput = cores busy / CPU time
 * per sample:
 * - cpuShare: the cores all n ranks kept busy / (n x the cores the one process kept busy). Below 1
 *   when the machine cannot give every rank what one process got (fewer free cores than ranks, other
 *   jobs, a lone process also using a second core for GC), or when ranks sleep waiting for each other.
 * - cpuEfficiency: CPU time per sample of the one process / that of the n ranks. Below 1 by the CPU
 *   the distribution itself costs: the hook's copies, the all-reduce's kernel copies and reduction,
 *   and compute slowed by ranks sharing caches and memory bandwidth.
 */
export function efficiencyFactors(alone: RankCpu, together: readonly RankCpu[]): {
  cpuShare: number;
  cpuEfficiency: number;
  cpuMsPerSampleAlone: number;
  cpuMsPerSampleTogether: number;
  coresAlone: number;
  coresTogether: number;
} {
  const coresTogether = together.reduce((a, r) => a + r.cpuCores, 0);
  const samplesTogether = together.reduce((a, r) => a + r.samplesPerSec, 0);
  const cpuMsPerSampleAlone = alone.samplesPerSec > 0 ? (alone.cpuCores * 1000) / alone.samplesPerSec : 0;
  const cpuMsPerSampleTogether = samplesTogether > 0 ? (coresTogether * 1000) / samplesTogether : 0;
  return {
    cpuShare: alone.cpuCores > 0 ? coresTogether / (together.length * alone.cpuCores) : 0,
    cpuEfficiency: cpuMsPerSampleTogether > 0 ? cpuMsPerSampleAlone / cpuMsPerSampleTogether : 0,
    cpuMsPerSampleAlone,
    cpuMsPerSampleTogether,
    coresAlone: alone.cpuCores,
    coresTogether,
  };
}
