/**
 * The one parser of byte sizes and counts given as text (environment variables, CLI options):
 * sizes take K/M/G suffixes (powers of 1024; KiB/KB spellings too), as nccl-tests takes them.
 */
import { RingtrainError } from './errors.js';

const SCALE = { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 } as const;

/** Bytes from text such as 4, 64K, 16M, 1.5G, 64KiB; `what` names the option or variable in errors. */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)i?B?$/i.exec(text.trim());
  if (!m) throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `${what}: expected a size like 4, 64K, 16M or 1G, got '${text}'`);
  const v = Math.round(Number(m[1]) * SCALE[m[2]!.toUpperCase() as keyof typeof SCALE]);
  if (!Number.isSafeInteger(v)) throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `${what}: '${text}' is too large`);
  return v;
}

/** A whole number >= min written without a suffix (ranks, ports, milliseconds). */
export function parseCount(text: string, what: string, min: number): number {
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(Number(text)) || Number(text) < min) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `${what}='${text}' is not an integer >= ${min}`);
  }
  return Number(text);
}

export function formatSize(bytes: number): string {
  if (bytes >= 1 << 30 && bytes % (1 << 30) === 0) return `${bytes / (1 << 30)}G`;
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)}M`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes / (1 << 10)}K`;
  return String(bytes);
}
