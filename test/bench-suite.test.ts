// `ringtrain ... bench` end to end: real ranks through the launcher, every collective, every
// output format, the correctness column, progress only on a terminal, and a 2-rank --train run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COLLECTIVES, COLLECTIVE_NAMES, type CollectiveName } from '../src/bench/collectives.js';
import { CSV_HEADER } from '../src/bench/report.js';
import { PROGRESS_MARKER } from '../src/progress.js';
import { init } from '../src/init.js';
import { CLI, ROOT, hasCommand, runCli } from './helpers/processes.js';

/** Runs scripts/bench-report.mjs on a report (what the bench printed) and returns the SVG it wrote. */
function plot(mode: string[], report: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rt-bench-report-'));
  try {
    writeFileSync(path.join(dir, 'report.json'), report);
    const r = spawnSync(process.execPath, ['scripts/bench-report.mjs', ...mode, path.join(dir, 'report.json'), '--out', path.join(dir, 'plot.svg')], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return readFileSync(path.join(dir, 'plot.svg'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Rank 0's lines, without the launcher's `[0] ` tag. */
function rank0(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.startsWith('[0] ')).map((l) => l.slice(4));
}

const QUICK = ['-n', '2', '-w', '1', '--min-time-ms', '0', '--startup-warmup-ms', '0'];

interface JsonRow { collective: CollectiveName; bytes: number; count: number; op: string; root: number; timeUs: number; algbwGBps: number | null; busbwGBps: number | null; errors: number | null; latencyUs: number | null; p2pBwGBps: number | null }
interface BenchJson {
  tool: string;
  mode: string;
  ranks: number;
  collectives: { name: CollectiveName; busbwFactor: number | null; rows: JsonRow[]; errors: number | null }[];
  skipped: { name: CollectiveName; reason: string }[];
}

describe('ringtrain bench --collective', () => {
  it('runs every collective into one JSON report on 3 ranks: exact results, nccl-tests sizes and busbw factors', async () => {
    const run = await runCli(['-np', '3', 'bench', '--collective', 'all', '-b', '4', '-e', '2K', '-f', '8', '-d', 'int32', '-o', 'max', '--json', ...QUICK]);
    expect(run.code, run.stderr).toBe(0);
    const lines = rank0(run.stdout);
    expect(lines).toHaveLength(1);
    const doc = JSON.parse(lines[0]!) as BenchJson;
    expect(doc).toMatchObject({ tool: 'ringtrain-bench', mode: 'collectives', ranks: 3 });
    // Every collective either ran or was refused with the reason.
    expect([...doc.collectives.map((c) => c.name), ...doc.skipped.map((s) => s.name)].sort()).toEqual([...COLLECTIVE_NAMES].sort());
    expect(doc.skipped).toEqual([]);
    expect(doc.collectives.map((c) => c.name)).toEqual([...COLLECTIVE_NAMES]);
    for (const c of doc.collectives) {
      const desc = COLLECTIVES[c.name];
      expect(c.errors, c.name).toBe(desc.sized ? 0 : null);
      expect(c.rows.length, c.name).toBe(desc.sized ? 4 : 1);
      for (const r of c.rows) {
        expect(r.timeUs).toBeGreaterThan(0);
        if (!desc.sized) {
          expect(r).toMatchObject({ bytes: 0, algbwGBps: null, busbwGBps: null, errors: null });
          continue;
        }
        expect(r.busbwGBps!).toBeCloseTo(r.algbwGBps! * desc.busbwFactor(3), 9);
        expect(r.algbwGBps!).toBeCloseTo(r.bytes / r.timeUs / 1e3, 9);
        expect(r.bytes).toBe(r.count * 4);
        // Gathered and scattered buffers are n equal parts.
        if (c.name === 'allgather' || c.name === 'reducescatter') expect(r.count % 3).toBe(0);
        expect(r.op).toBe(desc.reduces ? 'max' : 'none');
        expect(r.root).toBe(c.name === 'broadcast' ? 0 : -1);
        if (c.name === 'sendrecv') {
          expect(r.latencyUs!).toBeGreaterThan(0);
          expect(r.p2pBwGBps!).toBeGreaterThan(0);
        } else {
          expect(r).toMatchObject({ latencyUs: null, p2pBwGBps: null });
        }
      }
    }
    expect(run.stderr).not.toContain(PROGRESS_MARKER);
    // scripts/bench-report.mjs plots busbw vs size for every sized collective of the report.
    const svg = plot(['--collectives'], run.stdout);
    expect(svg.match(/<polyline/g)).toHaveLength(COLLECTIVE_NAMES.length - 1);
    expect(svg).toContain('reducescatter (busbw = algbw x (n-1)/n)');
  });

  it('prints CSV for each collective with the columns compare.py and loopback.py read', async () => {
    for (const name of COLLECTIVE_NAMES) {
      const run = await runCli(['-np', '2', '--no-tag-output', 'bench', '--collective', name, '-b', '1K', '-e', '4K', '-f', '4', '--csv', ...QUICK]);
      expect(run.code, run.stderr).toBe(0);
      const lines = run.stdout.trim().split('\n');
      expect(lines[0], name).toBe(CSV_HEADER);
      const cols = CSV_HEADER.split(',');
      const rows = lines.slice(1).map((l) => l.split(','));
      expect(rows.length, name).toBe(name === 'barrier' ? 1 : 2);
      for (const f of rows) {
        expect(f).toHaveLength(cols.length);
        expect(f[cols.indexOf('bytes')]).toMatch(/^\d+$/);
        expect(f[cols.indexOf('collective')]).toBe(name);
        expect(Number(f[cols.indexOf('time_us')])).toBeGreaterThan(0);
        if (name !== 'barrier') {
          expect(Number(f[cols.indexOf('busbw_gbps')])).toBeGreaterThan(0);
          expect(f[cols.indexOf('errors')]).toBe('0');
        }
      }
    }
  });

  it('checks each size with -c and prints a #wrong column, in odd dtypes and sizes', async () => {
    const run = await runCli(['-np', '2', 'bench', '--collective', 'all', '-b', '6', '-e', '6000', '-f', '10', '-d', 'float16', '-o', 'avg', '-c', '1', ...QUICK]);
    expect(run.code, run.stderr).toBe(0);
    const out = rank0(run.stdout);
    expect(out.filter((l) => l.includes('#wrong')).length).toBeGreaterThanOrEqual(4);
    const dataRows = out.filter((l) => /^\s+\d+\s+\d+\s+float16/.test(l));
    expect(dataRows.length).toBe(5 * 4 + 1); // sizes 6, 60, 600, 6000 for five collectives, one barrier row
    // #wrong is the ninth column (sendrecv rows have two more after it).
    for (const l of dataRows) expect(l.trim().split(/\s+/)[8]).toMatch(/^(0|N\/A)$/);
    expect(out.filter((l) => l.startsWith('# Out of bounds values : 0 OK')).length).toBe(COLLECTIVE_NAMES.length - 1);
  });

  it('refuses a collective this job cannot run with a message saying why (exit 2), and lists it as not run in --collective all', async () => {
    const alone = await runCli(['-np', '1', 'bench', '--collective', 'sendrecv', ...QUICK]);
    expect(alone.code, alone.stderr).toBe(2);
    expect(alone.stderr).toContain('--collective sendrecv: sendrecv needs at least 2 ranks');
    const all = await runCli(['-np', '1', 'bench', '--collective', 'all', '-b', '8', '-e', '8', '--json', ...QUICK]);
    expect(all.code, all.stderr).toBe(0);
    const doc = JSON.parse(rank0(all.stdout)[0]!) as BenchJson;
    expect(doc.skipped).toEqual([{ name: 'sendrecv', reason: 'sendrecv needs at least 2 ranks' }]);
    expect(doc.collectives).toHaveLength(COLLECTIVE_NAMES.length - 1);
  });
});

describe('progress line', () => {
  const canPty = hasCommand('script');
  it.skipIf(!canPty && process.env.CI !== 'true')('is drawn in place on the launcher\'s terminal, from rank 0, naming collective and size (through `script`, which gives it a pty)', () => {
    if (!canPty) throw new Error('CI=true but `script` (util-linux) is missing: cannot give the launcher a terminal');
    const cmd = `${process.execPath} ${CLI} -np 2 bench --collective all -b 64K -e 4M -f 4 -n 2 -w 1 --min-time-ms 0 --startup-warmup-ms 0`;
    const r = spawnSync('script', ['-qefc', cmd, '/dev/null'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/\r\x1b\[K\[0\] allreduce \(1\/\d\): size 64K \(1\/4\)/);
    expect(r.stdout).not.toContain(PROGRESS_MARKER);
  });
});

interface TrainJson {
  tool: string;
  mode: string;
  ranks: number;
  backend: { name: string; package: string };
  repeats: {
    alone: { ranks: number; totalSamplesPerSec: number; perRank: { rank: number }[] };
    together: { ranks: number; totalSamplesPerSec: number; perRank: { rank: number; samplesPerSec: number; stepMs: number; computeMs: number; copyMs: number; transferMs: number; waitMs: number }[] };
    efficiency: number;
    factors: { cpuShare: number; cpuEfficiency: number };
  }[];
  efficiency: number;
}

describe('ringtrain bench --train', () => {
  it('trains a small MLP alone and on 2 ranks and reports throughput, the step split and the scaling efficiency', async () => {
    const args = ['-np', '2', 'bench', '--train', '--layers', '16', '--batch', '16', '--steps', '6', '--warmup-steps', '2'];
    const json = await runCli([...args, '--json'], { killAfterMs: 90_000 });
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(rank0(json.stdout)[0]!) as TrainJson;
    expect(doc).toMatchObject({ tool: 'ringtrain-bench', mode: 'train', ranks: 2, backend: { name: 'cpu', package: '@tensorflow/tfjs' } });
    const [r] = doc.repeats;
    expect(r!.alone.ranks).toBe(1);
    expect(r!.alone.perRank).toHaveLength(1);
    expect(r!.together.perRank.map((p) => p.rank)).toEqual([0, 1]);
    for (const p of r!.together.perRank) {
      expect(p.samplesPerSec).toBeGreaterThan(0);
      expect(p.computeMs + p.copyMs + p.transferMs + p.waitMs).toBeCloseTo(p.stepMs, 6);
    }
    expect(r!.efficiency).toBeCloseTo(r!.together.totalSamplesPerSec / (2 * r!.alone.totalSamplesPerSec), 9);
    expect(doc.efficiency).toBe(r!.efficiency);
    // CPU share x CPU efficiency is the efficiency up to the total using the slowest rank's time
    // (the identity itself is unit-tested); over 6 steps the two may differ by some percent.
    const product = r!.factors.cpuShare * r!.factors.cpuEfficiency;
    expect(product).toBeGreaterThan(0);
    expect(Math.abs(product / r!.efficiency - 1)).toBeLessThan(0.5);
    // scripts/bench-report.mjs plots the efficiency vs ranks (1 rank is 100% by definition).
    expect(plot(['--scaling'], json.stdout)).toMatch(/<polyline[^>]*points="[\d.]+,[\d.]+ [\d.]+,[\d.]+"/);

    const table = await runCli([...args, '--model', 'cnn', '--input', '12x12x1', '--filters', '4', '--kernel', '3'], { killAfterMs: 90_000 });
    expect(table.code, table.stderr).toBe(0);
    const text = rank0(table.stdout).join('\n');
    expect(text).toContain('backend: cpu from @tensorflow/tfjs');
    expect(text).toContain('cnn: input 12x12x1, conv 4@3x3');
    expect(text).toMatch(/^ 1 process\s+0\s+\d+\.\d/m);
    expect(text).toMatch(/^ 2 ranks\s+total\s+\d+\.\d/m);
    expect(text).toMatch(/scaling efficiency: [\d.]+ \/ \(2 x [\d.]+\) = [\d.]+%/);
  });

  it('refuses a bad model option before starting to train', async () => {
    const run = await runCli(['-np', '1', 'bench', '--train', '--layers', '64,x']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--layers: '64,x' must be positive integers");
  });
});

describe('allgather into a buffer of the caller', () => {
  it('fills `out` and returns it, and refuses one of the wrong type or length before sending', async () => {
    const comm = await init({ rank: 0, size: 1, env: {} });
    try {
      const out = new Int32Array(3);
      expect(await comm.allgather(new Int32Array([4, 5, 6]), { out })).toBe(out);
      expect([...out]).toEqual([4, 5, 6]);
      await expect(comm.allgather(new Int32Array(3), { out: new Int32Array(2) })).rejects.toMatchObject({ code: 'ERR_RINGTRAIN_ARGUMENT' });
      await expect(comm.allgather(new Int32Array(3), { out: new Float32Array(3) as unknown as Int32Array })).rejects.toThrow(/out must be a Int32Array of 3 elements/);
    } finally {
      await comm.close();
    }
  });
});
