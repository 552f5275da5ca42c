// The verdict of the cross-rank agreement check: given every rank's summary, agree or throw a
// message that names the ranks, grouped by what they reported.
import { describe, expect, it } from 'vitest';
import { hash32, layoutSignature, verdict, type RankSummary } from '../../dist/tfjs/rank-agreement.js';

const describeCounts = (s: RankSummary): string => `${s.counts[0]} tensors`;
const summary = (text: string, tensors: number): RankSummary => ({ hash: hash32(text), counts: [tensors] });

function verdictError(all: RankSummary[]): Error {
  try {
    verdict(all, 'gradients', describeCounts, 'Run the same model on every rank.');
  } catch (e) {
    return e as Error;
  }
  throw new Error('verdict did not throw');
}

describe('rank agreement verdicts', () => {
  it('hash32 is FNV-1a as a signed 32-bit integer', () => {
    expect(hash32('')).toBe(0x811c9dc5 | 0);
    expect(hash32('a')).toBe(0xe40c292c | 0);
    expect(hash32('ab')).not.toBe(hash32('ba'));
  });

  it('returns when every rank reports the same hash', () => {
    expect(() => verdict([summary('x', 2), summary('x', 2), summary('x', 2)], 'gradients', describeCounts, '')).not.toThrow();
  });

  it('names each group of ranks with what it reported, and the hint', () => {
    const e = verdictError([summary('a', 2), summary('b', 3), summary('a', 2)]);
    expect(e).toMatchObject({ code: 'ERR_RINGTRAIN_MISMATCH' });
    expect(e.message).toBe('ringtrain: gradients differ between ranks (ranks 0,2: 2 tensors; rank 1: 3 tensors). Run the same model on every rank.');
  });

  it('says that shapes, dtypes, order or options differ when the counts agree', () => {
    const e = verdictError([summary('a', 2), summary('b', 2)]);
    expect(e.message).toContain('(rank 0: 2 tensors; rank 1: 2 tensors). The sizes agree, so shapes, dtypes, order or options differ.');
  });

  it('shortens a group of more than 8 ranks', () => {
    const all = Array.from({ length: 12 }, (_, r) => summary(r === 11 ? 'odd' : 'same', 1));
    const e = verdictError(all);
    expect(e.message).toContain('ranks 0,1,2,3,4,5,6,7,…: 1 tensors; rank 11: 1 tensors');
  });

  it('layoutSignature writes each tensor as dtype[shape], a missing one as -, in order', () => {
    expect(layoutSignature([{ dtype: 'float32', shape: [2, 3] }, null, { dtype: 'int32', shape: [] }])).toBe('float32[2,3];-;int32[]');
    expect(layoutSignature([])).toBe('');
    expect(layoutSignature([{ dtype: 'float32', shape: [6] }])).not.toBe(layoutSignature([{ dtype: 'float32', shape: [2, 3] }]));
  });
});
