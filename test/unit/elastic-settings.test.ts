import { describe, expect, it } from 'vitest';
import { elasticSettings } from '../../src/launcher/elastic-settings.js';

describe('elastic settings (--min-np, --max-np, --elastic-timeout)', () => {
  it('no --min-np: not an elastic job', () => {
    expect(elasticSettings(4, undefined, undefined, undefined)).toBeUndefined();
  });
  it('--max-np defaults to -np, --elastic-timeout to 30 s', () => {
    expect(elasticSettings(4, 2, undefined, undefined)).toEqual({ minNp: 2, maxNp: 4, timeoutS: 30 });
    expect(elasticSettings(4, 4, 8, 5)).toEqual({ minNp: 4, maxNp: 8, timeoutS: 5 });
  });
  it('refuses min > np, np > max, and the elastic options without --min-np, naming the values', () => {
    expect(() => elasticSettings(4, 5, undefined, undefined)).toThrow(/--min-np <= -np <= --max-np, got --min-np 5, -np 4, --max-np 4 \(the default: -np\)/);
    expect(() => elasticSettings(4, 2, 3, undefined)).toThrow(/got --min-np 2, -np 4, --max-np 3$/);
    expect(() => elasticSettings(4, undefined, 8, undefined)).toThrow(/--max-np needs --min-np/);
    expect(() => elasticSettings(4, undefined, undefined, 10)).toThrow(/--elastic-timeout needs --min-np/);
    expect(() => elasticSettings(4, 1.5, undefined, undefined)).toThrow(/--min-np must be a whole number >= 1, got 1.5/);
  });
});
