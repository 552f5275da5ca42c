/** Starts N real processes as the ranks of one job on localhost, and collects what they print. */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface RankResult {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The last stdout line parsed as JSON, when there is one. */
  json: Record<string, unknown> | undefined;
  ms: number;
}

/** A port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

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

export async function runRanks(o: RunRanksOptions): Promise<RankResult[]> {
  const port = await freePort();
  const ranks = o.ranks ?? Array.from({ length: o.size }, (_, r) => r);
  return Promise.all(
    ranks.map(
      (rank) =>
        new Promise<RankResult>((resolve) => {
          const start = Date.now();
          const child = spawn(process.execPath, [path.resolve(ROOT, o.script), ...(o.args ?? [])], {
            cwd: ROOT,
            env: {
              ...process.env,
              RINGTRAIN_RANK: String(rank),
              RINGTRAIN_SIZE: String(o.size),
              RINGTRAIN_ADDR: `127.0.0.1:${port}`,
              RINGTRAIN_TIMEOUT_MS: '10000',
              ...o.env,
              ...o.rankEnv?.(rank),
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          const timer = setTimeout(() => child.kill('SIGKILL'), o.killAfterMs ?? 60_000);
          child.on('close', (code, signal) => {
            clearTimeout(timer);
            const last = stdout.trim().split('\n').pop() ?? '';
            let json: Record<string, unknown> | undefined;
            try {
              json = JSON.parse(last) as Record<string, unknown>;
            } catch {
              json = undefined;
            }
            resolve({ rank, code, signal, stdout, stderr, json, ms: Date.now() - start });
          });
        }),
    ),
  );
}

/** Fails with every rank's output when any rank did not exit 0. */
export function expectAllOk(results: RankResult[]): void {
  const bad = results.filter((r) => r.code !== 0);
  if (bad.length) {
    const detail = bad.map((r) => `rank ${r.rank} exit ${r.code} ${r.signal ?? ''}\n${r.stderr}\n${r.stdout}`).join('\n---\n');
    throw new Error(`ranks failed:\n${detail}`);
  }
}
