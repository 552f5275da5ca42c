/**
 * IEEE 754 binary16 <-> binary32 conversion on the host, for `compression: 'fp16'`.
 *
 * TensorFlow.js has no float16 dtype, so gradients are downloaded as float32 and narrowed here;
 * the native all-reduce then carries 2 bytes an element and sums in float32 on every hop.
 * Narrowing rounds to nearest, ties to even; overflow becomes ±Infinity, NaN stays NaN.
 *
 * Both loops are integer bit manipulation on a Uint32Array view (the rounding-bias trick of
 * F. Giesen's float_to_half_fast3_rtne / half_to_float_fast); only subnormal halves take a slower
 * path through a one-element float scratch, which lets float32 arithmetic do their rounding.
 */

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

const F16_MAX_AS_F32_BITS = (127 + 16) << 23; // first float32 that overflows float16
const F32_INFINITY_BITS = 255 << 23;
const F16_MIN_NORMAL_AS_F32_BITS = 113 << 23; // 2^-14
const DENORM_MAGIC_BITS = ((127 - 15) + (23 - 10) + 1) << 23; // 0.5: adding it aligns subnormals
const DENORM_MAGIC = 0.5;

/** Writes `src` rounded to float16 bits into `dst` (same length). */
export function narrowToFloat16(src: Float32Array, dst: Uint16Array): void {
  if (dst.length !== src.length) throw new RangeError('narrowToFloat16: length mismatch');
  const u32 = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const bits = u32[i]!;
    const sign = (bits >>> 16) & 0x8000;
    const abs = bits & 0x7fffffff;
    let h: number;
    if (abs >= F16_MAX_AS_F32_BITS) {
      h = abs > F32_INFINITY_BITS ? 0x7e00 : 0x7c00;
    } else if (abs >= F16_MIN_NORMAL_AS_F32_BITS) {
      // Re-bias the exponent and add 0xfff plus the mantissa's lowest kept bit: ties go to even,
      // and a carry out of the mantissa correctly bumps the exponent.
      h = (abs + ((15 - 127) << 23) + 0xfff + ((abs >>> 13) & 1)) >>> 13;
    } else {
      scratchU[0] = abs;
      scratchF[0] = scratchF[0]! + DENORM_MAGIC;
      h = scratchU[0]! - DENORM_MAGIC_BITS;
    }
    dst[i] = sign | h;
  }
}

/** Writes the float16 bits of `src` widened to float32 into `dst` (same length). */
export function widenFromFloat16(src: Uint16Array, dst: Float32Array): void {
  if (dst.length !== src.length) throw new RangeError('widenFromFloat16: length mismatch');
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const h = src[i]!;
    const sign = (h & 0x8000) << 16;
    const exp = h & 0x7c00;
    let bits = ((h & 0x7fff) << 13) + ((127 - 15) << 23);
    if (exp === 0x7c00) {
      bits += (128 - 16) << 23; // Inf / NaN
    } else if (exp === 0) {
      // Zero or subnormal: scale through float arithmetic (exact).
      scratchU[0] = bits + (1 << 23);
      scratchF[0] = scratchF[0]! - 2 ** -14;
      bits = scratchU[0]!;
    }
    out[i] = (sign | bits) >>> 0;
  }
}
