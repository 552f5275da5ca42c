import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/processes.js';

interface TraceEvent {
  name: string;
  ph: string;
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: Record<string, string | number>;
}

describe('timeline', () => {
  it('--timeline writes one Chrome trace with every rank, each collective and its phases', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-timeline-'));
    const file = path.join(dir, 'trace.json');
    const r = spawnSync(process.execPath, ['dist/cli.js', '-np', '3', '--timeline', file, '--', process.execPath, 'test/fixtures/timeline-worker.mjs'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/timeline of 3 rank\(s\) written to/);
    const trace = JSON.parse(fs.readFileSync(file, 'utf8')) as { traceEvents: TraceEvent[] };
    const events = trace.traceEvents;
    // The per-rank files were only a hand-over: gone once merged.
    expect(fs.readdirSync(dir).sort()).toEqual(['trace.json']);
    for (const rank of [0, 1, 2]) {
      const mine = events.filter((e) => e.pid === rank && e.ph === 'X');
      const names = new Set(mine.map((e) => e.name));
      for (const n of ['allreduce', 'broadcast', 'barrier', 'queue', 'wait for peers', 'reduce-scatter', 'all-gather', 'user work']) {
        expect(names, `rank ${rank} lacks '${n}'`).toContain(n);
      }
      // Names carry no sequence numbers (Perfetto groups slices by name); the number is in args.
      expect([...names].filter((n) => /\d/.test(n))).toEqual([]);
      const collectives = mine.filter((e) => ['allreduce', 'broadcast', 'barrier'].includes(e.name));
      expect(collectives.map((e) => e.args?.seq)).toEqual([1, 2, 3, 4, 1]);
      expect(collectives.map((e) => e.name)).toEqual(['allreduce', 'allreduce', 'broadcast', 'barrier', 'allreduce']);
      // The process's second init(): its own seq count, told apart by args.communicator.
      expect(collectives.map((e) => e.args?.communicator)).toEqual([0, 0, 0, 0, 1]);
      // Phases nest inside their collective.
      const big = mine.find((e) => e.name === 'allreduce' && e.args?.seq === 1)!;
      const rs = mine.find((e) => e.name === 'reduce-scatter' && e.ts >= big.ts && e.ts <= big.ts + big.dur!)!;
      expect(rs.ts + rs.dur!).toBeLessThanOrEqual(big.ts + big.dur! + 1);
      const user = mine.find((e) => e.name === 'user work')!;
      expect(user.ts).toBeLessThanOrEqual(big.ts);
    }
    expect(events.filter((e) => e.ph === 'M').map((e) => e.pid).sort()).toEqual([0, 1, 2]);
  }, 90_000);
});
