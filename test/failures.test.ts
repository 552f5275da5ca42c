import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT, freePort, runRanks, type RankResult } from './helpers/processes.js';

const FIXTURE = 'test/fixtures/fault-worker.mjs';

function errorsOf(results: RankResult[]): { rank: number; code: string; message: string }[] {
  return results.map((r) => {
    const e = r.json?.error as { code: string; message: string } | undefined;
    if (!e) throw new Error(`rank ${r.rank} reported no error:\n${r.stdout}\n${r.stderr}`);
    return { rank: r.rank, ...e };
  });
}

describe('mismatched calls are detected on every rank, never a wrong result or a hang', () => {
  const cases: [string, RegExp][] = [
    ['mismatch-length', /1000 x float32, sum\).*1001 x float32, sum\)|1001 x float32, sum\).*1000 x float32, sum\)/],
    ['mismatch-dtype', /1000 x float32, sum\).*1000 x float64, sum\)|1000 x float64, sum\).*1000 x float32, sum\)/],
    ['mismatch-op', /1000 x float32, sum\).*1000 x float32, max\)|1000 x float32, max\).*1000 x float32, sum\)/],
    ['mismatch-kind', /broadcast #1.*allreduce #1|allreduce #1.*broadcast #1/],
  ];
  for (const [scenario, both] of cases) for (const [algorithm, smallBytes] of [['ring', '0'], ['recursive doubling', '65536']]) {
    it(`${scenario} (${algorithm}): all ranks fail, each message states both sides`, async () => {
      const results = await runRanks({
        size: algorithm === 'ring' ? 4 : 5,
        script: FIXTURE,
        args: [scenario],
        env: { RINGTRAIN_TIMEOUT_MS: '5000', RINGTRAIN_SMALL_BYTES: smallBytes },
        killAfterMs: 20_000,
      });
      for (const r of results) {
        expect(r.signal, `rank ${r.rank} was killed (hang)`).toBeNull();
        expect(r.code).toBe(1);
      }
      for (const e of errorsOf(results)) {
        expect(e.message).toMatch(/mismatched collectives/);
        expect(e.message).toMatch(both);
        expect(['ERR_RINGTRAIN_MISMATCH', 'ERR_RINGTRAIN_PEER']).toContain(e.code);
      }
    }, 30_000);
  }

  it('a rank that skips a call and closes makes the others fail naming it, without waiting for the timeout', async () => {
    const results = await runRanks({ size: 4, script: FIXTURE, args: ['missing-call'], env: { RINGTRAIN_TIMEOUT_MS: '30000' }, killAfterMs: 20_000 });
    const others = results.filter((r) => r.rank !== 1);
    for (const r of others) {
      expect(r.code).toBe(1);
      expect(r.ms).toBeLessThan(10_000);
      expect((r.json?.error as { message: string }).message).toMatch(/rank 1 .*different numbers of collectives/);
    }
  }, 30_000);
});

describe('dead and silent peers', () => {
  it('kill -9 of one rank mid-stream: every other rank fails within seconds naming the dead rank', async () => {
    const results = await runRanks({
      size: 4,
      script: FIXTURE,
      args: ['die'],
      env: { RINGTRAIN_TIMEOUT_MS: '5000', VICTIM: '2', DIE_AFTER: '7', COUNT: '300001' },
      killAfterMs: 30_000,
    });
    expect(results.find((r) => r.rank === 2)!.signal).toBe('SIGKILL');
    for (const r of results.filter((x) => x.rank !== 2)) {
      expect(r.code, r.stderr).toBe(1);
      const e = r.json?.error as { code: string; message: string };
      expect(e.code).toBe('ERR_RINGTRAIN_PEER');
      expect(e.message).toMatch(/rank 2 \(.*\) died or closed its connection/);
    }
  }, 40_000);

  it('a rank late by more than the timeout: the others fail naming it, within timeout + 2 s', async () => {
    const results = await runRanks({
      size: 4,
      script: FIXTURE,
      args: ['stall'],
      env: { RINGTRAIN_TIMEOUT_MS: '1500', STALL_MS: '6000' },
      killAfterMs: 30_000,
    });
    for (const r of results.filter((x) => x.rank !== 1)) {
      expect(r.code).toBe(1);
      const e = r.json?.error as { code: string; message: string };
      expect(e.message).toMatch(/rank 1 \(.*\) did not start allreduce #1/);
      expect(r.ms).toBeLessThan(1500 + 2000 + 2500); // + process start-up and rendezvous
    }
  }, 40_000);

  it('prints a stall warning naming the late rank and the call, and still completes', async () => {
    const results = await runRanks({
      size: 3,
      script: FIXTURE,
      args: ['stall'],
      env: { RINGTRAIN_TIMEOUT_MS: '20000', RINGTRAIN_STALL_WARNING_MS: '400', STALL_MS: '1500' },
    });
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const warned = results.find((r) => r.rank === 2)!;
    expect(warned.stderr).toMatch(/stall: rank 2 has waited .* in allreduce #1 \(10 x float32, sum\) for rank 1 /);
  }, 30_000);

  it('after a failure the communicator is closed and later calls reject at once', async () => {
    const results = await runRanks({ size: 3, script: FIXTURE, args: ['after-failure'], env: { RINGTRAIN_TIMEOUT_MS: '5000' } });
    for (const r of results) {
      expect(r.json?.closed).toBe(true);
      const second = r.json?.second as { code: string; message: string };
      expect(second.code).toBe('ERR_RINGTRAIN_CLOSED');
      expect(second.message).toMatch(/closed after an earlier failure: mismatched collectives/);
    }
  }, 30_000);

  it('allreduceSync follows the same rule: a failure found while the call ran closes the communicator', async () => {
    const results = await runRanks({ size: 3, script: FIXTURE, args: ['after-failure-sync'], env: { RINGTRAIN_TIMEOUT_MS: '5000' } });
    for (const r of results) {
      // The rank that detects the mismatch reports it; a neighbour may first meet the abort.
      expect(r.json?.first, r.stderr).toMatch(/^ERR_RINGTRAIN_(MISMATCH|PEER)$/);
      expect(r.json?.closedAfterFirst).toBe(true);
      expect(r.json?.closed).toBe(true);
      const second = r.json?.second as { code: string; message: string };
      expect(second.code).toBe('ERR_RINGTRAIN_CLOSED');
      expect(second.message).toMatch(/closed after an earlier failure: .*mismatched collectives/);
    }
  }, 30_000);
});

describe('bad input and process exit', () => {
  it('an unreachable rendezvous is a timeout error, not a hang', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const results = await runRanks({
      size: 2,
      ranks: [1],
      script: FIXTURE,
      args: ['stream'],
      env: { RINGTRAIN_ADDR: `127.0.0.1:${port}`, RINGTRAIN_TIMEOUT_MS: '1500' },
    });
    const e = errorsOf(results)[0]!;
    expect(e.code).toBe('ERR_RINGTRAIN_TIMEOUT');
    expect(e.message).toMatch(/could not reach the rendezvous at 127\.0\.0\.1:\d+ within 1\.5s/);
    expect(Date.now() - t0).toBeLessThan(6000);
  });

  it('ranks with different job-wide settings (RINGTRAIN_SMALL_BYTES) all fail at the rendezvous naming the rank and the setting', async () => {
    const results = await runRanks({
      size: 2,
      script: FIXTURE,
      args: ['stream'],
      rankEnv: (rank) => ({ RINGTRAIN_SMALL_BYTES: rank === 1 ? '64K' : '' }),
      killAfterMs: 20_000,
    });
    for (const e of errorsOf(results)) {
      expect(e.code).toBe('ERR_RINGTRAIN_MISMATCH');
      expect(e.message).toMatch(/job-wide setting smallBytes \(RINGTRAIN_SMALL_BYTES\) differs between ranks: rank 1 has 65536, rank 0 has 32768/);
    }
    expect(results.map((r) => r.code)).toEqual([1, 1]);
  }, 30_000);

  // The contract cases themselves are unit tests (test/unit/contract.test.ts); this one checks the
  // process side: init rejects, the script reports the code and exits 1.
  it('a wrong rank contract makes init reject with ERR_RINGTRAIN_CONTRACT and the process exit 1', () => {
    const r = spawnSync(process.execPath, [FIXTURE, 'stream'], {
      cwd: ROOT,
      env: { ...process.env, RINGTRAIN_ADDR: '127.0.0.1:1', RINGTRAIN_RANK: '5', RINGTRAIN_SIZE: '4' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(r.status).toBe(1);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { error: { code: string; message: string } };
    expect(out.error.code).toBe('ERR_RINGTRAIN_CONTRACT');
    expect(out.error.message).toMatch(/rank 5 is out of range for a world of size 4/);
  });

  it('a process that never calls close() still exits promptly', async () => {
    const results = await runRanks({ size: 4, script: FIXTURE, args: ['no-close'], killAfterMs: 15_000 });
    for (const r of results) {
      expect(r.signal, 'hung at exit').toBeNull();
      expect(r.code).toBe(0);
      expect(r.json?.ok).toBe(true);
      expect(r.ms).toBeLessThan(8000);
    }
  }, 30_000);
});
