/** mulberry32: uniform floats in [0, 1), fully determined by `seed`. */
export function mulberry32(seed: number): () => number;
