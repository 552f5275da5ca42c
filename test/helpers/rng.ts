/** A small seeded random generator for property tests (no extra packages); seeds are printed so a run can be reproduced. */
import { mulberry32 } from './mulberry32.mjs';

/** Letters, digits and _: the alphabet of host names and labels. */
export const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_';

/** RELIABILITY_SEED, else a random seed; printed under `label` so a failure can be replayed. */
export function propertySeed(label: string): number {
  const seed = Number(process.env.RELIABILITY_SEED ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`${label} seed: ${seed} (RELIABILITY_SEED=${seed} reproduces it)`);
  return seed;
}

export class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  chars(alphabet: string, lo: number, hi: number): string {
    let s = '';
    for (let n = this.int(lo, hi); n > 0; n--) s += alphabet[Math.floor(this.next() * alphabet.length)];
    return s;
  }
}

