/**
 * The tests' one process harness: every test that starts real processes (ranks of a job, the
 * `ringtrain` CLI, any other command) goes through watchProcess(), which spawns, collects stdout
 * and stderr (with arrival times), kills what outlives its limit (marking it hung) and settles once
 * with the exit code or signal. On top of it:
 *
 *   runRanks / expectAllOk          N ranks of one job on localhost, last stdout line as JSON
 *   runFixtureRanks / expectResults N ranks of a test/fixtures script, its `RESULT {json}` line
 *   startJob                        ranks followed live (READY, kill at a chosen moment, netns)
 *   startCli / runCli               the built CLI (dist/cli.js)
 *   runCommand                      any command to its end
 *   startElasticJob                 an elastic job through the launcher, line by line
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The repository root (tfjs tests' name for ROOT). */
export const REPO = ROOT;
export const FIXTURES = path.join(ROOT, 'test/fixtures');
export const CLI = path.join(ROOT, 'dist/cli.js');
export const WORKER = 'test/fixtures/reliability-worker.mjs';

/** A port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The primitive
// ---------------------------------------------------------------------------------------------

export interface WatchOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Killed (SIGKILL) and marked hung after this long. */
  killAfterMs: number;
}

export interface Watched {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Each stderr chunk with the Date.now() it arrived at. */
  stderrChunks: { at: number; text: string }[];
  startAt: number;
  exitAt: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Killed by the harness because it outlived killAfterMs. */
  hung: boolean;
  /** Set when the command could not be started at all. */
  spawnError: Error | undefined;
  /** Settles once, when the process has exited and its output is read (or could not start). */
  done: Promise<Watched>;
  /** Calls `listener` after every stdout chunk. */
  onStdout(listener: () => void): void;
}

export function watchProcess(cmd: string, args: readonly string[], o: WatchOptions): Watched {
  const listeners: (() => void)[] = [];
  const child = spawn(cmd, args, { cwd: o.cwd ?? ROOT, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let settle!: (w: Watched) => void;
  const w: Watched = {
    child,
    stdout: '',
    stderr: '',
    stderrChunks: [],
    startAt: Date.now(),
    exitAt: undefined,
    code: null,
    signal: null,
    hung: false,
    spawnError: undefined,
    done: new Promise<Watched>((resolve) => (settle = resolve)),
    onStdout: (listener) => listeners.push(listener),
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    w.stdout += d;
    for (const l of [...listeners]) l();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    w.stderr += d;
    w.stderrChunks.push({ at: Date.now(), text: d });
  });
  const timer = setTimeout(() => {
    w.hung = true;
    child.kill('SIGKILL');
  }, o.killAfterMs);
  child.on('error', (e) => {
    clearTimeout(timer);
    w.spawnError = e;
    w.exitAt = Date.now();
    settle(w);
  });
  child.on('close', (code, signal) => {
    clearTimeout(timer);
    w.exitAt ??= Date.now();
    w.code = code;
    w.signal = signal;
    settle(w);
  });
  return w;
}

/** The last stdout line parsed as JSON, when it is JSON. */
export function lastJson(stdout: string): Record<string, unknown> | undefined {
  const last = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Ranks of one job, followed live (the reliability tests) or run to their end
// ---------------------------------------------------------------------------------------------

export interface RankRun {
  rank: number;
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Date.now() when READY was printed (ring formed), when the process exited. */
  readyAt: number | undefined;
  exitAt: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last stdout line, parsed, when it is JSON. */
  json: Record<string, unknown> | undefined;
  /** Killed by the harness because it outlived killAfterMs: a hang. */
  hung: boolean;
  /** Each stderr chunk with the Date.now() it arrived at. */
  stderrChunks: { at: number; text: string }[];
  /** Milliseconds from spawn to exit. */
  ms: number;
}

/** When a line matching `pattern` first appeared on the rank's stderr (Date.now()), if it did. */
export function stderrLineAt(run: RankRun, pattern: RegExp): number | undefined {
  let seen = '';
  for (const c of run.stderrChunks) {
    seen += c.text;
    if (seen.split('\n').some((l) => pattern.test(l))) return c.at;
  }
  return undefined;
}

export interface JobOptions {
  size: number;
  args: string[];
  /** The rank program, relative to ROOT (default the reliability worker). */
  script?: string;
  env?: Record<string, string>;
  rankEnv?: (rank: number) => Record<string, string>;
  /** Ranks to start (default all); the others are the test's business. */
  ranks?: number[];
  /** Host of the rendezvous (rank 0 serves it); default 127.0.0.1. */
  addrHost?: string;
  port?: number;
  /** Network namespace to run a rank in (via `ip netns exec`). */
  netns?: (rank: number) => string | undefined;
  /** Delay before starting a rank. */
  startDelayMs?: (rank: number) => number;
  /** Extra node flags (e.g. --expose-gc). */
  nodeFlags?: string[];
  /** Ranks still running after this long are killed and marked hung. */
  killAfterMs: number;
}

export interface Job {
  ranks: RankRun[];
  port: number;
  /** Resolves when every started rank printed READY; rejects if one exits first. */
  allReady: Promise<void>;
  done: Promise<RankRun[]>;
  kill(rank: number, signal?: NodeJS.Signals): number;
}

export async function startJob(o: JobOptions): Promise<Job> {
  const port = o.port ?? (await freePort());
  const which = o.ranks ?? Array.from({ length: o.size }, (_, r) => r);
  const ranks: RankRun[] = [];
  const readies: Promise<void>[] = [];
  const exits: Promise<RankRun>[] = [];
  for (const rank of which) {
    const run: RankRun = {
      rank,
      child: undefined as unknown as ChildProcess,
      stdout: '',
      stderr: '',
      readyAt: undefined,
      exitAt: undefined,
      code: null,
      signal: null,
      json: undefined,
      hung: false,
      stderrChunks: [],
      ms: 0,
    };
    ranks.push(run);
    let markReady!: () => void;
    let failReady!: (e: Error) => void;
    readies.push(
      new Promise<void>((res, rej) => {
        markReady = res;
        failReady = rej;
      }),
    );
    exits.push(
      new Promise<RankRun>((resolve) => {
        const launch = (): void => {
          const node = [process.execPath, ...(o.nodeFlags ?? []), path.resolve(ROOT, o.script ?? WORKER), ...o.args];
          const ns = o.netns?.(rank);
          const [cmd, ...args] = ns ? ['ip', 'netns', 'exec', ns, ...node] : node;
          const w = watchProcess(cmd!, args, {
            env: {
              ...process.env,
              RINGTRAIN_RANK: String(rank),
              RINGTRAIN_SIZE: String(o.size),
              RINGTRAIN_ADDR: `${o.addrHost ?? '127.0.0.1'}:${port}`,
              RINGTRAIN_TIMEOUT_MS: '10000',
              ...o.env,
              ...o.rankEnv?.(rank),
            },
            killAfterMs: o.killAfterMs,
          });
          run.child = w.child;
          run.stderrChunks = w.stderrChunks;
          w.onStdout(() => {
            run.stdout = w.stdout;
            if (run.readyAt === undefined && /^READY /m.test(run.stdout)) {
              run.readyAt = Date.now();
              markReady();
            }
          });
          w.child.stderr!.on('data', () => (run.stderr = w.stderr));
          void w.done.then(() => {
            Object.assign(run, {
              stdout: w.stdout,
              stderr: w.stderr,
              exitAt: w.exitAt,
              code: w.code,
              signal: w.signal,
              hung: w.hung,
              json: lastJson(w.stdout),
              ms: (w.exitAt ?? Date.now()) - w.startAt,
            });
            failReady(new Error(`rank ${rank} exited (${w.code ?? w.signal}) before READY:\n${run.stderr}\n${run.stdout}`));
            resolve(run);
          });
        };
        const delay = o.startDelayMs?.(rank) ?? 0;
        if (delay > 0) setTimeout(launch, delay);
        else launch();
      }),
    );
  }
  const allReady = Promise.all(readies).then(() => undefined);
  allReady.catch(() => undefined);
  return {
    ranks,
    port,
    allReady,
    done: Promise.all(exits),
    kill(rank: number, signal: NodeJS.Signals = 'SIGKILL'): number {
      const r = ranks.find((x) => x.rank === rank);
      if (!r?.child) throw new Error(`rank ${rank} was not started`);
      r.child.kill(signal);
      return Date.now();
    },
  };
}

/** The error a rank reported in its last line, or undefined. */
export function errorOf(r: RankRun): { code: string; message: string } | undefined {
  return r.json?.error as { code: string; message: string } | undefined;
}

/** Every rank's output, for an assertion message. */
export function describeRuns(runs: readonly RankRun[]): string {
  return runs
    .map((r) => `--- rank ${r.rank}: exit ${r.code ?? r.signal}${r.hung ? ' (HUNG, killed)' : ''}\n${r.stderr.trim()}\n${r.stdout.trim().slice(-2000)}`)
    .join('\n');
}

/** What runRanks gives per rank. */
export type RankResult = RankRun;

export interface RunRanksOptions {
  size: number;
  script: string;
  args?: string[];
  env?: Record<string, string>;
  /** Per-rank extra environment. */
  rankEnv?: (rank: number) => Record<string, string>;
  /** Hard limit for the whole job; ranks still running are killed (and the test sees it). */
  killAfterMs?: number;
  ranks?: number[];
}

/** Starts the ranks of one job on localhost (rank 0 serves the rendezvous) and waits for all to exit. */
export async function runRanks(o: RunRanksOptions): Promise<RankResult[]> {
  const job = await startJob({
    size: o.size,
    script: o.script,
    args: o.args ?? [],
    ...(o.env ? { env: o.env } : {}),
    ...(o.rankEnv ? { rankEnv: o.rankEnv } : {}),
    ...(o.ranks ? { ranks: o.ranks } : {}),
    killAfterMs: o.killAfterMs ?? 60_000,
  });
  return job.done;
}

/** Fails with every rank's output when any rank did not exit 0. */
export function expectAllOk(results: RankResult[]): void {
  const bad = results.filter((r) => r.code !== 0);
  if (bad.length) {
    const detail = bad.map((r) => `rank ${r.rank} exit ${r.code} ${r.signal ?? ''}\n${r.stderr}\n${r.stdout}`).join('\n---\n');
    throw new Error(`ranks failed:\n${detail}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Ranks of a test/fixtures script that print `RESULT {json}` (the tfjs tests)
// ---------------------------------------------------------------------------------------------

export interface FixtureRun<T> {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Parsed `RESULT ` line, if the rank printed one. */
  result: T | undefined;
  stdout: string;
  stderr: string;
}

export interface FixtureOptions {
  args?: string[];
  env?: Record<string, string>;
  /** Kill every rank after this long. Default 60 s. */
  timeoutMs?: number;
}

/** Spawns `size` ranks of test/fixtures/<fixture> (with a job token and local ranks) and waits for all. */
export async function runFixtureRanks<T>(fixture: string, size: number, options: FixtureOptions = {}): Promise<FixtureRun<T>[]> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const env = {
    RINGTRAIN_LOCAL_SIZE: String(size),
    RINGTRAIN_TOKEN: randomBytes(16).toString('hex'),
    RINGTRAIN_TIMEOUT_MS: String(Math.min(timeoutMs, 30_000)),
    ...options.env,
  };
  const runs = await runRanks({
    size,
    script: path.join(FIXTURES, fixture),
    args: options.args ?? [],
    env,
    rankEnv: (rank) => ({ RINGTRAIN_LOCAL_RANK: String(rank), ...options.env }),
    killAfterMs: timeoutMs,
  });
  return runs.map((r) => {
    const line = r.stdout.split('\n').reverse().find((l) => l.startsWith('RESULT '));
    return { rank: r.rank, code: r.code, signal: r.signal, result: line ? (JSON.parse(line.slice(7)) as T) : undefined, stdout: r.stdout, stderr: r.stderr };
  });
}

/** Throws with every rank's output when a rank failed or printed no result; else the results. */
export function expectResults<T>(runs: FixtureRun<T>[]): T[] {
  const bad = runs.filter((r) => r.code !== 0 || r.result === undefined);
  if (bad.length > 0) {
    const detail = runs
      .map((r) => `--- rank ${r.rank} exit ${r.code ?? r.signal}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-3000)}`)
      .join('\n');
    throw new Error(`${bad.length} rank(s) failed:\n${detail}`);
  }
  return runs.map((r) => r.result as T);
}

// ---------------------------------------------------------------------------------------------
// The CLI and other commands
// ---------------------------------------------------------------------------------------------

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
  const w = watchProcess(process.execPath, [CLI, ...args], {
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
    killAfterMs: options.killAfterMs ?? 60_000,
  });
  const done = w.done.then((r) => ({ code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: (r.exitAt ?? Date.now()) - r.startAt }));
  return {
    child: w.child,
    done,
    stdout: () => w.stdout,
    waitForLines: (pattern, count, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        const check = (): boolean => w.stdout.split('\n').filter((l) => pattern.test(l)).length >= count;
        if (check()) return resolve();
        let waiting = true;
        const timer = setTimeout(() => {
          waiting = false;
          reject(new Error(`timed out waiting for ${count} lines matching ${pattern}; stdout so far:\n${w.stdout}\nstderr:\n${w.stderr}`));
        }, timeoutMs);
        w.onStdout(() => {
          if (!waiting || !check()) return;
          waiting = false;
          clearTimeout(timer);
          resolve();
        });
        void done.then(() => {
          if (waiting && !check()) {
            waiting = false;
            clearTimeout(timer);
            reject(new Error(`ringtrain exited before ${count} lines matching ${pattern}; stdout:\n${w.stdout}\nstderr:\n${w.stderr}`));
          }
        });
      }),
  };
}

export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  return startCli(args, options).done;
}

/** Runs any command to its end (killed after timeoutMs), collecting its output. */
export async function runCommand(
  cmd: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const w = await watchProcess(cmd, args, {
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    killAfterMs: options.timeoutMs,
  }).done;
  if (w.spawnError) return { code: null, stdout: w.stdout, stderr: `cannot run ${cmd}: ${w.spawnError.message}` };
  return { code: w.code, stdout: w.stdout, stderr: w.stderr };
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

// ---------------------------------------------------------------------------------------------
// An elastic job through the real launcher, followed line by line (the elastic tests): the ranks'
// READY/STEP/RESET/RESUMED/RESULT lines (examples/mnist-elastic.mjs --json) and the launcher's own
// messages, so a test can kill workers at chosen steps and check what happened.
// ---------------------------------------------------------------------------------------------

export interface Line {
  at: number;
  worker: number | undefined;
  kind: string;
  data: Record<string, unknown>;
  text: string;
}

export interface ElasticRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
  lines: Line[];
  output: string;
  /** The launcher was killed by the harness: a hang. */
  hung: boolean;
}

export interface ElasticJob {
  done: Promise<ElasticRun>;
  /** Resolves with the first line matching, or undefined when the job ended first. */
  waitFor(match: (l: Line) => boolean): Promise<Line | undefined>;
  /** kill -9 of a worker (by its READY pid); returns Date.now() of the kill. */
  kill(worker: number, signal?: NodeJS.Signals): number;
  lines: Line[];
}

const TAGGED = /^\[(\d+)\] (READY|START|STEP|RESET|ONRESET|RESUMED|RESULT) (\{.*\})$/;

export function startElasticJob(launcherArgs: string[], command: string[], env: Record<string, string> = {}, killAfterMs = 240_000): ElasticJob {
  const t0 = Date.now();
  const w = watchProcess(process.execPath, [CLI, ...launcherArgs, '--', ...command], { env: { ...process.env, ...env }, killAfterMs });
  const lines: Line[] = [];
  const watchers: { match: (l: Line) => boolean; resolve: (l: Line | undefined) => void }[] = [];
  let output = '';
  const feed = (stream: NodeJS.ReadableStream): void => {
    let buffered = '';
    stream.on('data', (chunk: string) => {
      output += chunk;
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const m = TAGGED.exec(text);
        let line: Line;
        if (m) {
          const data = JSON.parse(m[3]!) as Record<string, unknown>;
          line = { at: Date.now(), worker: Number(m[1]), kind: m[2]!, data, text };
        } else {
          line = { at: Date.now(), worker: undefined, kind: 'text', data: {}, text };
        }
        lines.push(line);
        for (const x of [...watchers]) {
          if (x.match(line)) {
            watchers.splice(watchers.indexOf(x), 1);
            x.resolve(line);
          }
        }
      }
    });
  };
  feed(w.child.stdout!);
  feed(w.child.stderr!);
  const done = w.done.then((r): ElasticRun => {
    for (const x of watchers.splice(0)) x.resolve(undefined);
    return { code: r.code, signal: r.signal, wallMs: Date.now() - t0, lines, output, hung: r.hung };
  });
  return {
    done,
    lines,
    waitFor(match) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => watchers.push({ match, resolve }));
    },
    kill(worker, signal = 'SIGKILL') {
      const ready = lines.find((l) => l.kind === 'READY' && l.worker === worker);
      if (!ready) throw new Error(`worker ${worker} has not said READY`);
      const at = Date.now();
      try {
        process.kill(Number(ready.data.pid), signal);
      } catch {
        // already gone
      }
      return at;
    },
  };
}

export function linesOf(run: ElasticRun, kind: string): Line[] {
  return run.lines.filter((l) => l.kind === kind);
}
