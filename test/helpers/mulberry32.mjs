// The seeded generator of the tests and fixtures: every rank that starts from the same seed draws
// the same sequence, so ranks agree on sizes, late ranks and cases without exchanging anything.
// Plain JavaScript, so that fixtures run by node and tests run by vitest share it.

/** mulberry32: uniform floats in [0, 1), fully determined by `seed`. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
