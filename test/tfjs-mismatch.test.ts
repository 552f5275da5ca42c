// Ranks whose models (or gradient options) differ must all fail with a clear
// ERR_RINGTRAIN_MISMATCH naming the difference, instead of hanging or reducing garbage.
import { describe, expect, it } from 'vitest';
import { expectResults, runFixtureRanks } from './helpers/processes.js';

interface Result {
  rank: number;
  ok: boolean;
  code?: string;
  message?: string;
  probe: number;
}

async function run(what: string, size = 2): Promise<Result[]> {
  return expectResults(await runFixtureRanks<Result>('tfjs-mismatch.mjs', size, { args: [what], timeoutMs: 60_000 }));
}

function expectMismatchEverywhere(results: Result[], pattern: RegExp): void {
  for (const r of results) {
    expect(r.ok, `rank ${r.rank}`).toBe(false);
    expect(r.code, `rank ${r.rank}: ${r.message}`).toBe('ERR_RINGTRAIN_MISMATCH');
    expect(r.message).toMatch(/differ between ranks/);
    expect(r.message).toMatch(pattern);
    // The ring is still usable afterwards: 1 + 2 (+ 3).
    expect(r.probe).toBe((results.length * (results.length + 1)) / 2);
  }
}

describe('mismatched models between ranks', () => {
  it('model.fit with different layer sizes fails on every rank, naming the ranks and sizes', async () => {
    const results = await run('fit', 3);
    // Ranks 0 and 2 agree with each other; rank 1 is the odd one out.
    expectMismatchEverywhere(results, /ranks 0,2: 4 tensors, 83 elements.*rank 1: 4 tensors, 93 elements/);
  }, 70_000);

  it('same tensor and element counts but different shapes are caught too', async () => {
    expectMismatchEverywhere(await run('shape'), /2 tensors, 36 elements/);
  }, 70_000);

  it('different compression settings are caught', async () => {
    expectMismatchEverywhere(await run('fp16'), /compression/);
  }, 70_000);

  it('broadcastModel and averageModel refuse different architectures', async () => {
    expectMismatchEverywhere(await run('broadcast'), /broadcastModel.*weights/);
    expectMismatchEverywhere(await run('average'), /averageModel.*weights/);
  }, 70_000);
});
