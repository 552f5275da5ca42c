/**
 * Soak: 20,000 small and 200 large (4 MiB) all-reduces in one 3-rank job, every result checked.
 * RSS (after a forced GC) may grow by less than 5 MB between the end of a warm-up tenth and the
 * end; the number of open file descriptors must not change at all; after close() no socket the
 * job opened is left. Each rank prints its numbers; the test prints them for the reviewer.
 */
import { describe, expect, it } from 'vitest';
import { describeRuns, startJob } from './helpers/processes.js';

const SMALL = Number(process.env.RELIABILITY_SOAK_SMALL ?? 20_000);
const LARGE = Number(process.env.RELIABILITY_SOAK_LARGE ?? 200);
const MB = 1024 * 1024;

describe('soak', () => {
  it(`${SMALL} small and ${LARGE} large all-reduces on 3 ranks: exact, RSS drift under 5 MB, no fd leak`, async () => {
    const job = await startJob({
      size: 3,
      args: ['soak'],
      nodeFlags: ['--expose-gc'],
      env: { SMALL: String(SMALL), LARGE: String(LARGE), SMALL_COUNT: '64', LARGE_COUNT: String(1 << 20), RINGTRAIN_TIMEOUT_MS: '30000' },
      killAfterMs: 170_000,
    });
    const runs = await job.done;
    const detail = describeRuns(runs);
    const rows = runs.map((r) => {
      const j = r.json ?? {};
      const n = (k: string): number => Number(j[k]);
      return {
        rank: r.rank,
        calls: n('calls'),
        wrong: n('wrong'),
        soakSeconds: Math.round(n('soakMs') / 100) / 10,
        rssWarmMB: Math.round((n('rssWarm') / MB) * 10) / 10,
        rssEndMB: Math.round((n('rssEnd') / MB) * 10) / 10,
        rssDriftMB: Math.round(((n('rssEnd') - n('rssWarm')) / MB) * 100) / 100,
        fdsWarm: n('fdsWarm'),
        fdsEnd: n('fdsEnd'),
        socketsAtStart: n('socketsAtStart'),
        socketsInJob: n('socketsWarm'),
        socketsAfterClose: n('socketsAfterClose'),
      };
    });
    console.log(`soak (${SMALL} small + ${LARGE} large, 3 ranks):\n${rows.map((r) => '  ' + JSON.stringify(r)).join('\n')}`);
    for (const r of runs) expect(r.code, detail).toBe(0);
    for (const row of rows) {
      expect(row.calls, detail).toBe(SMALL + LARGE);
      expect(row.wrong, detail).toBe(0);
      expect(row.rssDriftMB, `rank ${row.rank} RSS grew ${row.rssDriftMB} MB`).toBeLessThan(5);
      // No growth. The count may fall by the one or two set-up sockets (rendezvous, connector)
      // whose close was still under way when the warm-up sample was taken.
      expect(row.fdsEnd, `rank ${row.rank} fds`).toBeLessThanOrEqual(row.fdsWarm);
      expect(row.fdsEnd, `rank ${row.rank} fds`).toBeGreaterThanOrEqual(row.fdsWarm - 3);
      // close() releases every socket the job opened (ring links; the rendezvous ones went earlier).
      expect(row.socketsInJob).toBeGreaterThan(row.socketsAtStart);
      expect(row.socketsAfterClose, `rank ${row.rank} sockets left open after close()`).toBe(row.socketsAtStart);
    }
  }, 180_000);
});
