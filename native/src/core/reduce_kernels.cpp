#include "reduce_kernels.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "half_float.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ringtrain {
namespace {

// Integer sums and products wrap (two's complement) rather than invoking signed-overflow UB.
template <typename T>
inline T wrapAdd(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
  } else {
    return a + b;
  }
}
template <typename T>
inline T wrapMul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    using W = std::conditional_t<(sizeof(U) < sizeof(unsigned)), unsigned, U>;  // avoid int promotion
    return static_cast<T>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b)));
  } else {
    return a * b;
  }
}

template <typename T>
void reduceTyped(ReduceOp op, T* __restrict dst, const T* __restrict src, size_t n) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg:
      for (size_t i = 0; i < n; ++i) dst[i] = wrapAdd(dst[i], src[i]);
      break;
    case ReduceOp::Prod:
      for (size_t i = 0; i < n; ++i) dst[i] = wrapMul(dst[i], src[i]);
      break;
    case ReduceOp::Min:
      for (size_t i = 0; i < n; ++i) dst[i] = src[i] < dst[i] ? src[i] : dst[i];
      break;
    case ReduceOp::Max:
      for (size_t i = 0; i < n; ++i) dst[i] = src[i] > dst[i] ? src[i] : dst[i];
      break;
  }
}

// 16-bit floats are reduced in float32 and rounded once per hop.
template <float (*Load)(uint16_t), uint16_t (*Store)(float)>
void reduce16(ReduceOp op, uint16_t* __restrict dst, const uint16_t* __restrict src, size_t n) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg:
      for (size_t i = 0; i < n; ++i) dst[i] = Store(Load(dst[i]) + Load(src[i]));
      break;
    case ReduceOp::Prod:
      for (size_t i = 0; i < n; ++i) dst[i] = Store(Load(dst[i]) * Load(src[i]));
      break;
    case ReduceOp::Min:
      for (size_t i = 0; i < n; ++i) {
        float a = Load(dst[i]), b = Load(src[i]);
        dst[i] = b < a ? src[i] : dst[i];
      }
      break;
    case ReduceOp::Max:
      for (size_t i = 0; i < n; ++i) {
        float a = Load(dst[i]), b = Load(src[i]);
        dst[i] = b > a ? src[i] : dst[i];
      }
      break;
  }
}

template <typename T>
void divideTyped(T* data, size_t n, int divisor) {
  if constexpr (std::is_floating_point_v<T>) {
    const T inv = T(1) / static_cast<T>(divisor);
    // Exact division is kept for divisors that are powers of two (inv exact); otherwise divide so
    // the result matches sum / n bit for bit on every rank.
    if ((divisor & (divisor - 1)) == 0) {
      for (size_t i = 0; i < n; ++i) data[i] *= inv;
    } else {
      const T d = static_cast<T>(divisor);
      for (size_t i = 0; i < n; ++i) data[i] /= d;
    }
  } else {
    // Divide in 64 bits: the divisor need not fit in T (e.g. 200 ranks and int8).
    const int64_t d = divisor;
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<T>(static_cast<int64_t>(data[i]) / d);
  }
}

template <float (*Load)(uint16_t), uint16_t (*Store)(float)>
void divide16(uint16_t* data, size_t n, int divisor) {
  const float d = static_cast<float>(divisor);
  for (size_t i = 0; i < n; ++i) data[i] = Store(Load(data[i]) / d);
}

#if defined(__x86_64__)
// float16 sum/prod with the F16C conversions (8 lanes at a time): the scalar path converts in
// software and is several times slower. Chosen at run time, so shipped binaries still run on CPUs
// without F16C. Both round to nearest even, so results are identical bit for bit.
template <bool Mul>
__attribute__((target("avx,f16c"))) void reduceHalfF16C(uint16_t* __restrict dst, const uint16_t* __restrict src, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 a = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(dst + i)));
    __m256 b = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    __m256 r = Mul ? _mm256_mul_ps(a, b) : _mm256_add_ps(a, b);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) dst[i] = floatToHalf(Mul ? halfToFloat(dst[i]) * halfToFloat(src[i]) : halfToFloat(dst[i]) + halfToFloat(src[i]));
}

bool haveF16C() {
  static const bool yes = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  return yes;
}
#endif

}  // namespace

void reduceInto(Dtype dtype, ReduceOp op, void* dst, const void* src, size_t count) {
  switch (dtype) {
    case Dtype::Float32: return reduceTyped(op, static_cast<float*>(dst), static_cast<const float*>(src), count);
    case Dtype::Float64: return reduceTyped(op, static_cast<double*>(dst), static_cast<const double*>(src), count);
    case Dtype::Int32: return reduceTyped(op, static_cast<int32_t*>(dst), static_cast<const int32_t*>(src), count);
    case Dtype::Int8: return reduceTyped(op, static_cast<int8_t*>(dst), static_cast<const int8_t*>(src), count);
    case Dtype::Uint8: return reduceTyped(op, static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), count);
    case Dtype::Int64: return reduceTyped(op, static_cast<int64_t*>(dst), static_cast<const int64_t*>(src), count);
    case Dtype::Float16:
#if defined(__x86_64__)
      if ((op == ReduceOp::Sum || op == ReduceOp::Avg || op == ReduceOp::Prod) && haveF16C()) {
        if (op == ReduceOp::Prod) return reduceHalfF16C<true>(static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(src), count);
        return reduceHalfF16C<false>(static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(src), count);
      }
#endif
      return reduce16<halfToFloat, floatToHalf>(op, static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(src), count);
    case Dtype::BFloat16:
      return reduce16<bf16ToFloat, floatToBf16>(op, static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(src), count);
  }
}

void finishAverage(Dtype dtype, void* data, size_t count, int divisor) {
  if (divisor <= 1) return;
  switch (dtype) {
    case Dtype::Float32: return divideTyped(static_cast<float*>(data), count, divisor);
    case Dtype::Float64: return divideTyped(static_cast<double*>(data), count, divisor);
    case Dtype::Int32: return divideTyped(static_cast<int32_t*>(data), count, divisor);
    case Dtype::Int8: return divideTyped(static_cast<int8_t*>(data), count, divisor);
    case Dtype::Uint8: return divideTyped(static_cast<uint8_t*>(data), count, divisor);
    case Dtype::Int64: return divideTyped(static_cast<int64_t*>(data), count, divisor);
    case Dtype::Float16: return divide16<halfToFloat, floatToHalf>(static_cast<uint16_t*>(data), count, divisor);
    case Dtype::BFloat16: return divide16<bf16ToFloat, floatToBf16>(static_cast<uint16_t*>(data), count, divisor);
  }
}

}  // namespace ringtrain
