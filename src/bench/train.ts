/**
 * `ringtrain-bench --train`: a synthetic training benchmark through the same code path as a real
 * job (model.fit, DistributedOptimizer with its fusion, BroadcastCallback), on random data.
 *
 * Weak scaling: rank 0 first trains the model alone, as one process (a communicator of size 1,
 * what `node train.js` without a launcher gets) while the other ranks wait idle; then every rank
 * trains it with the same per-rank batch. With --repeat the two phases alternate, so load from
 * elsewhere on the machine hits both alike. Efficiency = throughput(n) / (n * throughput(1)).
 */
import os from 'node:os';
import type * as TF from '@tensorflow/tfjs';
import { init } from '../init.js';
import { ProgressLine } from '../progress.js';
import { BroadcastCallback, DistributedOptimizer } from '../tfjs/index.js';
import type { Communicator } from '../types.js';
import { loadTfjs, type LoadedTfjs } from './tfjs-loader.js';
import type { TrainBenchOptions } from './train-options.js';
import { formatTrainReport, trainJson, type PhaseResult, type TrainRepeat, type TrainReport } from './train-report.js';
import { efficiencyFactors, median, samplesPerSec, scalingEfficiency, splitSteps, type StepSample } from './train-stats.js';

type Tf = typeof TF;

/** How often (ms) rank 0, training alone, tells the waiting ranks it still runs: no wait nears the timeout. */
const ALONE_HEARTBEAT_MS = 1_000;

function buildModel(tf: Tf, o: TrainBenchOptions): TF.Sequential {
  const model = tf.sequential();
  if (o.model === 'cnn') {
    o.filters.forEach((filters, i) => {
      model.add(tf.layers.conv2d({ ...(i === 0 ? { inputShape: o.input } : {}), filters, kernelSize: o.kernel, activation: 'relu' }));
      model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    });
    model.add(tf.layers.flatten());
  } else {
    o.layers.forEach((units, i) => model.add(tf.layers.dense({ ...(i === 0 ? { inputShape: o.input } : {}), units, activation: 'relu' })));
  }
  model.add(tf.layers.dense({ ...(model.layers.length === 0 ? { inputShape: o.input } : {}), units: o.classes, activation: 'softmax' }));
  return model;
}

export function describeModel(o: TrainBenchOptions): string {
  return o.model === 'cnn'
    ? `cnn: input ${o.input.join('x')}, conv ${o.filters.map((f) => `${f}@${o.kernel}x${o.kernel}`).join(' + ')} (each + 2x2 max-pool), dense ${o.classes}`
    : `mlp: ${[...o.input, ...o.layers, o.classes].join('-')}`;
}

interface PhaseRun {
  samples: StepSample[];
  /** Wall time of the timed steps. */
  ms: number;
  /** CPU time of the whole process (every thread: JS, GC, the native worker) during the timed steps / their wall time. */
  cpuCores: number;
  params: number;
  bytesPerStep: number;
}

/** Trains a fresh model for warm-up + timed steps on `comm`; `onBatch` runs after each step's measurement. */
async function trainPhase(tf: Tf, comm: Communicator, o: TrainBenchOptions, onBatch?: () => Promise<void>): Promise<PhaseRun> {
  const model = buildModel(tf, o);
  const optimizer = new DistributedOptimizer(tf.train.adam(1e-3), { comm, compression: o.compression });
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const total = (o.warmupSteps + o.steps) * o.batch;
  const xs = tf.randomUniform([total, ...o.input], 0, 1, 'float32', 1 + comm.rank);
  const labels = tf.randomUniform([total], 0, o.classes, 'int32', 101 + comm.rank);
  const ys = tf.oneHot(labels, o.classes).toFloat();
  const samples: StepSample[] = [];
  let begin = 0;
  let firstTimed = 0;
  let lastEnd = 0;
  let cpuStart = process.cpuUsage();
  let cpuEnd = cpuStart;
  let before = { allreduceMs: 0, copyMs: 0 };
  const hookTotals = (): { allreduceMs: number; copyMs: number } => {
    const s = optimizer.stats;
    return { allreduceMs: s.allreduceMs, copyMs: s.gatherMs + s.scatterMs };
  };
  try {
    await model.fit(xs, ys, {
      epochs: 1,
      batchSize: o.batch,
      shuffle: false,
      verbose: 0,
      callbacks: [
        new BroadcastCallback({ root: 0, comm, model }),
        {
          onBatchBegin: async (batch: number) => {
            begin = performance.now();
            if (batch === o.warmupSteps) {
              firstTimed = begin;
              cpuStart = process.cpuUsage();
            }
            before = hookTotals();
          },
          onBatchEnd: async (batch: number) => {
            const end = performance.now();
            if (batch >= o.warmupSteps) {
              const after = hookTotals();
              samples.push({ stepMs: end - begin, allreduceMs: after.allreduceMs - before.allreduceMs, copyMs: after.copyMs - before.copyMs });
              lastEnd = end;
              cpuEnd = process.cpuUsage();
            }
            await onBatch?.();
          },
        } as unknown as TF.CustomCallbackArgs,
      ],
    });
    const stats = optimizer.stats;
    const ms = lastEnd - firstTimed;
    const cpuMs = (cpuEnd.user - cpuStart.user + cpuEnd.system - cpuStart.system) / 1000;
    return { samples, ms, cpuCores: ms > 0 ? cpuMs / ms : 0, params: model.countParams(), bytesPerStep: stats.steps ? stats.bytes / stats.steps : 0 };
  } finally {
    tf.dispose([xs, labels, ys]);
    model.dispose();
    optimizer.dispose();
  }
}

/** Rank 0 trains alone on a communicator of its own; the others wait, idle, for its heartbeats. */
async function alonePhase(tf: Tf, world: Communicator, o: TrainBenchOptions): Promise<PhaseResult | undefined> {
  const flag = new Float64Array(1);
  if (world.rank !== 0) {
    do {
      flag[0] = 0;
      await world.allreduce(flag, { op: 'max' });
    } while (flag[0] === 0);
    return undefined;
  }
  // env {}: the job's rank contract and timeline belong to the world communicator.
  const solo = await init({ rank: 0, size: 1, env: {} });
  let lastBeat = performance.now();
  try {
    const run = await trainPhase(tf, solo, o, async () => {
      if (world.size > 1 && performance.now() - lastBeat > ALONE_HEARTBEAT_MS) {
        flag[0] = 0;
        await world.allreduce(flag, { op: 'max' });
        lastBeat = performance.now();
      }
    });
    return phaseResult([run], o, 1);
  } finally {
    await solo.close();
    if (world.size > 1) {
      flag[0] = 1;
      await world.allreduce(flag, { op: 'max' });
    }
  }
}

/** Every rank's steps, gathered on every rank, split into compute, copy, transfer and wait. */
async function allRanksPhase(tf: Tf, world: Communicator, o: TrainBenchOptions): Promise<PhaseResult> {
  const run = await trainPhase(tf, world, o);
  const mine = new Float64Array(o.steps * 3 + 2);
  run.samples.forEach((s, i) => mine.set([s.stepMs, s.allreduceMs, s.copyMs], i * 3));
  mine[o.steps * 3] = run.ms;
  mine[o.steps * 3 + 1] = run.cpuCores;
  const all = await world.allgather(mine);
  const runs: PhaseRun[] = [];
  for (let r = 0; r < world.size; r++) {
    const part = all.subarray(r * mine.length, (r + 1) * mine.length);
    const samples: StepSample[] = [];
    for (let i = 0; i < o.steps; i++) samples.push({ stepMs: part[i * 3]!, allreduceMs: part[i * 3 + 1]!, copyMs: part[i * 3 + 2]! });
    runs.push({ samples, ms: part[o.steps * 3]!, cpuCores: part[o.steps * 3 + 1]!, params: run.params, bytesPerStep: run.bytesPerStep });
  }
  return phaseResult(runs, o, world.size);
}

function phaseResult(runs: readonly PhaseRun[], o: TrainBenchOptions, ranks: number): PhaseResult {
  const splits = splitSteps(runs.map((r) => r.samples));
  const slowestMs = Math.max(...runs.map((r) => r.ms));
  return {
    ranks,
    totalSamplesPerSec: samplesPerSec(ranks * o.steps * o.batch, slowestMs),
    perRank: runs.map((r, rank) => ({
      rank,
      samplesPerSec: samplesPerSec(o.steps * o.batch, r.ms),
      msPerStep: r.ms / o.steps,
      cpuCores: r.cpuCores,
      ...splits[rank]!,
    })),
    params: runs[0]!.params,
    bytesPerStep: runs[0]!.bytesPerStep,
  };
}

function backendOf(tf: Tf, loaded: LoadedTfjs): TrainReport['backend'] {
  return { name: tf.getBackend(), package: loaded.package, label: loaded.label, version: tf.version?.['tfjs-core'] ?? 'unknown' };
}

export async function runTrainBench(o: TrainBenchOptions, output: { json: boolean }): Promise<number> {
  const loaded = await loadTfjs();
  const tf = loaded.module as Tf;
  if (loaded.package === '@tensorflow/tfjs') {
    // The pure-JS package's "install tfjs-node" banner, once per rank, is noise in a report.
    const warn = console.warn;
    console.warn = (...a: unknown[]) => (String(a[0]).includes('looks like you are running TensorFlow.js in Node.js') ? undefined : warn(...a));
  }
  await tf.ready();
  const world = await init();
  try {
    const lead = world.rank === 0;
    const progress = lead ? ProgressLine.forProcess() : undefined;
    const repeats: TrainRepeat[] = [];
    const startLoad = os.loadavg()[0]!;
    for (let k = 0; k < o.repeat; k++) {
      progress?.update(`train ${o.model}: 1 process (${k + 1}/${o.repeat})`);
      const alone = await alonePhase(tf, world, o);
      let together: PhaseResult | undefined;
      if (world.size > 1) {
        progress?.update(`train ${o.model}: ${world.size} ranks (${k + 1}/${o.repeat})`);
        together = await allRanksPhase(tf, world, o);
      }
      if (lead) {
        const efficiency = together ? scalingEfficiency(together.totalSamplesPerSec, alone!.totalSamplesPerSec, world.size) : null;
        const factors = together ? efficiencyFactors(alone!.perRank[0]!, together.perRank) : null;
        repeats.push({ alone: alone!, together: together ?? null, efficiency, factors });
      }
    }
    progress?.clear();
    if (lead) {
      const efficiencies = repeats.map((r) => r.efficiency).filter((e): e is number => e !== null);
      const report: TrainReport = {
        machine: { cores: os.availableParallelism(), loadAtStart: startLoad, loadAtEnd: os.loadavg()[0]! },
        ranks: world.size,
        hosts: new Set(world.peers.map((p) => p.hostname)).size,
        model: describeModel(o),
        options: o,
        backend: backendOf(tf, loaded),
        repeats,
        efficiency: efficiencies.length ? median(efficiencies) : null,
      };
      process.stdout.write(`${output.json ? JSON.stringify(trainJson(report)) : formatTrainReport(report)}\n`);
    }
    return 0;
  } finally {
    await world.close();
  }
}
