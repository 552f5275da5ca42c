/** Byte sizes with K/M/G suffixes (powers of 1024), as nccl-tests takes them. */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)i?B?$/i.exec(text.trim());
  if (!m) throw new Error(`${what}: expected a size like 4, 64K, 16M or 1G, got '${text}'`);
  const mult = { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  const v = Math.round(Number(m[1]) * mult);
  if (!Number.isSafeInteger(v)) throw new Error(`${what}: '${text}' is too large`);
  return v;
}

export function formatSize(bytes: number): string {
  if (bytes >= 1 << 30 && bytes % (1 << 30) === 0) return `${bytes / (1 << 30)}G`;
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)}M`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes / (1 << 10)}K`;
  return String(bytes);
}
