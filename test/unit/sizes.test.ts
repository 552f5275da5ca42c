// Byte sizes as every option and variable takes them: a count with an optional K/M/G suffix
// (powers of 1024, KiB/KB spellings too), and the short form the tables print.
import { describe, expect, it } from 'vitest';
import { formatSize, parseSize } from '../../dist/sizes.js';

describe('byte sizes', () => {
  it.each([
    ['0', 0],
    ['4', 4],
    ['64K', 64 << 10],
    ['64k', 64 << 10],
    ['64KiB', 64 << 10],
    ['64KB', 64 << 10],
    ['16M', 16 << 20],
    ['16MiB', 16 << 20],
    ['1G', 1 << 30],
    ['1.5K', 1536],
    [' 8M ', 8 << 20],
    ['100B', 100],
  ])('parses %j as %i bytes', (text, bytes) => {
    expect(parseSize(text, 'size')).toBe(bytes);
  });

  it.each(['', 'K', '-1', '1T', '1 2', 'abc', '0x10'])('rejects %j naming what it parsed', (text) => {
    expect(() => parseSize(text, '-b')).toThrow(`-b: expected a size like 4, 64K, 16M or 1G, got '${text}'`);
  });

  it('rejects sizes beyond a safe integer', () => {
    expect(() => parseSize('99999999999999999G', 'size')).toThrow("size: '99999999999999999G' is too large");
  });

  it('formats whole K/M/G multiples with their suffix and other counts as bytes', () => {
    expect([0, 4, 1024, 1536, 64 << 10, 16 << 20, 1 << 30, 3 * 2 ** 30].map(formatSize)).toEqual(['0', '4', '1K', '1536', '64K', '16M', '1G', '3G']);
  });
});
