/**
 * All-reduce bandwidth benchmark in the nccl-tests convention: algbw = bytes / time and
 * busbw = algbw * 2(n-1)/n, the per-link load a perfect ring puts on the wire.
 */
import { dtypeOf } from './communicator.js';
import { DeviceBuffer } from './device.js';
import type { CollectiveView, Communicator, Dtype, ReduceOp } from './types.js';

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
  /** 'sync': each call blocks until done (like MPI_Allreduce); 'async': await one promise at a time. */
  mode: 'sync' | 'async';
  /** Where the buffers live: host memory, or GPU memory (allreduceDevice; needs a CUDA build and a GPU). */
  device: 'cpu' | 'cuda';
}

export interface BenchRow {
  bytes: number;
  count: number;
  dtype: Dtype;
  op: ReduceOp;
  timeUs: number;
  algbwGBps: number;
  busbwGBps: number;
  errors: number;
}

/** Upper bound of the iterations minTimeMs may ask for (a 1 µs call would otherwise ask for 10^5+). */
const MAX_ITERS = 100_000;

const ELEMENT_BYTES: Record<Dtype, number> = { float32: 4, float64: 8, int32: 4, int8: 1, uint8: 1, int64: 8, float16: 2, bfloat16: 2 };

function makeView(dtype: Dtype, count: number): CollectiveView {
  switch (dtype) {
    case 'float32': return new Float32Array(count);
    case 'float64': return new Float64Array(count);
    case 'int32': return new Int32Array(count);
    case 'int8': return new Int8Array(count);
    case 'uint8': return new Uint8Array(count);
    case 'int64': return new BigInt64Array(count);
    case 'float16':
    case 'bfloat16': return new Uint16Array(count);
  }
}

/** Values whose reduction is exact in every dtype: each rank contributes 0 or 1 per element, 1 for prod. */
function fill(view: CollectiveView, dtype: Dtype, op: ReduceOp, rank: number): void {
  const one = dtype === 'float16' ? 0x3c00 : dtype === 'bfloat16' ? 0x3f80 : 1;
  for (let i = 0; i < view.length; i++) {
    const bit = op === 'prod' ? 1 : (i + rank) % 2;
    const v = bit ? one : 0;
    if (view instanceof BigInt64Array) view[i] = BigInt(v);
    else (view as Exclude<CollectiveView, BigInt64Array>)[i] = v;
  }
}

function countWrong(view: CollectiveView, dtype: Dtype, op: ReduceOp, size: number): number {
  let wrong = 0;
  const decode = (x: number | bigint): number => {
    const n = Number(x);
    if (dtype === 'float16') return n === 0 ? 0 : (1 + (n & 0x3ff) / 1024) * 2 ** (((n >> 10) & 0x1f) - 15);
    if (dtype === 'bfloat16') return new Float32Array(new Uint32Array([n << 16]).buffer)[0]!;
    return n;
  };
  for (let i = 0; i < view.length; i++) {
    let ones = 0;
    for (let r = 0; r < size; r++) ones += op === 'prod' ? 1 : (i + r) % 2;
    let want: number;
    switch (op) {
      case 'sum': want = ones; break;
      case 'avg': want = dtype.startsWith('int') || dtype === 'uint8' ? Math.trunc(ones / size) : ones / size; break;
      case 'min': want = ones === size ? 1 : 0; break;
      case 'max': want = ones > 0 ? 1 : 0; break;
      case 'prod': want = 1; break;
    }
    if (Math.abs(decode(view[i]!) - want) > (dtype === 'float16' || dtype === 'bfloat16' ? want / 100 : 1e-6)) wrong++;
  }
  return wrong;
}

export function sizesToRun(o: Pick<BenchOptions, 'minBytes' | 'maxBytes' | 'stepFactor'>): number[] {
  const out: number[] = [];
  for (let b = o.minBytes; b <= o.maxBytes; b = Math.max(b + 1, Math.floor(b * o.stepFactor))) {
    out.push(b);
    if (o.stepFactor <= 1) break;
  }
  return out;
}

export async function runBench(comm: Communicator, o: BenchOptions, onRow?: (row: BenchRow) => void): Promise<BenchRow[]> {
  const elem = ELEMENT_BYTES[o.dtype];
  const rows: BenchRow[] = [];
  const n = comm.size;
  let device: DeviceBuffer | undefined;
  const reduce = async (view: CollectiveView): Promise<void> => {
    if (device) await comm.allreduceDevice(device.ptr, view.length, o.dtype, o.op);
    else if (o.mode === 'sync') comm.allreduceSync(view, { op: o.op, dtype: o.dtype });
    else await comm.allreduce(view, { op: o.op, dtype: o.dtype });
  };
  if (o.startupWarmupMs > 0 && n > 1) {
    // Batches of small calls until the slowest rank has spent the time; every rank sees the same
    // maximum, so all stop after the same batch.
    const tiny = makeView(o.dtype, 1);
    const spent = new Float64Array(1);
    const t0 = performance.now();
    do {
      for (let i = 0; i < 100; i++) await reduce(tiny);
      spent[0] = performance.now() - t0;
      await comm.allreduce(spent, { op: 'max' });
    } while (spent[0]! < o.startupWarmupMs);
  }
  for (const requested of sizesToRun(o)) {
    const count = Math.max(0, Math.floor(requested / elem));
    const view = makeView(o.dtype, count);
    dtypeOf(view, o.dtype);
    if (o.device === 'cuda') {
      device?.free();
      device = new DeviceBuffer(Math.max(1, count * elem));
    }
    let errors = 0;
    if (o.check) {
      fill(view, o.dtype, o.op, comm.rank);
      device?.upload(view);
      await reduce(view);
      device?.download(view);
      errors = countWrong(view, o.dtype, o.op, n);
    }
    const w0 = performance.now();
    for (let i = 0; i < o.warmup; i++) await reduce(view);
    let iters = o.iters;
    if (o.minTimeMs > 0 && o.warmup > 0) {
      const perCall = new Float64Array([(performance.now() - w0) / o.warmup]);
      await comm.allreduce(perCall, { op: 'max' });
      iters = Math.max(o.iters, Math.min(MAX_ITERS, Math.ceil(o.minTimeMs / Math.max(perCall[0]!, 1e-3))));
    }
    await comm.barrier();
    const t0 = performance.now();
    if (!device && o.mode === 'sync') {
      // Blocking calls back to back, like an MPI loop: no promise or microtask between them.
      const opts = { op: o.op, dtype: o.dtype };
      for (let i = 0; i < iters; i++) comm.allreduceSync(view, opts);
    } else {
      for (let i = 0; i < iters; i++) await reduce(view);
    }
    const elapsed = (performance.now() - t0) / iters;
    // The slowest rank's time is the job's time; errors add up across ranks.
    const stats = new Float64Array([elapsed, errors]);
    await comm.allreduce(stats.subarray(0, 1), { op: 'max' });
    await comm.allreduce(stats.subarray(1, 2), { op: 'sum' });
    const timeUs = stats[0]! * 1000;
    const bytes = count * elem;
    const algbw = timeUs > 0 ? bytes / timeUs / 1e3 : 0;
    const row: BenchRow = {
      bytes,
      count,
      dtype: o.dtype,
      op: o.op,
      timeUs,
      algbwGBps: algbw,
      busbwGBps: (algbw * 2 * (n - 1)) / n,
      errors: stats[1]!,
    };
    rows.push(row);
    onRow?.(row);
  }
  device?.free();
  return rows;
}

export function formatBenchHeader(size: number, o: BenchOptions): string {
  return [
    `# ringtrain-bench: ${size} rank(s), ${o.dtype} ${o.op}, ${o.iters} iters${o.minTimeMs > 0 ? ` (more, up to ${o.minTimeMs} ms, for small sizes)` : ''}, ${o.warmup} warm-up${o.startupWarmupMs > 0 ? ` (+${o.startupWarmupMs} ms at start)` : ''}, ${o.device === 'cuda' ? 'GPU buffers' : `${o.mode} calls`}, check ${o.check ? 'on' : 'off'}`,
    `#${'size'.padStart(11)}${'count'.padStart(12)}${'type'.padStart(10)}${'redop'.padStart(7)}${'time(us)'.padStart(12)}${'algbw(GB/s)'.padStart(13)}${'busbw(GB/s)'.padStart(13)}${'#wrong'.padStart(8)}`,
  ].join('\n');
}

export function formatBenchRow(r: BenchRow): string {
  return `${String(r.bytes).padStart(12)}${String(r.count).padStart(12)}${r.dtype.padStart(10)}${r.op.padStart(7)}${r.timeUs.toFixed(1).padStart(12)}${r.algbwGBps.toFixed(4).padStart(13)}${r.busbwGBps.toFixed(4).padStart(13)}${String(r.errors).padStart(8)}`;
}

export const CSV_HEADER = 'bytes,count,dtype,op,time_us,algbw_gbps,busbw_gbps,errors';

export function formatCsvRow(r: BenchRow): string {
  return [r.bytes, r.count, r.dtype, r.op, r.timeUs.toFixed(2), r.algbwGBps.toFixed(6), r.busbwGBps.toFixed(6), r.errors].join(',');
}

export function averageBusbw(rows: readonly BenchRow[]): number {
  return rows.length ? rows.reduce((a, r) => a + r.busbwGBps, 0) / rows.length : 0;
}
