// CPU reduction kernels: dst[i] = op(dst[i], src[i]). Plain loops over restrict pointers, compiled
// at -O3 so the compiler vectorises them (no -march=native: shipped binaries must run anywhere).
#pragma once
#include <cstddef>
#include "dtype.h"

namespace ringtrain {

// Reduces `count` elements of `src` into `dst`. For Avg this is a sum; finishAverage divides later.
void reduceInto(Dtype dtype, ReduceOp op, void* dst, const void* src, size_t count);

// Divides `count` elements by `divisor` (the world size) in place. Integers divide truncating toward zero.
void finishAverage(Dtype dtype, void* data, size_t count, int divisor);

}  // namespace ringtrain
