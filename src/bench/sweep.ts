/**
 * The nccl-tests sweep, for any collective: for each size, one checked call outside the timed
 * loop, warm-up calls, then timed calls; the slowest rank's mean time is the row's time.
 * algbw = bytes / time and busbw = algbw * the collective's factor.
 */
import { DeviceBuffer } from '../device.js';
import type { Communicator, Dtype, ReduceOp } from '../types.js';
import { reduceInput, reducedValue, type Collective, type CollectiveCase, type CollectiveName } from './collectives.js';
import { pingPong } from './ping-pong.js';
import { ELEMENT_BYTES, countWrong, fillWith, makeView } from './values.js';

export interface BenchOptions {
  minBytes: number;
  maxBytes: number;
  stepFactor: number;
  /** Timed iterations per size (at least; see minTimeMs). */
  iters: number;
  /** Untimed iterations per size before the timed ones. */
  warmup: number;
  /**
   * Small messages are repeated until the timed loop lasts about this long (0: exactly `iters`), so
   * one scheduler hiccup cannot dominate a mean of microsecond calls. The count is estimated from the
   * warm-up iterations and agreed by all ranks.
   */
  minTimeMs: number;
  /** Untimed small all-reduces before the sweep, so the first size is not measured cold (JIT, links). */
  startupWarmupMs: number;
  check: boolean;
  dtype: Dtype;
  op: ReduceOp;
  /** 'sync': each call blocks until done (like MPI_Allreduce), where the core has a blocking form; 'async': await one promise at a time. */
  mode: 'sync' | 'async';
  /** Where the buffers live: host memory, or GPU memory (allreduceDevice; needs a CUDA build and a GPU). */
  device: 'cpu' | 'cuda';
}

export interface BenchRow {
  collective: CollectiveName;
  /** The size column: bytes of the buffer Collective.sizeMeans names. */
  bytes: number;
  count: number;
  dtype: Dtype;
  /** The reduction, or 'none' for collectives that do not reduce. */
  op: ReduceOp | 'none';
  /** The root rank, or -1 where there is none (as nccl-tests prints it). */
  root: number;
  timeUs: number;
  /** null for the barrier, which moves no data. */
  algbwGBps: number | null;
  busbwGBps: number | null;
  /** Wrong elements summed over ranks; null when the check is off. */
  errors: number | null;
  /** sendrecv only (else null): osu_latency and osu_bw between ranks 0 and 1 at this size. */
  latencyUs: number | null;
  p2pBwGBps: number | null;
}

/** Where a sweep is, for the progress line. */
export interface SweepPosition {
  collective: CollectiveName;
  bytes: number;
  /** 1-based index of this size, and how many sizes the sweep has. */
  index: number;
  total: number;
}

/** Upper bound of the iterations minTimeMs may ask for (a 1 µs call would otherwise ask for 10^5+). */
const MAX_ITERS = 100_000;

export function sizesToRun(o: Pick<BenchOptions, 'minBytes' | 'maxBytes' | 'stepFactor'>): number[] {
  const out: number[] = [];
  for (let b = o.minBytes; b <= o.maxBytes; b = Math.max(b + 1, Math.floor(b * o.stepFactor))) {
    out.push(b);
    if (o.stepFactor <= 1) break;
  }
  return out;
}

/** algbw and busbw in GB/s (10^9 bytes) for a size and a time in µs, nccl-tests style. */
export function bandwidths(c: Collective, bytes: number, timeUs: number, n: number): { algbw: number | null; busbw: number | null } {
  if (!c.sized) return { algbw: null, busbw: null };
  const algbw = timeUs > 0 ? bytes / timeUs / 1e3 : 0;
  return { algbw, busbw: algbw * c.busbwFactor(n) };
}

/** Untimed small all-reduces until the slowest rank has spent `ms` (every rank sees the same maximum, so all stop together). */
export async function startupWarmup(comm: Communicator, dtype: Dtype, ms: number): Promise<void> {
  if (ms <= 0 || comm.size < 2) return;
  const tiny = makeView(dtype, 1);
  const spent = new Float64Array(1);
  const t0 = performance.now();
  do {
    for (let i = 0; i < 100; i++) comm.allreduceSync(tiny, { dtype });
    spent[0] = performance.now() - t0;
    await comm.allreduce(spent, { op: 'max' });
  } while (spent[0]! < ms);
}

/** The --device cuda case: an all-reduce of GPU memory, checked through a host copy. */
function deviceAllreduceCase(comm: Communicator, o: BenchOptions, count: number): { c: CollectiveCase; free: () => void } {
  const host = makeView(o.dtype, count);
  const device = new DeviceBuffer(Math.max(1, count * ELEMENT_BYTES[o.dtype]));
  return {
    c: {
      fill: () => {
        fillWith(host, o.dtype, (i) => reduceInput(o.op, comm.rank, i));
        device.upload(host);
      },
      run: () => comm.allreduceDevice(device.ptr, count, o.dtype, o.op),
      wrong: () => {
        device.download(host);
        return countWrong(host, o.dtype, (i) => reducedValue(o.op, o.dtype, comm.size, i));
      },
    },
    free: () => device.free(),
  };
}

export async function runSweep(
  comm: Communicator,
  collective: Collective,
  o: BenchOptions,
  hooks: { onRow?: (row: BenchRow) => void; onSize?: (at: SweepPosition) => void } = {},
): Promise<BenchRow[]> {
  const elem = ELEMENT_BYTES[o.dtype];
  const n = comm.size;
  const rows: BenchRow[] = [];
  const sizes = collective.sized ? sizesToRun(o) : [0];
  for (const [k, requested] of sizes.entries()) {
    const count = collective.elements(requested, elem, n);
    hooks.onSize?.({ collective: collective.name, bytes: count * elem, index: k + 1, total: sizes.length });
    const { c, free } =
      o.device === 'cuda'
        ? deviceAllreduceCase(comm, o, count)
        : { c: collective.setup({ comm, dtype: o.dtype, op: o.op, elements: count }), free: () => undefined };
    try {
      rows.push(await measure(comm, collective, c, o, count));
    } finally {
      free();
    }
    hooks.onRow?.(rows[rows.length - 1]!);
  }
  return rows;
}

async function measure(comm: Communicator, collective: Collective, c: CollectiveCase, o: BenchOptions, count: number): Promise<BenchRow> {
  let errors = 0;
  if (o.check) {
    c.fill();
    await c.run();
    errors = c.wrong();
  }
  const w0 = performance.now();
  for (let i = 0; i < o.warmup; i++) await c.run();
  let iters = o.iters;
  if (o.minTimeMs > 0 && o.warmup > 0) {
    const perCall = new Float64Array([(performance.now() - w0) / o.warmup]);
    await comm.allreduce(perCall, { op: 'max' });
    iters = Math.max(o.iters, Math.min(MAX_ITERS, Math.ceil(o.minTimeMs / Math.max(perCall[0]!, 1e-3))));
  }
  await comm.barrier();
  const t0 = performance.now();
  const sync = o.mode === 'sync' && o.device === 'cpu' ? c.runSync : undefined;
  if (sync) {
    // Blocking calls back to back, like an MPI loop: no promise or microtask between them.
    for (let i = 0; i < iters; i++) sync();
  } else {
    for (let i = 0; i < iters; i++) await c.run();
  }
  const elapsed = (performance.now() - t0) / iters;
  // The slowest rank's time is the job's time; errors add up across ranks.
  const stats = new Float64Array([elapsed, errors]);
  await comm.allreduce(stats.subarray(0, 1), { op: 'max' });
  await comm.allreduce(stats.subarray(1, 2), { op: 'sum' });
  const timeUs = stats[0]! * 1000;
  const bytes = count * ELEMENT_BYTES[o.dtype];
  const bw = bandwidths(collective, bytes, timeUs, comm.size);
  const p2p = collective.pingPong && comm.size >= 2 ? await pingPong(comm, o.dtype, count, iters, o.warmup, bytes) : undefined;
  return {
    collective: collective.name,
    bytes,
    count,
    dtype: o.dtype,
    op: collective.reduces ? o.op : 'none',
    root: collective.root ?? -1,
    timeUs,
    algbwGBps: bw.algbw,
    busbwGBps: bw.busbw,
    errors: o.check && collective.sized ? stats[1]! : null,
    latencyUs: p2p?.latencyUs ?? null,
    p2pBwGBps: p2p?.bandwidthGBps ?? null,
  };
}

/** Whether the timed loop of this collective makes blocking calls (for the report header). */
export function callMode(c: Collective, o: BenchOptions): string {
  if (o.device === 'cuda') return 'GPU buffers';
  if (o.mode === 'sync' && c.blocking) return 'sync calls';
  return o.mode === 'sync' ? 'async calls (no blocking form in the core)' : 'async calls';
}
