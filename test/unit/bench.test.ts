// The benchmark suite's pure parts, in-process: nccl-tests conventions (size, busbw factor), the
// correctness check, report formats, progress lines, scaling arithmetic, the tfjs lookup.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COLLECTIVES, COLLECTIVE_NAMES, collectivesFor, reducedValue } from '../../src/bench/collectives.js';
import { CSV_HEADER, formatCollectiveFooter, formatCsvRow, formatRow } from '../../src/bench/report.js';
import { windowFor } from '../../src/bench/ping-pong.js';
import { bandwidths, sizesToRun, type BenchRow } from '../../src/bench/sweep.js';
import { NO_TFJS_MESSAGE, loadTfjsFrom } from '../../src/bench/tfjs-loader.js';
import { formatTrainReport, type PhaseResult, type TrainReport } from '../../src/bench/train-report.js';
import { efficiencyFactors, median, samplesPerSec, scalingEfficiency, splitSteps } from '../../src/bench/train-stats.js';
import { countWrong, decodeAt, encode, makeView, setAt } from '../../src/bench/values.js';
import { StatusLine } from '../../src/launcher/status-line.js';
import { PROGRESS_MARKER, ProgressLine } from '../../src/progress.js';
import type { Communicator, Dtype } from '../../src/types.js';

describe('nccl-tests conventions per collective', () => {
  it('uses busbw factors 2(n-1)/n for allreduce, (n-1)/n for allgather and reduce-scatter, 1 for broadcast and sendrecv', () => {
    for (const n of [2, 3, 4, 8]) {
      expect(COLLECTIVES.allreduce.busbwFactor(n)).toBeCloseTo((2 * (n - 1)) / n, 12);
      expect(COLLECTIVES.allgather.busbwFactor(n)).toBeCloseTo((n - 1) / n, 12);
      expect(COLLECTIVES.reducescatter.busbwFactor(n)).toBeCloseTo((n - 1) / n, 12);
      expect(COLLECTIVES.broadcast.busbwFactor(n)).toBe(1);
      expect(COLLECTIVES.sendrecv.busbwFactor(n)).toBe(1);
    }
  });

  it('counts the whole buffer as the size, rounded to whole elements and, for gathered or scattered buffers, to n equal parts', () => {
    expect(COLLECTIVES.allreduce.elements(1001, 4, 3)).toBe(250);
    expect(COLLECTIVES.broadcast.elements(64 << 20, 4, 4)).toBe(16 << 20);
    expect(COLLECTIVES.allgather.elements(1000, 4, 3)).toBe(249);
    expect(COLLECTIVES.reducescatter.elements(1000, 4, 3)).toBe(249);
    expect(COLLECTIVES.allgather.elements(8, 4, 3)).toBe(0);
    expect(COLLECTIVES.sendrecv.elements(10, 2, 2)).toBe(5);
    expect(COLLECTIVES.barrier.sized).toBe(false);
  });

  it('computes algbw as bytes / time and busbw with the factor; the barrier has neither', () => {
    expect(bandwidths(COLLECTIVES.allreduce, 1e6, 1000, 4)).toEqual({ algbw: 1, busbw: 1.5 });
    expect(bandwidths(COLLECTIVES.allgather, 2e6, 1000, 4)).toEqual({ algbw: 2, busbw: 1.5 });
    expect(bandwidths(COLLECTIVES.barrier, 0, 10, 4)).toEqual({ algbw: null, busbw: null });
  });

  it("runs every collective for 'all', in order, and names the choices for an unknown one", () => {
    expect(collectivesFor('all').map((c) => c.name)).toEqual([...COLLECTIVE_NAMES]);
    expect(collectivesFor('broadcast').map((c) => c.name)).toEqual(['broadcast']);
    expect(() => collectivesFor('alltoall')).toThrow(/choose one of allreduce, broadcast, allgather, reducescatter, sendrecv, barrier or all/);
  });

  it('sweeps sizes by the step factor from -b to -e', () => {
    expect(sizesToRun({ minBytes: 8, maxBytes: 64, stepFactor: 2 })).toEqual([8, 16, 32, 64]);
    expect(sizesToRun({ minBytes: 0, maxBytes: 5, stepFactor: 2 })).toEqual([0, 1, 2, 4]);
    expect(sizesToRun({ minBytes: 5, maxBytes: 100, stepFactor: 1 })).toEqual([5]);
  });
});

describe('the correctness column', () => {
  const DTYPES: Dtype[] = ['float32', 'float64', 'int32', 'int8', 'uint8', 'int64', 'float16', 'bfloat16'];

  it('stores and reads back the small integers it checks with exactly, in every dtype', () => {
    for (const dtype of DTYPES) {
      const view = makeView(dtype, 128);
      for (let i = 0; i < 128; i++) setAt(view, i, encode(dtype, i));
      for (let i = 0; i < 128; i++) expect(decodeAt(view, dtype, i)).toBe(i);
      expect(countWrong(view, dtype, (i) => i)).toBe(0);
      expect(countWrong(view, dtype, (i) => (i === 7 ? 8 : i))).toBe(1);
    }
  });

  it('knows the exact reduction for every op, including the integer average', () => {
    // Rank r contributes (i + r) % 2: with 3 ranks element 0 gets 0,1,0 and element 1 gets 1,0,1.
    expect([0, 1].map((i) => reducedValue('sum', 'float32', 3, i))).toEqual([1, 2]);
    expect(reducedValue('avg', 'int32', 3, 1)).toBe(0);
    expect(reducedValue('avg', 'float32', 3, 1)).toBeCloseTo(2 / 3, 12);
    expect([0, 1].map((i) => reducedValue('min', 'int8', 3, i))).toEqual([0, 0]);
    expect([0, 1].map((i) => reducedValue('max', 'int8', 3, i))).toEqual([1, 1]);
    expect(reducedValue('prod', 'float64', 5, 3)).toBe(1);
  });

  it('counts the elements that a collective which moved nothing would leave wrong', async () => {
    // A communicator whose calls return at once without touching the buffers: rank 1 of 3.
    const idle = {
      rank: 1,
      size: 3,
      allreduce: async <T>(v: T) => v,
      allreduceSync: <T>(v: T) => v,
      broadcast: async <T>(v: T) => v,
      allgather: async <T>(v: T, o?: { out?: T }) => o!.out!,
      barrier: async () => undefined,
    } as unknown as Communicator;
    for (const name of ['allreduce', 'broadcast', 'allgather'] as const) {
      const c = COLLECTIVES[name].setup({ comm: idle, dtype: 'float32', op: 'sum', elements: 300 });
      c.fill();
      await c.run();
      expect(c.wrong(), name).toBeGreaterThan(0);
    }
  });
});

describe('report formats', () => {
  const row: BenchRow = {
    collective: 'allgather', bytes: 4096, count: 1024, dtype: 'float32', op: 'none', root: -1, timeUs: 123.456, algbwGBps: 0.0332, busbwGBps: 0.0249, errors: 0, latencyUs: null, p2pBwGBps: null,
  };

  it('prints CSV whose header names bytes, time_us and busbw_gbps and whose rows have as many fields, as ../shared/peers/compare.py and loopback.py parse it', () => {
    const cols = CSV_HEADER.split(',');
    expect(cols.slice(0, 8)).toEqual(['bytes', 'count', 'dtype', 'op', 'time_us', 'algbw_gbps', 'busbw_gbps', 'errors']);
    const fields = formatCsvRow(row).split(',');
    expect(fields).toHaveLength(cols.length);
    expect(fields[cols.indexOf('bytes')]).toMatch(/^\d+$/);
    expect(Number(fields[cols.indexOf('time_us')])).toBeCloseTo(123.46, 2);
    expect(Number(fields[cols.indexOf('busbw_gbps')])).toBeCloseTo(0.0249, 6);
    expect(fields[cols.indexOf('collective')]).toBe('allgather');
    const sendrecv = formatCsvRow({ ...row, collective: 'sendrecv', latencyUs: 41.5, p2pBwGBps: 1.25 }).split(',');
    expect(Number(sendrecv[cols.indexOf('pingpong_us')])).toBe(41.5);
    expect(Number(sendrecv[cols.indexOf('p2p_bw_gbps')])).toBe(1.25);
  });

  it('sizes the osu_bw window at 64 messages, as OSU does, fewer when a window would pass 64 MiB', () => {
    expect(windowFor(8)).toBe(64);
    expect(windowFor(1 << 20)).toBe(64);
    expect(windowFor(4 << 20)).toBe(16);
    expect(windowFor(16 << 20)).toBe(4);
    expect(windowFor(256 << 20)).toBe(1);
  });

  it('prints N/A for what the barrier does not have and for an unchecked result', () => {
    const barrier = formatRow({ ...row, collective: 'barrier', bytes: 0, count: 0, algbwGBps: null, busbwGBps: null, errors: null });
    expect(barrier.trim().split(/\s+/).slice(-3)).toEqual(['N/A', 'N/A', 'N/A']);
    expect(formatCollectiveFooter([{ ...row, errors: null }], false)).toContain('N/A (check off)');
    expect(formatCollectiveFooter([{ ...row, errors: 3 }], true)).toContain('3 FAILED');
  });
});

describe('progress lines', () => {
  const sink = (): { out: string[]; stream: NodeJS.WriteStream } => {
    const out: string[] = [];
    return { out, stream: { isTTY: true, write: (t: string) => out.push(t) } as unknown as NodeJS.WriteStream };
  };

  it('shows none under the launcher unless it says its terminal is a TTY, and marked lines when it does', () => {
    const { out, stream } = sink();
    expect(ProgressLine.forProcess({ RINGTRAIN_LAUNCHER: '1' }, stream)).toBeUndefined();
    ProgressLine.forProcess({ RINGTRAIN_LAUNCHER: '1', RINGTRAIN_PROGRESS: '1' }, stream)!.update('allreduce 4K');
    expect(out).toEqual([`${PROGRESS_MARKER}allreduce 4K\n`]);
  });

  it('updates its own line in place on a terminal, and stays silent on a pipe', () => {
    const { out, stream } = sink();
    const p = ProgressLine.forProcess({}, stream)!;
    p.update('broadcast 1M');
    p.clear();
    expect(out).toEqual(['\r\x1b[Kbroadcast 1M', '\r\x1b[K']);
    expect(ProgressLine.forProcess({}, { ...stream, isTTY: false } as NodeJS.WriteStream)).toBeUndefined();
  });

  it("takes the launcher's status line away before other output and draws it again after", () => {
    const term: string[] = [];
    const s = new StatusLine((t) => term.push(t));
    const write = s.around((t) => term.push(`<${t}>`));
    write('a\n');
    s.show('[0] allgather 16M');
    write('b\n');
    expect(term).toEqual(['<a\n>', '\r\x1b[K[0] allgather 16M', '\r\x1b[K', '<b\n>', '[0] allgather 16M']);
  });
});

describe('training benchmark arithmetic', () => {
  it('splits each rank\'s step into compute, copy, transfer and the wait for the slowest rank', () => {
    // Rank 0 computes 10 ms, rank 1 14 ms; both all-reduce 1 ms of transfer after the slower arrives.
    const [a, b] = splitSteps([
      [{ stepMs: 16, allreduceMs: 5, copyMs: 1 }],
      [{ stepMs: 16, allreduceMs: 1, copyMs: 1 }],
    ]);
    expect(a).toEqual({ stepMs: 16, computeMs: 10, copyMs: 1, transferMs: 1, waitMs: 4 });
    expect(b).toEqual({ stepMs: 16, computeMs: 14, copyMs: 1, transferMs: 1, waitMs: 0 });
  });

  it('factors the efficiency into the CPU share the ranks got and the CPU they spent per sample', () => {
    // Alone: 1.2 cores busy for 1000 samples/s (1.2 ms CPU a sample). Two ranks: 1 core each, 750 samples/s each (1.333 ms).
    const f = efficiencyFactors({ cpuCores: 1.2, samplesPerSec: 1000 }, [{ cpuCores: 1, samplesPerSec: 750 }, { cpuCores: 1, samplesPerSec: 750 }]);
    expect(f.cpuShare).toBeCloseTo(2 / 2.4, 12);
    expect(f.cpuMsPerSampleAlone).toBeCloseTo(1.2, 12);
    expect(f.cpuMsPerSampleTogether).toBeCloseTo(4 / 3, 12);
    expect(f.cpuShare * f.cpuEfficiency).toBeCloseTo(scalingEfficiency(1500, 1000, 2), 12);
  });

  it('computes weak-scaling efficiency as throughput(n) / (n x throughput(1))', () => {
    expect(scalingEfficiency(1848, 1248, 2)).toBeCloseTo(0.7404, 4);
    expect(scalingEfficiency(100, 0, 2)).toBe(0);
    expect(samplesPerSec(3200, 2000)).toBe(1600);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('prints per-rank and total samples/s, the split and the efficiency, and names the backend', () => {
    const phase = (ranks: number, per: number): PhaseResult => ({
      ranks,
      totalSamplesPerSec: per * ranks,
      perRank: Array.from({ length: ranks }, (_, rank) => ({ rank, samplesPerSec: per, msPerStep: 20, cpuCores: 1.1, stepMs: 20, computeMs: 15, copyMs: 1, transferMs: 2, waitMs: 2 })),
      params: 50890,
      bytesPerStep: 203560,
    });
    const report: TrainReport = {
      machine: { cores: 2, loadAtStart: 1.5, loadAtEnd: 2.25 },
      ranks: 2,
      hosts: 1,
      model: 'mlp: 784-64-10',
      options: { model: 'mlp', input: [784], layers: [64], filters: [], kernel: 5, classes: 10, batch: 32, steps: 100, warmupSteps: 10, repeat: 1, compression: 'none' },
      backend: { name: 'cpu', package: '@tensorflow/tfjs', label: 'pure JavaScript', version: '4.22.0' },
      repeats: [{ alone: phase(1, 1000), together: phase(2, 900), efficiency: 0.9, factors: efficiencyFactors({ cpuCores: 1.25, samplesPerSec: 1000 }, [{ cpuCores: 1, samplesPerSec: 900 }, { cpuCores: 1, samplesPerSec: 900 }]) }],
      efficiency: 0.9,
    };
    const text = formatTrainReport(report);
    expect(text).toContain('backend: cpu from @tensorflow/tfjs 4.22.0');
    expect(text).toContain('machine: 2 cores, load average 1.50 at start, 2.25 at end');
    expect(text).toContain('50,890 parameters');
    expect(text).toMatch(/ 2 ranks\s+total\s+1800\.0/);
    expect(text).toContain('scaling efficiency: 1800.0 / (2 x 1000.0) = 90.0%');
    expect(text).toContain('= CPU share 80.0% (the ranks kept 2.00 cores busy, the one process 1.25) x CPU efficiency 112.5%');
  });

  it('names the package to install when no TensorFlow.js can be found', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ringtrain-notf-'));
    try {
      await expect(loadTfjsFrom([path.join(dir, 'package.json')])).rejects.toThrow(NO_TFJS_MESSAGE);
      expect(NO_TFJS_MESSAGE).toContain('npm install @tensorflow/tfjs');
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
