// The TypeScript table of element types and ops (src/dtypes.ts) against the addon's own
// (native/src/core/dtype.h): a code or size that differs would reduce the wrong type on the wire.
import { describe, expect, it } from 'vitest';
import { DTYPES, DTYPE_BYTES, DTYPE_CODES, OP_CODES, REDUCE_OPS } from '../../dist/dtypes.js';
import { loadNative } from '../../dist/native.js';

describe('wire codes', () => {
  it('every dtype has the same code and element size in TypeScript and in the native core', () => {
    const native = loadNative().wireCodes;
    const ours = Object.fromEntries(DTYPES.map((d) => [d, { code: DTYPE_CODES[d], bytes: DTYPE_BYTES[d] }]));
    expect(ours).toEqual(native.dtypes);
    expect(Object.keys(native.dtypes)).toHaveLength(8);
  });

  it('every reduction op has the same code in TypeScript and in the native core', () => {
    const native = loadNative().wireCodes;
    expect(Object.fromEntries(REDUCE_OPS.map((op) => [op, OP_CODES[op]]))).toEqual(native.ops);
    expect(Object.keys(native.ops)).toHaveLength(5);
  });
});
