import { describe, expect, it } from 'vitest';
import { expectAllOk, runRanks } from './helpers/processes.js';

const DTYPES = ['float32', 'float64', 'int32', 'int8', 'uint8', 'int64', 'float16', 'bfloat16'];
const OPS = ['sum', 'avg', 'min', 'max', 'prod'];
// A 4 KiB pipeline segment makes "one segment ± 1" cheap to hit for every dtype.
const SEGMENT_BYTES = 4096;

function oddSizes(n: number, elemBytes: number): number[] {
  const seg = SEGMENT_BYTES / elemBytes;
  return [0, 1, n - 1, n + 1, 7, 97, 7919, seg - 1, seg + 1, seg * n + 3].filter((c, i, a) => c >= 0 && a.indexOf(c) === i);
}
const ELEM: Record<string, number> = { float32: 4, float64: 8, int32: 4, int8: 1, uint8: 1, int64: 8, float16: 2, bfloat16: 2 };

function casesFor(n: number) {
  const cases: { dtype: string; op: string; count: number; sync?: boolean }[] = [];
  for (const dtype of DTYPES) for (const op of OPS) for (const count of oddSizes(n, ELEM[dtype]!)) cases.push({ dtype, op, count });
  return cases;
}

interface Spec {
  allreduce?: unknown[];
  reducescatter?: unknown[];
  concurrent?: unknown[];
  broadcast?: unknown[];
  allgather?: unknown[];
  latecomers?: unknown;
  barrier?: number;
}

/** How many checks the worker makes for `spec` (collectives-worker.mjs counts one per `checked++`). */
function expectedChecks(size: number, spec: Spec): number {
  return (
    (spec.allreduce?.length ?? 0) +
    (spec.reducescatter?.length ?? 0) +
    (spec.concurrent ? 1 : 0) +
    size * (spec.broadcast?.length ?? 0) +
    (spec.allgather?.length ?? 0) +
    (spec.latecomers ? 1 : 0) +
    (spec.barrier ? 1 : 0)
  );
}

async function check(size: number, spec: Spec, env: Record<string, string> = {}) {
  const results = await runRanks({
    size,
    script: 'test/fixtures/collectives-worker.mjs',
    args: [JSON.stringify(spec)],
    env: { RINGTRAIN_SEGMENT_BYTES: String(SEGMENT_BYTES), ...env },
    killAfterMs: 120_000,
  });
  expectAllOk(results);
  for (const r of results) {
    expect(r.json?.failures, `rank ${r.rank}`).toEqual([]);
    // An empty or cut-short run cannot pass: every check the spec asks for was made.
    expect(r.json?.checked, `rank ${r.rank} checks`).toBe(expectedChecks(size, spec));
    expect(r.json?.size).toBe(size);
    expect(r.json?.rank).toBe(r.rank);
  }
  return results;
}

describe('reduce-scatter is exact', () => {
  for (const n of [2, 3, 5, 8]) {
    it(`gives each rank its share of the exact reduction for every dtype, op and odd size, incl. L < n and L = 0 (${n} ranks)`, async () => {
      const cases: { dtype: string; op: string; count: number }[] = [];
      for (const dtype of DTYPES) {
        for (const op of OPS) {
          for (const count of [0, 1, n - 1, n + 1, 97, 7919, (SEGMENT_BYTES / ELEM[dtype]!) * n + 3]) cases.push({ dtype, op, count });
        }
      }
      const results = await check(n, { reducescatter: cases });
      expect(results[0]!.json?.checked).toBe(cases.length);
    }, 180_000);
  }
});

describe('all-reduce is exact', () => {
  // Messages up to RINGTRAIN_SMALL_BYTES take recursive doubling, larger ones the ring: check both
  // algorithms on the same cases (0 forces the ring for every size).
  for (const [algorithm, smallBytes] of [['ring', '0'], ['recursive doubling', String(1 << 20)]] as const) {
    for (const n of [2, 3, 4, 5, 8]) {
      it(`matches the exact result for every dtype, op and odd size on ${n} ranks (${algorithm})`, async () => {
        const results = await check(n, { allreduce: casesFor(n) }, { RINGTRAIN_SMALL_BYTES: smallBytes });
        expect(results[0]!.json?.checked).toBe(casesFor(n).length);
      }, 180_000);
    }
  }

  it('is exact on 64 MiB buffers with the default segment size (4 ranks, float32 sum and avg, int32 max)', async () => {
    const count = (64 << 20) / 4;
    await check(
      4,
      { allreduce: [{ dtype: 'float32', op: 'sum', count }, { dtype: 'float32', op: 'avg', count: count + 1 }, { dtype: 'int32', op: 'max', count }] },
      { RINGTRAIN_SEGMENT_BYTES: '' },
    );
  }, 180_000);

  for (const dtype of DTYPES) {
    it(`is exact on 64 MiB buffers of ${dtype} for every op (2 ranks)`, async () => {
      await check(2, { allreduce: OPS.map((op) => ({ dtype, op, count: (64 << 20) / ELEM[dtype]! })) }, { RINGTRAIN_SEGMENT_BYTES: '' });
    }, 180_000);
  }

  it('allreduceSync gives the same exact results as allreduce', async () => {
    await check(3, { allreduce: [1, 1000, 99991].map((count) => ({ dtype: 'float32', op: 'sum', count, sync: true })) });
  }, 60_000);
});

describe('ordering, broadcast, allgather, barrier', () => {
  it('completes many concurrent calls of different sizes correctly and in issue order', async () => {
    await check(4, { concurrent: [1, 100000, 3, 0, 77777, 5, 262145, 2, 9, 40000, 1, 123457] });
  }, 60_000);

  it('broadcasts from every root to every rank', async () => {
    await check(5, { broadcast: [0, 1, 4, 1025, 100003] });
  }, 60_000);

  it('gathers every rank\'s block in rank order', async () => {
    await check(4, { allgather: [0, 1, 3, 1025, 50001] });
  }, 60_000);

  it.each([3, 4, 5])('lets no rank leave a barrier before the last one entered (%i ranks)', async (n) => {
    const results = await check(n, { barrier: 1500 });
    const rank0 = results.find((r) => r.rank === 0)!;
    for (const r of results) {
      if (r.rank === 0) continue;
      // They entered ~1.5 s before rank 0 did, so they must have waited for it.
      expect(r.json?.barrierWaitMs as number).toBeGreaterThan(1000);
      expect(r.json?.barrierLeftAt as number).toBeGreaterThanOrEqual((rank0.json?.barrierLeftAt as number) - 1000);
    }
  }, 60_000);

  it.each([3, 4])('stays exact when a different rank arrives late to each of a mix of direct-link and ring collectives (%i ranks)', async (n) => {
    // Waiting ranks announce their small calls on the ring links after 20 ms; announcements of calls
    // a neighbour has already finished must be skipped by whatever collective it runs next.
    const results = await check(n, { latecomers: { calls: 80, seed: 1234 + n, maxLateMs: 60 } });
    const kinds = results[0]!.json?.kinds as Record<string, number>;
    for (const kind of ['small', 'barrier', 'large', 'broadcast', 'allgather']) expect(kinds[kind], kind).toBeGreaterThan(3);
  }, 60_000);

  it('runs a world of one without a rendezvous', async () => {
    await check(1, { allreduce: [{ dtype: 'float32', op: 'avg', count: 5 }], broadcast: [3], allgather: [2], barrier: 1 }, { RINGTRAIN_ADDR: '' });
  }, 30_000);
});
