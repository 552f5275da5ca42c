/**
 * Runs a fixture script as N real ranks on localhost (rank 0 serves the rendezvous) and collects
 * the JSON each rank prints on its last `RESULT ` line. Used by the test/tfjs-*.test.ts files.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..');
export const FIXTURES = path.join(here, 'fixtures');

export interface RankRun<T> {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Parsed `RESULT ` line, if the rank printed one. */
  result: T | undefined;
  stdout: string;
  stderr: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface RunOptions {
  args?: string[];
  env?: Record<string, string>;
  /** Kill every rank after this long. Default 60 s. */
  timeoutMs?: number;
}

/** Spawns `size` ranks of test/fixtures/<fixture> and waits for all of them to exit. */
export async function runRanks<T>(fixture: string, size: number, options: RunOptions = {}): Promise<RankRun<T>[]> {
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const script = path.join(FIXTURES, fixture);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const runs = Array.from({ length: size }, (_, rank) =>
    new Promise<RankRun<T>>((resolve) => {
      const child = spawn(process.execPath, [script, ...(options.args ?? [])], {
        cwd: REPO,
        env: {
          ...process.env,
          RINGTRAIN_RANK: String(rank),
          RINGTRAIN_SIZE: String(size),
          RINGTRAIN_LOCAL_RANK: String(rank),
          RINGTRAIN_LOCAL_SIZE: String(size),
          RINGTRAIN_ADDR: `127.0.0.1:${port}`,
          RINGTRAIN_TOKEN: token,
          RINGTRAIN_TIMEOUT_MS: String(Math.min(timeoutMs, 30_000)),
          ...options.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const line = stdout.split('\n').reverse().find((l) => l.startsWith('RESULT '));
        resolve({ rank, code, signal, result: line ? (JSON.parse(line.slice(7)) as T) : undefined, stdout, stderr });
      });
    }),
  );
  return Promise.all(runs);
}

/** Throws with every rank's output when a rank failed or printed no result. */
export function expectAllOk<T>(runs: RankRun<T>[]): T[] {
  const bad = runs.filter((r) => r.code !== 0 || r.result === undefined);
  if (bad.length > 0) {
    const detail = runs
      .map((r) => `--- rank ${r.rank} exit ${r.code ?? r.signal}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-3000)}`)
      .join('\n');
    throw new Error(`${bad.length} rank(s) failed:\n${detail}`);
  }
  return runs.map((r) => r.result as T);
}
