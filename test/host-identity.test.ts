/**
 * init() counts local ranks by host identity, not host name: a real two-rank job on one machine
 * whose ranks see different host names (one in a UTS namespace). The pure logic is in
 * test/unit/host-identity.test.ts.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasCommand, freePort, ROOT } from './helpers/processes.js';

/** Why a rank cannot be given its own host name here (unshare -u needs root), or undefined. */
function utsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'a UTS namespace (unshare -u) needs root';
  if (!hasCommand('unshare')) return 'unshare (util-linux) is not installed';
  return undefined;
}
const utsSkip = utsUnavailable() !== undefined && process.env.CI !== 'true';
if (utsSkip) console.warn(`skipping the host-name test of init(): ${utsUnavailable()}`);

describe.skipIf(utsSkip)('init() counts local ranks by machine, not host name', () => {
  it('two ranks on one machine, one of them in a UTS namespace with another host name, are local ranks 0 and 1 of 2', async () => {
    const why = utsUnavailable();
    if (why) throw new Error(`cannot run under CI: ${why}`);
    const port = await freePort();
    const fixture = path.join(ROOT, 'test/fixtures/launcher-allreduce.mjs');
    const results = await Promise.all(
      [0, 1].map(
        (rank) =>
          new Promise<{ code: number | null; out: string }>((resolve) => {
            const argv = rank === 1 ? ['unshare', '-u', 'sh', '-c', 'hostname rt-other-name && exec "$0" "$@"', process.execPath, fixture] : [process.execPath, fixture];
            const child = spawn(argv[0]!, argv.slice(1), {
              cwd: ROOT,
              env: { ...process.env, RINGTRAIN_RANK: String(rank), RINGTRAIN_SIZE: '2', RINGTRAIN_ADDR: `127.0.0.1:${port}`, RINGTRAIN_TIMEOUT_MS: '10000' },
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            let out = '';
            child.stdout.on('data', (d: Buffer) => (out += d.toString()));
            child.stderr.on('data', (d: Buffer) => (out += d.toString()));
            const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
            child.on('close', (code) => {
              clearTimeout(timer);
              resolve({ code, out });
            });
          }),
      ),
    );
    const reports = results.map((r, rank) => {
      expect(r.code, `rank ${rank}:\n${r.out}`).toBe(0);
      const line = r.out.split('\n').find((l) => l.startsWith('RESULT '))!;
      return JSON.parse(line.slice(7)) as { rank: number; localRank: number; localSize: number; hostnames: string[]; wrong: number };
    });
    expect(reports.map((r) => r.hostnames)).toEqual([
      [reports[0]!.hostnames[0], 'rt-other-name'],
      [reports[0]!.hostnames[0], 'rt-other-name'],
    ]);
    expect(reports.map((r) => [r.rank, r.localRank, r.localSize, r.wrong])).toEqual([
      [0, 0, 2, 0],
      [1, 1, 2, 0],
    ]);
  });
});
