// CPU reference semantics for ringtrain's CUDA kernels, written independently of kernel_logic.h's
// operators (the conversions are the exception: kernel_logic.h's soft conversions are themselves
// checked against GCC's _Float16 and an exhaustive nearest-value search in cuda_logic_test).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../device_api.h"
#include "../kernel_logic.h"

namespace ringtrain::cuda::testing {

inline int g_failures = 0;
inline long g_checks = 0;

#define RT_CHECK(cond, ...)                                  \
  do {                                                       \
    ++::ringtrain::cuda::testing::g_checks;                  \
    if (!(cond)) {                                           \
      ++::ringtrain::cuda::testing::g_failures;              \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);                     \
      std::fprintf(stderr, "\n");                            \
    }                                                        \
  } while (0)

inline const Dtype kAllDtypes[] = {Dtype::Float32, Dtype::Float64, Dtype::Int32, Dtype::Int8,
                                   Dtype::Uint8,   Dtype::Int64,   Dtype::Float16, Dtype::BFloat16};
inline const ReduceOp kAllOps[] = {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Min, ReduceOp::Max,
                                   ReduceOp::Prod};

inline double half_value(uint16_t h) { return logic::soft_half_to_float(h); }
inline double bf16_value(uint16_t b) { return logic::soft_bf16_to_float(b); }
inline uint16_t to_half(double v) { return logic::soft_float_to_half_rne(static_cast<float>(v)); }
inline uint16_t to_bf16(double v) { return logic::soft_float_to_bf16_rne(static_cast<float>(v)); }

/** Element i of a buffer of dtype as a double (exact for every type but int64 beyond 2^53). */
inline double get(const void* data, Dtype t, size_t i) {
  switch (t) {
    case Dtype::Float32: return static_cast<const float*>(data)[i];
    case Dtype::Float64: return static_cast<const double*>(data)[i];
    case Dtype::Int32: return static_cast<const int32_t*>(data)[i];
    case Dtype::Int8: return static_cast<const int8_t*>(data)[i];
    case Dtype::Uint8: return static_cast<const uint8_t*>(data)[i];
    case Dtype::Int64: return static_cast<double>(static_cast<const int64_t*>(data)[i]);
    case Dtype::Float16: return half_value(static_cast<const uint16_t*>(data)[i]);
    case Dtype::BFloat16: return bf16_value(static_cast<const uint16_t*>(data)[i]);
  }
  return 0;
}

inline bool is_float(Dtype t) {
  return t == Dtype::Float32 || t == Dtype::Float64 || t == Dtype::Float16 ||
         t == Dtype::BFloat16;
}

/** One element of op(a, b) into out[i], computed the straightforward way. */
inline void reduce_one(void* out, const void* a, const void* b, Dtype t, ReduceOp op, size_t i) {
  auto int_op = [&](auto x, auto y, auto* dst) {
    using T = std::remove_pointer_t<decltype(dst)>;
    using U = std::make_unsigned_t<T>;
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Avg: *dst = static_cast<T>(static_cast<U>(static_cast<U>(x) + static_cast<U>(y))); break;
      case ReduceOp::Prod: *dst = static_cast<T>(static_cast<U>(static_cast<U>(x) * static_cast<U>(y))); break;
      case ReduceOp::Min: *dst = x < y ? x : y; break;
      case ReduceOp::Max: *dst = x > y ? x : y; break;
    }
  };
  auto float_op = [&](auto x, auto y) {
    using T = decltype(x);
    if (op == ReduceOp::Min || op == ReduceOp::Max) {
      if (std::isnan(x)) return x;
      if (std::isnan(y)) return y;
      return op == ReduceOp::Min ? (y < x ? y : x) : (y > x ? y : x);
    }
    return op == ReduceOp::Prod ? T(x * y) : T(x + y);
  };
  switch (t) {
    case Dtype::Float32:
      static_cast<float*>(out)[i] = float_op(static_cast<const float*>(a)[i], static_cast<const float*>(b)[i]);
      break;
    case Dtype::Float64:
      static_cast<double*>(out)[i] = float_op(static_cast<const double*>(a)[i], static_cast<const double*>(b)[i]);
      break;
    case Dtype::Int32:
      int_op(static_cast<const int32_t*>(a)[i], static_cast<const int32_t*>(b)[i], static_cast<int32_t*>(out) + i);
      break;
    case Dtype::Int8:
      int_op(static_cast<const int8_t*>(a)[i], static_cast<const int8_t*>(b)[i], static_cast<int8_t*>(out) + i);
      break;
    case Dtype::Uint8:
      int_op(static_cast<const uint8_t*>(a)[i], static_cast<const uint8_t*>(b)[i], static_cast<uint8_t*>(out) + i);
      break;
    case Dtype::Int64:
      int_op(static_cast<const int64_t*>(a)[i], static_cast<const int64_t*>(b)[i], static_cast<int64_t*>(out) + i);
      break;
    case Dtype::Float16:
    case Dtype::BFloat16: {
      const bool h = t == Dtype::Float16;
      const uint16_t* pa = static_cast<const uint16_t*>(a);
      const uint16_t* pb = static_cast<const uint16_t*>(b);
      const float x = static_cast<float>(h ? half_value(pa[i]) : bf16_value(pa[i]));
      const float y = static_cast<float>(h ? half_value(pb[i]) : bf16_value(pb[i]));
      const float r = float_op(x, y);
      static_cast<uint16_t*>(out)[i] = h ? to_half(r) : to_bf16(r);
      break;
    }
  }
}

/** out[i] = data[i] / divisor, per finalize_avg's documented semantics. */
inline void divide_one(void* out, const void* data, Dtype t, int divisor, size_t i) {
  switch (t) {
    case Dtype::Float32: static_cast<float*>(out)[i] = static_cast<const float*>(data)[i] / static_cast<float>(divisor); break;
    case Dtype::Float64: static_cast<double*>(out)[i] = static_cast<const double*>(data)[i] / divisor; break;
    case Dtype::Int32: static_cast<int32_t*>(out)[i] = static_cast<const int32_t*>(data)[i] / divisor; break;
    case Dtype::Int8: static_cast<int8_t*>(out)[i] = static_cast<int8_t>(static_cast<const int8_t*>(data)[i] / divisor); break;
    case Dtype::Uint8: static_cast<uint8_t*>(out)[i] = static_cast<uint8_t>(static_cast<const uint8_t*>(data)[i] / divisor); break;
    case Dtype::Int64: static_cast<int64_t*>(out)[i] = static_cast<const int64_t*>(data)[i] / divisor; break;
    case Dtype::Float16:
    case Dtype::BFloat16: {
      const bool h = t == Dtype::Float16;
      const uint16_t v = static_cast<const uint16_t*>(data)[i];
      const float r = static_cast<float>(h ? half_value(v) : bf16_value(v)) / static_cast<float>(divisor);
      static_cast<uint16_t*>(out)[i] = h ? to_half(r) : to_bf16(r);
      break;
    }
  }
}

/**
 * Random bytes for a dtype: floats mostly in [-4, 4] (so sums and products stay finite and
 * comparable) with a sprinkling of NaN, ±inf, ±0 and subnormals; integers over their full range.
 */
inline void fill_random(void* data, Dtype t, size_t count, std::mt19937_64& rng, bool specials = true) {
  std::uniform_real_distribution<double> u(-4.0, 4.0);
  std::uniform_int_distribution<int> pick(0, 63);
  auto special = [&](double v) -> double {
    if (!specials) return v;
    switch (pick(rng)) {
      case 0: return std::nan("");
      case 1: return INFINITY;
      case 2: return -INFINITY;
      case 3: return 0.0;
      case 4: return -0.0;
      case 5: return 1e-41;  // float32 subnormal; float16/bf16 round it to 0 / subnormal
      default: return v;
    }
  };
  for (size_t i = 0; i < count; ++i) {
    const uint64_t bits = rng();
    switch (t) {
      case Dtype::Float32: static_cast<float*>(data)[i] = static_cast<float>(special(u(rng))); break;
      case Dtype::Float64: static_cast<double*>(data)[i] = special(u(rng)); break;
      case Dtype::Int32: static_cast<int32_t*>(data)[i] = static_cast<int32_t>(bits); break;
      case Dtype::Int8: static_cast<int8_t*>(data)[i] = static_cast<int8_t>(bits); break;
      case Dtype::Uint8: static_cast<uint8_t*>(data)[i] = static_cast<uint8_t>(bits); break;
      case Dtype::Int64: static_cast<int64_t*>(data)[i] = static_cast<int64_t>(bits); break;
      case Dtype::Float16: static_cast<uint16_t*>(data)[i] = to_half(special(u(rng))); break;
      case Dtype::BFloat16: static_cast<uint16_t*>(data)[i] = to_bf16(special(u(rng))); break;
    }
  }
}

/** Element-wise equality; NaN equals NaN (payloads may differ between implementations). */
inline bool same_element(const void* a, const void* b, Dtype t, size_t i) {
  if (is_float(t)) {
    const double x = get(a, t, i), y = get(b, t, i);
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
    const size_t s = dtype_size(t);
    return std::memcmp(static_cast<const uint8_t*>(a) + i * s, static_cast<const uint8_t*>(b) + i * s, s) == 0;
  }
  const size_t s = dtype_size(t);
  return std::memcmp(static_cast<const uint8_t*>(a) + i * s, static_cast<const uint8_t*>(b) + i * s, s) == 0;
}

/** Index of the first differing element, or -1. */
inline long first_mismatch(const void* a, const void* b, Dtype t, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (!same_element(a, b, t, i)) return static_cast<long>(i);
  }
  return -1;
}

}  // namespace ringtrain::cuda::testing
