/**
 * Starts the ranks of one job as real processes (optionally each inside a network namespace) and
 * follows them: when each printed READY, when each exited and how, and what it printed. The
 * reliability tests use it to kill ranks at chosen moments and time how fast the others notice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT, freePort } from './helpers/ranks.js';

export const WORKER = 'test/fixtures/reliability-worker.mjs';

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
          const node = [process.execPath, ...(o.nodeFlags ?? []), path.resolve(ROOT, WORKER), ...o.args];
          const ns = o.netns?.(rank);
          const [cmd, ...args] = ns ? ['ip', 'netns', 'exec', ns, ...node] : node;
          const child = spawn(cmd!, args, {
            cwd: ROOT,
            env: {
              ...process.env,
              RINGTRAIN_RANK: String(rank),
              RINGTRAIN_SIZE: String(o.size),
              RINGTRAIN_ADDR: `${o.addrHost ?? '127.0.0.1'}:${port}`,
              RINGTRAIN_TIMEOUT_MS: '10000',
              ...o.env,
              ...o.rankEnv?.(rank),
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          run.child = child;
          child.stdout!.setEncoding('utf8').on('data', (d: string) => {
            run.stdout += d;
            if (run.readyAt === undefined && /^READY /m.test(run.stdout)) {
              run.readyAt = Date.now();
              markReady();
            }
          });
          child.stderr!.setEncoding('utf8').on('data', (d: string) => {
            run.stderr += d;
            run.stderrChunks.push({ at: Date.now(), text: d });
          });
          const timer = setTimeout(() => {
            run.hung = true;
            child.kill('SIGKILL');
          }, o.killAfterMs);
          child.on('close', (code, signal) => {
            clearTimeout(timer);
            run.exitAt = Date.now();
            run.code = code;
            run.signal = signal;
            const last = run.stdout.trim().split('\n').pop() ?? '';
            try {
              run.json = JSON.parse(last) as Record<string, unknown>;
            } catch {
              run.json = undefined;
            }
            failReady(new Error(`rank ${rank} exited (${code ?? signal}) before READY:\n${run.stderr}\n${run.stdout}`));
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
