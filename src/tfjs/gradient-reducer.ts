/**
 * Fuses a step's gradients into buckets of at most fusionBytes, all-reduces them with native calls
 * pipelined against the gathering (see reduce()), and splits the results back into tensors of the
 * original shapes and dtypes — all inside tfjs' synchronous applyGradients.
 *
 * Two data paths, chosen by the active backend:
 * - `cpu` (pure-JS @tensorflow/tfjs): tensor data already lives in JS memory, so each gradient is
 *   copied once into a reusable per-bucket Float32Array (no allocation per step), and the reduced
 *   tensors are created as zero-copy views of that buffer.
 * - any other backend (tfjs-node's `tensorflow`, tfjs-node-gpu, webgl, ...): the bucket is
 *   flattened and concatenated on the device, downloaded with one dataSync, and uploaded back with
 *   one tensor1d followed by an on-device split.
 *
 * Lifetimes: the returned tensors may alias the bucket buffers, which are rewritten on the next
 * call, so the caller must dispose them before calling `reduce` again (DistributedOptimizer does,
 * right after the inner optimizer's applyGradients — the same contract as tf.Optimizer.minimize,
 * which disposes the gradients right after applyGradients).
 */
import * as tf from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';
import { monotonicMicros, timelineEnabled, traceSpan } from '../timeline.js';
import type { Communicator } from '../types.js';
import { narrowToFloat16, widenFromFloat16 } from './float16.js';
import { agreeSync, hash32, layoutSignature, type RankSummary } from './rank-agreement.js';

export type GradientCompression = 'none' | 'fp16';

export interface ReducerOptions {
  op: 'avg' | 'sum';
  compression: GradientCompression;
  /** Largest bucket, in bytes on the wire (4 an element, 2 with fp16). A larger tensor gets a bucket of its own. */
  fusionBytes: number;
  /** Each bucket travels as collectives of at most this many bytes, so gathering overlaps them. 0: one per bucket. */
  pipelineBytes: number;
  /** Only folded into the cross-rank agreement: ranks must all-reduce on the same calls. */
  backwardPassesPerStep: number;
}

/** Cumulative counters, for progress lines and benchmarks. */
export interface ReducerStats {
  /** All-reduce steps done (calls that reached the network). */
  steps: number;
  /** Buckets all-reduced, summed over steps. */
  buckets: number;
  /** Native all-reduce calls, summed over steps (buckets split into pipeline chunks). */
  collectives: number;
  /** Bytes handed to the native all-reduce, summed over steps. */
  bytes: number;
  /** Milliseconds the JS thread spent submitting and waiting for all-reduces (not hidden behind gathering). */
  allreduceMs: number;
  /** Milliseconds flattening, downloading and (fp16) narrowing. */
  gatherMs: number;
  /** Milliseconds widening (fp16) and rebuilding tensors. */
  scatterMs: number;
}

interface Slot {
  /** Position in the gradient list. */
  index: number;
  shape: number[];
  dtype: tf.DataType;
  size: number;
  /** Element offset inside the bucket. */
  offset: number;
}

interface Bucket {
  slots: Slot[];
  elements: number;
  /** Element ranges [start, end) of the bucket that travel as one collective each, in order. */
  chunks: [number, number][];
  /** Reused gather buffer of the cpu path, allocated on first use. */
  host: Float32Array | undefined;
  /** Reused float16 wire buffer when compressing. */
  wire: Uint16Array | undefined;
}

interface Plan {
  key: string;
  buckets: Bucket[];
}

const REDUCIBLE: ReadonlySet<string> = new Set(['float32', 'int32', 'bool']);

export class GradientReducer {
  readonly stats: ReducerStats = { steps: 0, buckets: 0, collectives: 0, bytes: 0, allreduceMs: 0, gatherMs: 0, scatterMs: 0 };
  private plan: Plan | undefined;
  /** The communicator of the current call: the world may change between calls (elastic jobs). */
  private comm!: Communicator;
  /** Whose ranks agreed on `plan`: a new world agrees again. */
  private planComm: Communicator | undefined;

  constructor(
    /** A communicator, or where to find the current one on each call (elastic jobs). */
    private readonly world: Communicator | (() => Communicator),
    private readonly options: ReducerOptions,
  ) {}

  /**
   * Returns the reduced gradients in the same order; null entries stay null. Every rank must call
   * this with gradients of the same shapes, dtypes and order; the first call (and any call whose
   * structure changed) checks that across ranks and throws ERR_RINGTRAIN_MISMATCH on every rank.
   */
  reduce(grads: readonly (tf.Tensor | null)[]): (tf.Tensor | null)[] {
    this.comm = typeof this.world === 'function' ? this.world() : this.world;
    const plan = this.planFor(grads);
    const out: (tf.Tensor | null)[] = grads.map(() => null);
    const buckets = plan.buckets;
    if (buckets.length === 0) return out;
    const cpu = tf.getBackend() === 'cpu';
    const compress = this.options.compression === 'fp16';
    const reduceOptions = compress ? { op: this.options.op, dtype: 'float16' as const } : { op: this.options.op };
    const lastBucket = buckets.length - 1;
    const hosts: Float32Array[] = [];
    const tracing = timelineEnabled();
    try {
      // Pipeline. The native worker runs collectives strictly in submission order on its own
      // thread, so every chunk but the last is submitted asynchronously and the JS thread gathers
      // (copies, downloads, narrows) the next chunk while earlier ones travel. The blocking call
      // on the last chunk returns only after all earlier ones completed, so their results are in
      // place by then; their promises settle later and are watched only for errors, which the
      // blocking call reports as well (a failed collective fails every later one).
      for (let b = 0; b <= lastBucket; b++) {
        const bucket = buckets[b]!;
        let host: Float32Array;
        if (cpu) {
          host = bucket.host ??= new Float32Array(bucket.elements);
        } else {
          const t0 = performance.now();
          const u0 = tracing ? monotonicMicros() : 0;
          host = this.gatherDevice(bucket, grads); // one download per bucket
          if (tracing) traceSpan('gradient download', u0, monotonicMicros(), { bucket: b, elements: bucket.elements });
          this.stats.gatherMs += performance.now() - t0;
        }
        hosts.push(host);
        if (compress) bucket.wire ??= new Uint16Array(bucket.elements);
        const lastChunk = bucket.chunks.length - 1;
        for (let c = 0; c <= lastChunk; c++) {
          const [start, end] = bucket.chunks[c]!;
          const t0 = performance.now();
          const u0 = tracing ? monotonicMicros() : 0;
          if (cpu) this.gatherHost(bucket, grads, start, end);
          let view: Float32Array | Uint16Array = host.subarray(start, end);
          if (compress) {
            const wire = bucket.wire!.subarray(start, end);
            narrowToFloat16(view as Float32Array, wire);
            view = wire;
          }
          const t1 = performance.now();
          if (tracing) traceSpan(compress ? 'fusion copy + fp16' : 'fusion copy', u0, monotonicMicros(), { bucket: b, chunk: c });
          this.stats.gatherMs += t1 - t0;
          this.stats.bytes += view.byteLength;
          this.stats.collectives++;
          if (b === lastBucket && c === lastChunk) {
            this.comm.allreduceSync(view, reduceOptions);
          } else {
            this.comm.allreduce(view, reduceOptions).catch(() => undefined);
          }
          this.stats.allreduceMs += performance.now() - t1;
        }
      }
      const t2 = performance.now();
      const u2 = tracing ? monotonicMicros() : 0;
      buckets.forEach((bucket, b) => {
        const host = hosts[b]!;
        if (compress) widenFromFloat16(bucket.wire!, host);
        if (cpu) this.scatterHost(bucket, host, out);
        else this.scatterDevice(bucket, host, out);
      });
      if (tracing) traceSpan(cpu ? 'copy out' : 'gradient upload', u2, monotonicMicros(), { buckets: buckets.length });
      this.stats.scatterMs += performance.now() - t2;
    } catch (e) {
      tf.dispose(out.filter((t): t is tf.Tensor => t !== null));
      throw e;
    }
    this.stats.steps++;
    this.stats.buckets += buckets.length;
    return out;
  }

  private planFor(grads: readonly (tf.Tensor | null)[]): Plan {
    const key = layoutSignature(grads);
    if (this.plan?.key === key && this.planComm === this.comm) return this.plan;
    const bytesPer = this.options.compression === 'fp16' ? 2 : 4;
    const limit = Math.max(1, Math.floor(this.options.fusionBytes / bytesPer));
    const buckets: Bucket[] = [];
    let current: Bucket | undefined;
    let tensors = 0;
    let elements = 0;
    grads.forEach((g, index) => {
      if (g === null || g.size === 0) return;
      if (!REDUCIBLE.has(g.dtype)) {
        throw new RingtrainError(
          'ERR_RINGTRAIN_ARGUMENT',
          `ringtrain: DistributedOptimizer cannot all-reduce a ${g.dtype} gradient (position ${index}, shape [${g.shape.join(',')}]); only float32, int32 and bool`,
        );
      }
      if (current === undefined || (current.elements > 0 && current.elements + g.size > limit)) {
        current = { slots: [], elements: 0, chunks: [], host: undefined, wire: undefined };
        buckets.push(current);
      }
      current.slots.push({ index, shape: g.shape.slice(), dtype: g.dtype, size: g.size, offset: current.elements });
      current.elements += g.size;
      tensors++;
      elements += g.size;
    });
    const chunk = this.options.pipelineBytes > 0 ? Math.max(1, Math.floor(this.options.pipelineBytes / bytesPer)) : Infinity;
    for (const b of buckets) {
      for (let start = 0; start < b.elements; start += chunk) b.chunks.push([start, Math.min(b.elements, start + chunk)]);
    }
    const o = this.options;
    const layout = buckets.map((b) => b.chunks.map(([a, z]) => z - a).join('+')).join(',');
    const summary: RankSummary = {
      hash: hash32(`${key}|${o.op}|${o.compression}|${o.backwardPassesPerStep}|${layout}`),
      counts: [tensors, elements, buckets.length],
    };
    agreeSync(
      this.comm,
      summary,
      'the gradients passed to DistributedOptimizer',
      (s) => `${s.counts[0]} tensors, ${s.counts[1]} elements in ${s.counts[2]} bucket${s.counts[2] === 1 ? '' : 's'}`,
      'Every rank must build the same model, compute gradients for the same variables in the same order, and use the same ' +
        'DistributedOptimizer options (op, compression, fusionBytes / RINGTRAIN_FUSION_BYTES, pipelineBytes / RINGTRAIN_PIPELINE_BYTES, backwardPassesPerStep).',
    );
    this.plan = { key, buckets };
    this.planComm = this.comm;
    return this.plan;
  }

  /** Copies elements [start, end) of the bucket from the gradients into its host buffer. */
  private gatherHost(bucket: Bucket, grads: readonly (tf.Tensor | null)[], start: number, end: number): void {
    const host = bucket.host!;
    for (const s of bucket.slots) {
      const a = Math.max(start, s.offset);
      const z = Math.min(end, s.offset + s.size);
      if (a >= z) continue;
      // On the cpu backend dataSync returns the tensor's own storage (no copy), and a typed-array
      // set converts int32/bool values to float32 exactly.
      const src = grads[s.index]!.dataSync() as Float32Array | Int32Array | Uint8Array;
      host.set(a === s.offset && z === s.offset + s.size ? src : src.subarray(a - s.offset, z - s.offset), a);
    }
  }

  private gatherDevice(bucket: Bucket, grads: readonly (tf.Tensor | null)[]): Float32Array {
    const flat = tf.tidy(() =>
      tf.concat(
        bucket.slots.map((s) => {
          const g = grads[s.index]!;
          return tf.reshape(g.dtype === 'float32' ? g : tf.cast(g, 'float32'), [-1]);
        }),
      ),
    );
    try {
      // A fresh host copy on these backends, so reducing it in place touches no tensor.
      return flat.dataSync() as Float32Array;
    } finally {
      flat.dispose();
    }
  }

  private scatterHost(bucket: Bucket, host: Float32Array, out: (tf.Tensor | null)[]): void {
    for (const s of bucket.slots) {
      const view = tf.tensor(host.subarray(s.offset, s.offset + s.size), s.shape, 'float32');
      if (s.dtype === 'float32') {
        out[s.index] = view;
      } else {
        out[s.index] = tf.cast(view, s.dtype);
        view.dispose();
      }
    }
  }

  private scatterDevice(bucket: Bucket, host: Float32Array, out: (tf.Tensor | null)[]): void {
    const parts = tf.tidy(() => {
      const flat = tf.tensor1d(host, 'float32');
      const pieces = bucket.slots.length === 1 ? [flat] : tf.split(flat, bucket.slots.map((s) => s.size));
      return pieces.map((p, i) => {
        const s = bucket.slots[i]!;
        const shaped = tf.reshape(p, s.shape);
        return s.dtype === 'float32' ? shaped : tf.cast(shaped, s.dtype);
      });
    });
    parts.forEach((p, i) => {
      out[bucket.slots[i]!.index] = p;
    });
  }
}
