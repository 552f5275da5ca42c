/**
 * The launcher and the process that started it: real `npx ringtrain` in a project that has the
 * package (a consumer folder whose node_modules/ringtrain is this checkout), killed the way
 * `timeout`, supervisors and CI runners do; and `nohup ringtrain ... &` from a shell that exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, CLI, hasCommand, ROOT, tagged, waitUntil, type LauncherRankReport as Report } from './helpers/processes.js';

const RANK = path.join(ROOT, 'test/fixtures/launcher-rank.mjs');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rtl-starter-'));
const consumer = path.join(tmp, 'consumer');
mkdirSync(path.join(consumer, 'node_modules', '.bin'), { recursive: true });
writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
symlinkSync(ROOT, path.join(consumer, 'node_modules', 'ringtrain'));
symlinkSync('../ringtrain/dist/cli.js', path.join(consumer, 'node_modules', '.bin', 'ringtrain'));
const LAUNCHER_PATH = path.join(consumer, 'node_modules', '.bin', 'ringtrain');

const started: ChildProcess[] = [];
const nohupLaunchers: number[] = [];
afterAll(() => {
  for (const pid of nohupLaunchers) if (alive(pid)) process.kill(pid, 'SIGKILL');
  // npx's process group holds the launcher too (a leftover of a failed test): kill it, ranks follow.
  for (const c of started) {
    try {
      if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

/** This environment without what an outer `npm test` put there: npx behaves as from a terminal. */
function userEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
}

/** Pids of processes whose command line contains `text`. */
function pidsWith(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(text) && alive(Number(entry))) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

/** Starts `npx ringtrain -np 2 -- node RANK --hold` in its own process group; resolves once both ranks are ready. */
async function startNpx(): Promise<{ npx: ChildProcess; output: () => string; rankPids: number[]; launcherPids: number[] }> {
  const npx = spawn('npx', ['ringtrain', '-np', '2', '--', process.execPath, RANK, '--hold'], {
    cwd: consumer,
    env: userEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  started.push(npx);
  let out = '';
  npx.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  npx.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const ready = await waitUntil(() => (out.match(/^\[\d\] READY \d$/gm) ?? []).length === 2, 60_000);
  expect(ready, `npx ringtrain did not start both ranks:\n${out}`).toBe(true);
  const rankPids = [...tagged<Report>(out, 'REPORT').values()].map((r) => r.pid);
  const launcherPids = pidsWith(LAUNCHER_PATH);
  expect(rankPids).toHaveLength(2);
  expect(launcherPids).toHaveLength(1);
  return { npx, output: () => out, rankPids, launcherPids };
}

describe.skipIf(!hasCommand('npx') && process.env.CI !== 'true')('the launcher stops when the process that started it is gone', () => {
  it.each(['SIGTERM', 'SIGKILL'] as const)('%s to npx ringtrain leaves no launcher and no rank behind', async (signal) => {
    const job = await startNpx();
    const t = Date.now();
    process.kill(job.npx.pid!, signal);
    const clean = await waitUntil(() => [...job.launcherPids, ...job.rankPids].every((p) => !alive(p)), 10_000);
    expect(clean, `still running ${Date.now() - t} ms after ${signal} to npx:\n${job.output()}`).toBe(true);
    console.log(`${signal} to npx: launcher and ranks gone after ${Date.now() - t} ms`);
  });

  it('nohup ringtrain ... & from a shell that exits keeps the job running (it is not watched)', async () => {
    const out = path.join(tmp, 'nohup.out');
    // The marker (this test's folder) tells this launcher from any other on the machine.
    const mark = `RT_NOHUP_TEST=${tmp}`;
    const sh = spawn('sh', ['-c', `nohup "$0" "$1" -np 1 -x "$3" -- "$0" "$2" --hold > "${out}" 2>&1 &`, process.execPath, CLI, RANK, mark], {
      env: userEnv(),
      stdio: 'ignore',
    });
    await new Promise((resolve) => sh.on('close', resolve));
    // The background job opens nohup.out itself, possibly after the shell has exited.
    const text = (): string => (existsSync(out) ? readFileSync(out, 'utf8') : '');
    expect(await waitUntil(() => /READY 0/.test(text()), 20_000), text()).toBe(true);
    const [launcher] = pidsWith(`${CLI} -np 1 -x ${mark} --`);
    if (launcher !== undefined) nohupLaunchers.push(launcher);
    const rank = [...tagged<Report>(text(), 'REPORT').values()][0]!.pid;
    expect(launcher).toBeDefined();
    await new Promise((r) => setTimeout(r, 1_500)); // several polls of a starter watch, were there one
    expect(alive(launcher!) && alive(rank), text()).toBe(true);
    process.kill(launcher!, 'SIGTERM');
    expect(await waitUntil(() => !alive(launcher!) && !alive(rank), 10_000)).toBe(true);
  });
});
