/**
 * Running under existing engines, no ringtrain launcher: a script started by Open MPI's mpirun, or by
 * hand with torchrun-style variables, reads its rank from them, rank 0 serves the rendezvous, and
 * the all-reduce is exact. mpirun comes from Debian's openmpi-bin; in CI (CI=true) it must be there,
 * elsewhere its test is skipped, saying why.
 */
import { describe, expect, it } from 'vitest';
import { hasCommand, runCommand, freePort } from './helpers/processes.js';

const ALLREDUCE = 'test/fixtures/launcher-allreduce.mjs';

interface Result {
  rank: number;
  size: number;
  localRank: number;
  localSize: number;
  wrong: number;
  gathered: number[];
}

const skipMpirun = !hasCommand('mpirun') && process.env.CI !== 'true';
if (skipMpirun) console.warn('skipping the mpirun test: mpirun is not installed (apt-get install -y openmpi-bin)');

/** The environment without any rank contract of the test runner's own. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (/^(RINGTRAIN_|OMPI_|PMIX_|SLURM_)/.test(k) || ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'].includes(k)) delete env[k];
  }
  return env;
}

/** Ranks 0..3 of one host, each with an exact all-reduce and all-gather. */
function expectFourLocalRanksExact(res: Result[]): void {
  expect(res.map((x) => [x.rank, x.size, x.localRank, x.localSize])).toEqual([
    [0, 4, 0, 4],
    [1, 4, 1, 4],
    [2, 4, 2, 4],
    [3, 4, 3, 4],
  ]);
  for (const x of res) {
    expect(x.wrong).toBe(0);
    expect(x.gathered).toEqual([0, 1, 2, 3]);
  }
}

function results(stdout: string): Result[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('RESULT '))
    .map((l) => JSON.parse(l.slice('RESULT '.length)) as Result)
    .sort((a, b) => a.rank - b.rank);
}

describe('running under existing engines', () => {
  it.skipIf(skipMpirun)('a script started by `mpirun -np 4` with RINGTRAIN_ADDR exported works unchanged', async () => {
    const port = await freePort();
    const args = ['-np', '4', '-x', `RINGTRAIN_ADDR=127.0.0.1:${port}`, '-x', 'RINGTRAIN_TOKEN=mpi-job-secret', '-x', 'RINGTRAIN_TIMEOUT_MS=20000', 'node', ALLREDUCE];
    // Open MPI refuses root unless told, and counts this machine's cores as its only slots.
    const asRoot = process.getuid?.() === 0 ? ['--allow-run-as-root'] : [];
    const r = await runCommand('mpirun', [...asRoot, '--oversubscribe', ...args], { env: cleanEnv(), timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const res = results(r.stdout);
    expectFourLocalRanksExact(res);
  });

  it('processes started by hand with torchrun-style RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT work unchanged', async () => {
    const port = await freePort();
    const size = 4;
    const runs = await Promise.all(
      Array.from({ length: size }, (_, rank) =>
        runCommand(process.execPath, [ALLREDUCE], {
          env: {
            ...cleanEnv(),
            RANK: String(rank),
            WORLD_SIZE: String(size),
            LOCAL_RANK: String(rank),
            LOCAL_WORLD_SIZE: String(size),
            MASTER_ADDR: '127.0.0.1',
            MASTER_PORT: String(port),
            RINGTRAIN_TIMEOUT_MS: '20000',
          },
          timeoutMs: 60_000,
        }),
      ),
    );
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const res = results(runs.map((r) => r.stdout).join('\n'));
    expectFourLocalRanksExact(res);
  });
});
