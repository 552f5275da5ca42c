// Inputs whose reductions are exact in every dtype and op, and their expected results, for workers
// that check collectives over any set of ranks (a sub-communicator's members are given by their
// parent ranks). Small integers per (rank, index) keep every sum, product, min and max exact.

export const CTORS = {
  float32: Float32Array, float64: Float64Array, int32: Int32Array, int8: Int8Array, uint8: Uint8Array,
  int64: BigInt64Array, float16: Uint16Array, bfloat16: Uint16Array,
};

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
function floatToHalf(v) {  // exact for the small integers and their averages used here (round to nearest)
  if (v === 0) return 0;
  const s = v < 0 ? 0x8000 : 0; v = Math.abs(v);
  const e = Math.floor(Math.log2(v)); const m = Math.round((v / 2 ** e - 1) * 1024);
  return s | ((e + 15) << 10) | m;
}
const bf16ToFloat = (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0];
const floatToBf16 = (f) => new Uint32Array(new Float32Array([f]).buffer)[0] >>> 16;

export function value(dtype, op, r, i) {
  const base = op === 'prod' ? ((i + r) % 3 === 0 ? 2 : 1) * (r % 2 === 0 ? 1 : -1) : ((i * 7 + r * 13) % 11) - 5;
  return dtype === 'uint8' ? Math.abs(base) : base;
}
export function encode(dtype, v) {
  if (dtype === 'int64') return BigInt(v);
  if (dtype === 'float16') return floatToHalf(v);
  if (dtype === 'bfloat16') return floatToBf16(v);
  return v;
}
export function decode(dtype, x) {
  if (dtype === 'int64') return Number(x);
  if (dtype === 'float16') return halfToFloat(x);
  if (dtype === 'bfloat16') return bf16ToFloat(x);
  return x;
}
export function expected(dtype, op, ranks, i) {
  const vals = ranks.map((r) => value(dtype, op, r, i));
  let acc;
  switch (op) {
    case 'sum': case 'avg': acc = vals.reduce((a, b) => a + b, 0); break;
    case 'prod': acc = vals.reduce((a, b) => a * b, 1); break;
    case 'min': acc = Math.min(...vals); break;
    case 'max': acc = Math.max(...vals); break;
  }
  if (op === 'avg') {
    const f = acc / ranks.length;
    if (dtype === 'float32') return Math.fround(f);
    if (dtype === 'float64') return f;
    if (dtype === 'float16') return halfToFloat(floatToHalf(f));
    if (dtype === 'bfloat16') return bf16ToFloat(floatToBf16(f));
    acc = Math.trunc(f);
  }
  if (dtype === 'uint8') acc = ((acc % 256) + 256) % 256;
  if (dtype === 'int8') acc = ((((acc + 128) % 256) + 256) % 256) - 128;
  return acc;
}
// 16-bit float averages may round an ulp differently from floatToHalf; float32 averages likewise.
export function close(dtype, got, want) {
  if (dtype === 'float16' || dtype === 'bfloat16' || (dtype === 'float32' && !Number.isInteger(want))) {
    return Math.abs(got - want) <= Math.abs(want) * (dtype === 'bfloat16' ? 1 / 128 : dtype === 'float16' ? 1 / 1024 : 1e-6) + 1e-6;
  }
  return got === want;
}

/** This rank's input of `count` elements for (dtype, op). */
export function inputView(dtype, op, rank, count) {
  const v = new CTORS[dtype](count);
  for (let i = 0; i < count; i++) v[i] = encode(dtype, value(dtype, op, rank, i));
  return v;
}

/** Index of the first element of `view` (elements offset.. of the reduction over `ranks`) that is wrong, or -1. */
export function firstWrong(dtype, op, ranks, view, offset) {
  for (let j = 0; j < view.length; j++) {
    const want = expected(dtype, op, ranks, offset + j);
    if (view[j] !== encode(dtype, want) && !close(dtype, decode(dtype, view[j]), want)) return j;
  }
  return -1;
}

/** `count` elements of dtype whose bytes are a pattern of (rank, salt): every bit pattern, NaNs included. */
export function bytesOf(dtype, count, rank, salt) {
  const v = new CTORS[dtype](count);
  const b = new Uint8Array(v.buffer);
  let x = (rank * 7919 + salt * 104729 + count * 31 + 1) >>> 0;
  for (let i = 0; i < b.length; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return v;
}

export function sameBytes(a, b) {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength), y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.every((v, i) => v === y[i]);
}
