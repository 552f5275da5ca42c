/**
 * Cheap cross-rank check that every rank is about to run the same sequence of collectives.
 *
 * Each rank reduces a short, fixed-length Int32 vector in which only its own slots are non-zero,
 * so a sum gives every rank every rank's summary (an all-gather through all-reduce, usable from the
 * synchronous path too). Because the vector's length depends only on the world size, the check
 * itself can never mismatch, so a disagreement becomes an error on every rank instead of a hang or
 * a silently wrong reduction later.
 */
import { RingtrainError } from '../errors.js';
import type { Communicator } from '../types.js';

/** What one rank reports: a hash of the structure plus a few counts to make the message useful. */
export interface RankSummary {
  /** 32-bit hash of everything that must be equal across ranks. */
  hash: number;
  /** Numbers shown in the error message, e.g. tensor count and element count. */
  counts: readonly number[];
}

/** FNV-1a over the UTF-16 code units of `text`, as a signed 32-bit integer. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/**
 * The layout of a list of tensors as one string, `dtype[d0,d1];...` (`-` for a missing one): what
 * must be equal across ranks (hashed into a RankSummary), and what a cached plan is keyed on.
 */
export function layoutSignature(tensors: readonly ({ dtype: string; shape: readonly number[] } | null)[]): string {
  return tensors.map((t) => (t === null ? '-' : `${t.dtype}[${t.shape.join(',')}]`)).join(';');
}

function pack(comm: Communicator, mine: RankSummary, width: number): Int32Array {
  if (mine.counts.length !== width - 1) throw new RangeError('rank-agreement: counts length differs from width');
  const v = new Int32Array(comm.size * width);
  v[comm.rank * width] = mine.hash;
  mine.counts.forEach((c, i) => {
    v[comm.rank * width + 1 + i] = c;
  });
  return v;
}

function unpack(v: Int32Array, size: number, width: number): RankSummary[] {
  const out: RankSummary[] = [];
  for (let r = 0; r < size; r++) {
    out.push({ hash: v[r * width]!, counts: Array.from(v.subarray(r * width + 1, (r + 1) * width)) });
  }
  return out;
}

/** Throws ERR_RINGTRAIN_MISMATCH naming the groups of ranks whose summaries differ; returns when all agree. */
export function verdict(all: RankSummary[], what: string, describe: (s: RankSummary) => string, hint: string): void {
  const first = all[0]!;
  if (all.every((s) => s.hash === first.hash)) return;
  // Group ranks by hash so the message stays short on large worlds.
  const groups = new Map<number, number[]>();
  all.forEach((s, r) => {
    const g = groups.get(s.hash) ?? [];
    g.push(r);
    groups.set(s.hash, g);
  });
  const described = [...groups.values()].map((ranks) => describe(all[ranks[0]!]!));
  const parts = [...groups.values()].map((ranks, i) => {
    const shown = ranks.length > 8 ? `${ranks.slice(0, 8).join(',')},…` : ranks.join(',');
    return `rank${ranks.length > 1 ? 's' : ''} ${shown}: ${described[i]}`;
  });
  const sameSizes = described.every((d) => d === described[0])
    ? ' The sizes agree, so shapes, dtypes, order or options differ.'
    : '';
  throw new RingtrainError('ERR_RINGTRAIN_MISMATCH', `ringtrain: ${what} differ between ranks (${parts.join('; ')}).${sameSizes} ${hint}`);
}

/** Blocking form, for use inside tfjs' synchronous applyGradients. Throws the same error on every rank. */
export function agreeSync(
  comm: Communicator,
  mine: RankSummary,
  what: string,
  describe: (s: RankSummary) => string,
  hint: string,
): void {
  const width = mine.counts.length + 1;
  const v = comm.allreduceSync(pack(comm, mine, width), { op: 'sum' });
  verdict(unpack(v, comm.size, width), what, describe, hint);
}

/** Asynchronous form. Throws the same error on every rank. */
export async function agree(
  comm: Communicator,
  mine: RankSummary,
  what: string,
  describe: (s: RankSummary) => string,
  hint: string,
): Promise<void> {
  const width = mine.counts.length + 1;
  const v = await comm.allreduce(pack(comm, mine, width), { op: 'sum' });
  verdict(unpack(v, comm.size, width), what, describe, hint);
}
