/**
 * A communicator's life: close() gives back every OS resource at once (not at garbage collection),
 * and a process can init() again after close(), or hold two communicators at once, under the
 * plain environment contract (rank 0 serves the rendezvous) and under the launcher.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT, expectAllOk, runRanks } from './helpers/processes.js';

interface LifecycleReport {
  rank: number;
  size: number;
  cycles: number;
  fds: number[];
  threads: number[];
  stacks: number[];
  distinctPorts: number;
  error?: { code: string; message: string };
}

const WORKER = 'test/fixtures/lifecycle-worker.mjs';

function reportOf(stdout: string): LifecycleReport {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  expect(line, `no report in:\n${stdout}`).toBeDefined();
  return JSON.parse(line!) as LifecycleReport;
}

/** After the warm-up cycle, every cycle ends with exactly the fds and threads of the first. */
function expectNoGrowth(r: LifecycleReport): void {
  expect(r.error, JSON.stringify(r.error)).toBeUndefined();
  expect(r.fds.length).toBe(r.cycles + 1);
  const base = r.fds[1]!;
  expect(r.fds.slice(1), `open fds after each cycle (rank ${r.rank})`).toEqual(r.fds.slice(1).map(() => base));
  expect(Math.max(...r.threads.slice(1)), `threads after each cycle (rank ${r.rank}): ${r.threads.join(',')}`).toBeLessThanOrEqual(r.threads[1]! + 2);
  // A worker thread that exited but was never joined keeps its 8 MiB stack mapped.
  expect(Math.max(...r.stacks.slice(1)), `mapped thread stacks after each cycle (rank ${r.rank}): ${r.stacks.join(',')}`).toBeLessThanOrEqual(r.stacks[1]! + 1);
}

function runAlone(args: string[], shellPrefix = ''): { status: number | null; stdout: string; stderr: string } {
  const cmd = `${shellPrefix}exec "${process.execPath}" ${WORKER} ${args.join(' ')}`;
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(RINGTRAIN_|OMPI_|SLURM_|PMI_)|^(RANK|WORLD_SIZE|LOCAL_RANK|MASTER_ADDR|MASTER_PORT)$/.test(k)) delete env[k];
  const r = spawnSync('/bin/sh', ['-c', cmd], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('close() releases every OS resource at once', () => {
  it('a world of one: 40 init()/close() cycles leave the open fds, threads and mapped stacks where they were', () => {
    const r = runAlone(['40']);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expectNoGrowth(reportOf(r.stdout));
  });

  it('a world of one: 300 cycles run under `ulimit -n 64`', () => {
    const r = runAlone(['300'], 'ulimit -n 64 && ');
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expectNoGrowth(reportOf(r.stdout));
  });

  it('out of fds, init() fails with a RingtrainError (ERR_RINGTRAIN_INTERNAL) naming the cause, and works again once some are free', () => {
    const script = [
      "import fs from 'node:fs';",
      "import { init, loadNative, RingtrainError } from './dist/index.js';",
      'loadNative();',
      'const held = [];',
      "try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch {}",
      'let failed;',
      'try { await init({ env: {} }); } catch (e) { failed = { ring: e instanceof RingtrainError, code: e.code, message: e.message }; }',
      'for (const fd of held.splice(0, 8)) fs.closeSync(fd);',
      'const comm = await init({ env: {} });',
      'await comm.close();',
      'console.log(JSON.stringify(failed));',
    ].join('\n');
    const r = spawnSync('/bin/sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" --input-type=module -e "$0"`, script], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const failed = JSON.parse(r.stdout.trim()) as { ring: boolean; code: string; message: string };
    expect(failed).toMatchObject({ ring: true, code: 'ERR_RINGTRAIN_INTERNAL' });
    expect(failed.message).toMatch(/^ringtrain: eventfd: Too many open files/);
  });

  it('a world of two real ranks (rank 0 serves the rendezvous): 12 cycles, each a new ring, no fd growth', async () => {
    const results = await runRanks({ size: 2, script: WORKER, args: ['12'] });
    expectAllOk(results);
    for (const res of results) {
      const r = reportOf(res.stdout);
      expectNoGrowth(r);
      expect(r.size).toBe(2);
    }
  });
});

describe('init() again', () => {
  it('two communicators open at once in each of 3 ranks (plain contract): independent, both exact', async () => {
    const results = await runRanks({ size: 3, script: WORKER, args: ['3', 'concurrent'] });
    expectAllOk(results);
    for (const res of results) {
      const r = reportOf(res.stdout);
      expectNoGrowth(r);
      expect(r.distinctPorts, 'every communicator has its own ring listener').toBe(2 * (r.cycles + 1));
    }
  });

  it('under the launcher: 3 ranks close and init() again 5 times, and hold two at once', () => {
    for (const mode of ['serial', 'concurrent']) {
      const r = spawnSync(process.execPath, ['dist/cli.js', '-np', '3', '--', process.execPath, WORKER, '5', mode], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, `${mode}: ${r.stderr}\n${r.stdout}`).toBe(0);
      const reports = r.stdout
        .trim()
        .split('\n')
        .map((l) => l.replace(/^\[\d+\][^{]*/, ''))
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as LifecycleReport);
      expect(reports.map((x) => x.rank).sort()).toEqual([0, 1, 2]);
      for (const x of reports) expectNoGrowth(x);
    }
  });

  it('under the launcher: a rank that exits instead of calling init() again fails the others at once, named', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['dist/cli.js', '-np', '3', '-x', 'RINGTRAIN_TIMEOUT_MS=60000', '--', process.execPath, WORKER, '3', 'rank1-leaves'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/init\(\) #2 cannot complete: rank 1 exited with code 0 without calling it \(every rank must call init\(\) the same number of times\)/);
    expect(Date.now() - t0, 'long before the 60 s timeout').toBeLessThan(20_000);
  });
});
