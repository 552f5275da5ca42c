/**
 * Small deterministic PRNG, so that every rank derives the same shuffle from the same seed without
 * exchanging anything (Math.random differs per process).
 */
import { hash32 } from './rank-agreement.js';

/** mulberry32: uniform floats in [0, 1), fully determined by `seed`. */
export function seededRandom(seed: number | string, stream = 0): () => number {
  let a = hash32(`${typeof seed}:${String(seed)}#${stream}`) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, random: () => number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
