/**
 * IEEE 754 binary16 <-> binary32 conversion on the host, for `compression: 'fp16'`.
 *
 * TensorFlow.js has no float16 dtype, so gradients are downloaded as float32 and narrowed here;
 * the native all-reduce then carries 2 bytes an element and sums in float32 on every hop.
 * Narrowing rounds to nearest, ties to even; overflow becomes ±Infinity, NaN stays NaN.
 */

let widenTable: Float32Array | undefined;

/** All 65536 half values as float32, built once (256 KiB): widening is then one load an element. */
function table(): Float32Array {
  if (widenTable) return widenTable;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 0x1f) {
      bits[h] = sign | 0x7f800000 | (mant << 13);
    } else if (exp !== 0) {
      bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant === 0) {
      bits[h] = sign;
    } else {
      // Subnormal half: normalise into a float32 normal.
      let e = 113;
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      bits[h] = sign | (e << 23) | ((mant & 0x3ff) << 13);
    }
  }
  widenTable = new Float32Array(bits.buffer);
  return widenTable;
}

/** Writes `src` rounded to float16 bits into `dst` (same length). */
export function narrowToFloat16(src: Float32Array, dst: Uint16Array): void {
  if (dst.length !== src.length) throw new RangeError('narrowToFloat16: length mismatch');
  const u32 = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const u = u32[i]!;
    const sign = (u >>> 16) & 0x8000;
    const exp = (u >>> 23) & 0xff;
    const mant = u & 0x7fffff;
    if (exp === 0xff) {
      dst[i] = sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
      continue;
    }
    const e = exp - 112;
    if (e >= 0x1f) {
      dst[i] = sign | 0x7c00;
    } else if (e <= 0) {
      if (e < -10) {
        dst[i] = sign;
        continue;
      }
      const full = mant | 0x800000;
      const shift = 14 - e;
      let half = full >>> shift;
      const rem = full & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (rem > halfway || (rem === halfway && (half & 1) !== 0)) half++;
      dst[i] = sign | half;
    } else {
      let half = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      // A carry out of the mantissa correctly bumps the exponent (and reaches Infinity at the top).
      if (rem > 0x1000 || (rem === 0x1000 && (half & 1) !== 0)) half++;
      dst[i] = sign | half;
    }
  }
}

/** Writes the float16 bits of `src` widened to float32 into `dst` (same length). */
export function widenFromFloat16(src: Uint16Array, dst: Float32Array): void {
  if (dst.length !== src.length) throw new RangeError('widenFromFloat16: length mismatch');
  const t = table();
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = t[src[i]!]!;
}
