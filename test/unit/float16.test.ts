// The host-side float32 <-> float16 conversion used by compression: 'fp16'.
import { describe, expect, it } from 'vitest';
import { narrowToFloat16, widenFromFloat16 } from '../../dist/tfjs/float16.js';

function allHalves(): Uint16Array {
  return Uint16Array.from({ length: 65536 }, (_, i) => i);
}

describe('float16 conversion', () => {
  it('widening then narrowing returns every float16 bit pattern unchanged (NaNs stay NaN)', () => {
    const halves = allHalves();
    const wide = new Float32Array(65536);
    widenFromFloat16(halves, wide);
    const back = new Uint16Array(65536);
    narrowToFloat16(wide, back);
    for (let h = 0; h < 65536; h++) {
      const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN16) expect(Number.isNaN(wide[h]!)).toBe(true);
      else expect(back[h], `0x${h.toString(16)}`).toBe(h);
    }
    expect(wide[0x3c00]).toBe(1);
    expect(wide[0x0001]).toBe(2 ** -24);
    expect(wide[0x7bff]).toBe(65504);
    expect(wide[0xfc00]).toBe(-Infinity);
  });

  it('narrowing picks the nearest float16, ties to even, and overflows to infinity', () => {
    const wide = new Float32Array(65536);
    widenFromFloat16(allHalves(), wide);
    // Finite positive halves in increasing order: 0x0000..0x7bff.
    const samples: number[] = [];
    for (let h = 0; h < 0x7bff; h += 7) {
      const lo = wide[h]!;
      const hi = wide[h + 1]!;
      samples.push(lo + (hi - lo) * 0.25, lo + (hi - lo) * 0.5, lo + (hi - lo) * 0.75);
    }
    const src = Float32Array.from(samples);
    const out = new Uint16Array(src.length);
    narrowToFloat16(src, out);
    const back = new Float32Array(src.length);
    widenFromFloat16(out, back);
    for (let i = 0; i < src.length; i++) {
      const x = src[i]!;
      const h = out[i]!;
      const below = wide[h - 1] ?? -Infinity;
      const above = wide[h + 1] ?? Infinity;
      // No other half is strictly closer, and exact ties go to the even mantissa.
      expect(Math.abs(back[i]! - x)).toBeLessThanOrEqual(Math.abs(below - x));
      expect(Math.abs(back[i]! - x)).toBeLessThanOrEqual(Math.abs(above - x));
      if (Math.abs(back[i]! - x) === Math.abs(below - x) || Math.abs(back[i]! - x) === Math.abs(above - x)) {
        expect(h & 1, `tie at ${x}`).toBe(0);
      }
    }
    const big = new Uint16Array(3);
    narrowToFloat16(Float32Array.from([65520, -1e6, 65519]), big);
    expect(Array.from(big)).toEqual([0x7c00, 0xfc00, 0x7bff]);
  });
});
