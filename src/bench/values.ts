/**
 * Buffers and exact test values for the benchmark's correctness column. Every value written is a
 * small integer, which every dtype (float16 and bfloat16 included) holds exactly, so a check can
 * compare decoded numbers for equality.
 */
import { DTYPE_BYTES } from '../dtypes.js';
import type { CollectiveView, Dtype } from '../types.js';

/** Bytes per element: the one table in src/dtypes.ts. */
export const ELEMENT_BYTES = DTYPE_BYTES;

export function makeView(dtype: Dtype, count: number): CollectiveView {
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

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The stored form of the small integer v (0 <= v < 2048) in `dtype`. */
export function encode(dtype: Dtype, v: number): number {
  if (dtype === 'bfloat16') {
    f32[0] = v;
    return u32[0]! >>> 16;
  }
  if (dtype === 'float16') {
    if (v === 0) return 0;
    const e = Math.floor(Math.log2(v));
    return ((e + 15) << 10) | Math.round((v / 2 ** e - 1) * 1024);
  }
  return v;
}

/** The number stored at view[i] (float16/bfloat16 decoded; exact for what encode() writes). */
export function decodeAt(view: CollectiveView, dtype: Dtype, i: number): number {
  const x = Number(view[i]!);
  if (dtype === 'bfloat16') {
    u32[0] = x << 16;
    return f32[0]!;
  }
  if (dtype === 'float16') {
    const e = (x >> 10) & 0x1f;
    const m = x & 0x3ff;
    const sign = x & 0x8000 ? -1 : 1;
    if (e === 0) return sign * m * 2 ** -24;
    if (e === 31) return m ? NaN : sign * Infinity;
    return sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return x;
}

export function setAt(view: CollectiveView, i: number, stored: number): void {
  if (view instanceof BigInt64Array) view[i] = BigInt(stored);
  else (view as Exclude<CollectiveView, BigInt64Array>)[i] = stored;
}

/** Fills the view with value(i) encoded for dtype. */
export function fillWith(view: CollectiveView, dtype: Dtype, value: (i: number) => number): void {
  for (let i = 0; i < view.length; i++) setAt(view, i, encode(dtype, value(i)));
}

/**
 * How many elements differ from want(i): by more than 1% for the 16-bit floats, by more than 1e-6
 * otherwise (an average such as 1/3 is not exact in float32; integers are).
 */
export function countWrong(view: CollectiveView, dtype: Dtype, want: (i: number) => number): number {
  const loose = dtype === 'float16' || dtype === 'bfloat16';
  let wrong = 0;
  for (let i = 0; i < view.length; i++) {
    const w = want(i);
    const got = decodeAt(view, dtype, i);
    if (!(Math.abs(got - w) <= (loose ? w / 100 : 1e-6))) wrong++;
  }
  return wrong;
}

/** A value in 0..99 that differs between neighbouring elements and between ranks (for data movement). */
export function pattern(rank: number, i: number): number {
  return (i * 13 + rank * 7 + 1) % 100;
}
