/**
 * The one TypeScript table of element types and reduction operations. A name's position is its
 * wire code, which must match native/src/core/dtype.h: the addon exports its own table
 * (`wireCodes`) and test/unit/wire-codes.test.ts fails when the two disagree.
 */
export const DTYPES = ['float32', 'float64', 'int32', 'int8', 'uint8', 'int64', 'float16', 'bfloat16'] as const;

/** Element types a collective can carry. float16 and bfloat16 travel in a Uint16Array and must be named. */
export type Dtype = (typeof DTYPES)[number];

/** Reduction applied element-wise across ranks. `avg` is the sum divided by the number of ranks. */
export const REDUCE_OPS = ['sum', 'avg', 'min', 'max', 'prod'] as const;

export type ReduceOp = (typeof REDUCE_OPS)[number];

/** Bytes per element. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = { float32: 4, float64: 8, int32: 4, int8: 1, uint8: 1, int64: 8, float16: 2, bfloat16: 2 };

function codes<T extends string>(names: readonly T[]): Readonly<Record<T, number>> {
  return Object.freeze(Object.fromEntries(names.map((name, code) => [name, code])) as Record<T, number>);
}

/** Wire codes (the position in DTYPES / REDUCE_OPS). */
export const DTYPE_CODES = codes(DTYPES);
export const OP_CODES = codes(REDUCE_OPS);
