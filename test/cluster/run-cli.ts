/** Runs the built `ringtrain` CLI (dist/cli.js) as a real process and collects what it prints. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/cli.js');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface RunningCli {
  child: ChildProcess;
  done: Promise<CliRun>;
  /** Resolves once stdout has `count` lines matching `pattern`. */
  waitForLines(pattern: RegExp, count: number, timeoutMs: number): Promise<void>;
  stdout(): string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The run is killed after this long (and the test sees code null). */
  killAfterMs?: number;
}

export function startCli(args: readonly string[], options: CliOptions = {}): RunningCli {
  const start = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers: (() => void)[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of [...watchers]) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs ?? 60_000);
  const done = new Promise<CliRun>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - start });
    });
  });
  return {
    child,
    done,
    stdout: () => stdout,
    waitForLines: (pattern, count, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        const check = (): boolean => stdout.split('\n').filter((l) => pattern.test(l)).length >= count;
        if (check()) return resolve();
        const timer = setTimeout(() => {
          reject(new Error(`timed out waiting for ${count} lines matching ${pattern}; stdout so far:\n${stdout}\nstderr:\n${stderr}`));
        }, timeoutMs);
        const watcher = (): void => {
          if (!check()) return;
          clearTimeout(timer);
          watchers.splice(watchers.indexOf(watcher), 1);
          resolve();
        };
        watchers.push(watcher);
        void done.then(() => {
          if (!check()) {
            clearTimeout(timer);
            reject(new Error(`ringtrain exited before ${count} lines matching ${pattern}; stdout:\n${stdout}\nstderr:\n${stderr}`));
          }
        });
      }),
  };
}

export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  return startCli(args, options).done;
}

/** What test/fixtures/launcher-rank.mjs prints on its `REPORT {json}` line. */
export interface LauncherRankReport {
  rank: number;
  size: number;
  localRank: number;
  localSize: number;
  addr: { host: string; port: number };
  iface: string | null;
  timeoutMs: number;
  portRange: [number, number] | null;
  tokenLength: number;
  tokenInCmdline: boolean;
  addresses: string[];
  tableHosts: string[] | null;
  /** Every rank's host identity from the rendezvous table. */
  tableHostIds: string[] | null;
  pid: number;
  cwd: string;
  exported: string | null;
  stdinIsDevNull: boolean | null;
}

/** Whether `name` is a command on PATH. */
export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs any command to its end (killed after timeoutMs), collecting its output. */
export function runCommand(
  cmd: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `cannot run ${cmd}: ${e.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Parses `[rank] TAG {json}` lines into a map by the prefix rank; throws on a rank reporting twice. */
export function tagged<T = Record<string, unknown>>(stdout: string, tag: string): Map<number, T> {
  const found = new Map<number, T>();
  for (const line of stdout.split('\n')) {
    const m = new RegExp(`^\\[(\\d+)\\] ${tag} (\\{.*\\})$`).exec(line);
    if (!m) continue;
    const rank = Number(m[1]);
    if (found.has(rank)) throw new Error(`rank ${rank} printed ${tag} twice`);
    found.set(rank, JSON.parse(m[2]!) as T);
  }
  return found;
}

/** True while a process with this pid runs (a zombie, dead but not yet reaped, does not count). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until `done()` is true, up to `timeoutMs`; returns whether it became true. */
export async function waitUntil(done: () => boolean, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (done()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return done();
}
