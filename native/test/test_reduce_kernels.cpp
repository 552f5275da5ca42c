// reduceInto / finishAverage for every dtype and op against scalar references: integer sums and
// products wrap, min/max pick, 16-bit floats are computed in float32 and rounded once (to nearest
// even) per call, averages divide the sum (integers truncating toward zero). Odd counts and
// misaligned starts exercise the vectorised loops' tails, and guard elements catch overruns.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "check.h"
#include "half_float.h"
#include "reduce_kernels.h"
#include "reference_numerics.h"

using namespace ringtrain;

namespace {

const ReduceOp kOps[] = {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Min, ReduceOp::Max, ReduceOp::Prod};
const size_t kCounts[] = {0, 1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 1000, 4099};

template <typename T>
T randomValue(uint64_t& s) {
  const uint64_t r = reference::splitmix(s);
  if constexpr (std::is_floating_point_v<T>) {
    // Mixed magnitudes and signs, no NaN (min/max of NaN is not specified).
    const double mag = std::ldexp(static_cast<double>(r >> 11) / 9007199254740992.0, static_cast<int>(r % 41) - 20);
    return static_cast<T>((r & 1) ? -mag : mag);
  } else {
    return static_cast<T>(r);  // the full range, so sums and products overflow and must wrap
  }
}

template <typename T>
T refReduce(ReduceOp op, T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Avg: return static_cast<T>(static_cast<uint64_t>(static_cast<U>(a)) + static_cast<uint64_t>(static_cast<U>(b)));
      case ReduceOp::Prod: return static_cast<T>(static_cast<uint64_t>(static_cast<U>(a)) * static_cast<uint64_t>(static_cast<U>(b)));
      case ReduceOp::Min: return b < a ? b : a;
      case ReduceOp::Max: return b > a ? b : a;
    }
  } else {
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Avg: return a + b;
      case ReduceOp::Prod: return a * b;
      case ReduceOp::Min: return std::fmin(a, b);
      case ReduceOp::Max: return std::fmax(a, b);
    }
  }
  return a;
}

template <typename T>
bool sameBits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <typename T>
void checkTyped(Dtype dtype, uint64_t seed) {
  uint64_t s = seed;
  for (ReduceOp op : kOps) {
    for (size_t count : kCounts) {
      for (size_t offset = 0; offset < 3; ++offset) {
        const size_t guard = 4;
        std::vector<T> dst(count + offset + 2 * guard), src(dst.size());
        for (auto& v : dst) v = randomValue<T>(s);
        for (auto& v : src) v = randomValue<T>(s);
        std::vector<T> want = dst;
        for (size_t i = 0; i < count; ++i) want[guard + offset + i] = refReduce(op, dst[guard + offset + i], src[guard + offset + i]);
        reduceInto(dtype, op, dst.data() + guard + offset, src.data() + guard + offset, count);
        for (size_t i = 0; i < dst.size(); ++i) {
          CHECK_MSG(sameBits(dst[i], want[i]), dtypeName(dtype) << " " << opName(op) << " count " << count << " offset " << offset
                                                               << " element " << i << ": " << +dst[i] << " want " << +want[i]);
        }
      }
    }
  }
}

template <typename T>
void checkAverage(Dtype dtype, uint64_t seed) {
  uint64_t s = seed;
  for (int n : {1, 2, 3, 4, 5, 7, 8, 16, 24}) {
    std::vector<T> v(1001);
    for (auto& x : v) x = randomValue<T>(s);
    std::vector<T> want = v;
    for (auto& x : want) {
      if constexpr (std::is_integral_v<T>) x = static_cast<T>(static_cast<int64_t>(x) / n);  // C++ truncates toward zero
      else x = n > 1 ? static_cast<T>(x / static_cast<T>(n)) : x;
    }
    if constexpr (std::is_same_v<T, int64_t>) {
      // int64 values near the limits: divide without a trip through a narrower type.
      v[0] = std::numeric_limits<int64_t>::min();
      v[1] = std::numeric_limits<int64_t>::max();
      want[0] = v[0] / n;
      want[1] = v[1] / n;
    }
    finishAverage(dtype, v.data(), v.size(), n);
    for (size_t i = 0; i < v.size(); ++i) CHECK_MSG(sameBits(v[i], want[i]), dtypeName(dtype) << " / " << n << " element " << i);
  }
}

// 16-bit floats: decode, combine in float32, round once.
void check16(Dtype dtype, float (*load)(uint16_t), uint16_t (*refStore)(float), bool (*isNan)(uint16_t), uint64_t seed) {
  uint64_t s = seed;
  for (ReduceOp op : kOps) {
    for (size_t count : kCounts) {
      std::vector<uint16_t> dst(count), src(count);
      for (size_t i = 0; i < count; ++i) {
        // Any bit pattern but NaN; for min/max also no infinities of both signs tie-breaking questions.
        do dst[i] = static_cast<uint16_t>(reference::splitmix(s)); while (isNan(dst[i]));
        do src[i] = static_cast<uint16_t>(reference::splitmix(s)); while (isNan(src[i]));
      }
      std::vector<uint16_t> got = dst;
      reduceInto(dtype, op, got.data(), src.data(), count);
      for (size_t i = 0; i < count; ++i) {
        const float a = load(dst[i]), b = load(src[i]);
        uint16_t want;
        switch (op) {
          case ReduceOp::Sum:
          case ReduceOp::Avg: want = refStore(a + b); break;
          case ReduceOp::Prod: want = refStore(a * b); break;
          case ReduceOp::Min: want = b < a ? src[i] : dst[i]; break;
          default: want = b > a ? src[i] : dst[i]; break;
        }
        if (isNan(want)) {
          CHECK_MSG(isNan(got[i]), dtypeName(dtype) << " " << opName(op) << " element " << i << " should be NaN");
        } else {
          CHECK_MSG(got[i] == want, dtypeName(dtype) << " " << opName(op) << " 0x" << std::hex << dst[i] << " , 0x" << src[i] << ": got 0x"
                                                      << got[i] << " want 0x" << want);
        }
      }
    }
  }
  // Average: sum / n rounded once.
  for (int n : {2, 3, 4, 7}) {
    std::vector<uint16_t> v(257);
    for (auto& x : v) do x = static_cast<uint16_t>(reference::splitmix(s)); while (isNan(x));
    std::vector<uint16_t> want(v.size());
    for (size_t i = 0; i < v.size(); ++i) want[i] = refStore(load(v[i]) / static_cast<float>(n));
    finishAverage(dtype, v.data(), v.size(), n);
    for (size_t i = 0; i < v.size(); ++i) CHECK_MSG(v[i] == want[i], dtypeName(dtype) << " avg / " << n << " element " << i);
  }
}

}  // namespace

TEST(reduce_float32_all_ops) { checkTyped<float>(Dtype::Float32, 1); }
TEST(reduce_float64_all_ops) { checkTyped<double>(Dtype::Float64, 2); }
TEST(reduce_int32_all_ops_wrapping) { checkTyped<int32_t>(Dtype::Int32, 3); }
TEST(reduce_int8_all_ops_wrapping) { checkTyped<int8_t>(Dtype::Int8, 4); }
TEST(reduce_uint8_all_ops_wrapping) { checkTyped<uint8_t>(Dtype::Uint8, 5); }
TEST(reduce_int64_all_ops_wrapping) { checkTyped<int64_t>(Dtype::Int64, 6); }

TEST(reduce_float16_all_ops_rounded_once_to_nearest_even) {
  check16(Dtype::Float16, halfToFloat, reference::floatToHalf, reference::halfIsNan, 7);
}
TEST(reduce_bfloat16_all_ops_rounded_once_to_nearest_even) {
  check16(Dtype::BFloat16, bf16ToFloat, reference::floatToBf16, reference::bf16IsNan, 8);
}

TEST(average_divides_the_sum_on_every_dtype) {
  checkAverage<float>(Dtype::Float32, 11);
  checkAverage<double>(Dtype::Float64, 12);
  checkAverage<int32_t>(Dtype::Int32, 13);
  checkAverage<int8_t>(Dtype::Int8, 14);
  checkAverage<uint8_t>(Dtype::Uint8, 15);
  checkAverage<int64_t>(Dtype::Int64, 16);
}

TEST(integer_average_truncates_toward_zero) {
  int32_t v[] = {7, -7, 1, -1, 5, -5};
  finishAverage(Dtype::Int32, v, 6, 2);
  const int32_t want[] = {3, -3, 0, 0, 2, -2};
  for (int i = 0; i < 6; ++i) CHECK_EQ(v[i], want[i]);
}

TEST(nan_and_infinity_propagate_through_sums) {
  float a[] = {NAN, INFINITY, -INFINITY, 1.0f}, b[] = {1.0f, 1.0f, INFINITY, NAN};
  reduceInto(Dtype::Float32, ReduceOp::Sum, a, b, 4);
  CHECK(std::isnan(a[0]));
  CHECK(std::isinf(a[1]) && a[1] > 0);
  CHECK(std::isnan(a[2]));  // -inf + inf
  CHECK(std::isnan(a[3]));
  uint16_t h[] = {floatToHalf(60000.0f)}, g[] = {floatToHalf(60000.0f)};
  reduceInto(Dtype::Float16, ReduceOp::Sum, h, g, 1);
  CHECK_EQ(h[0], 0x7c00);  // float16 overflow is +inf, not a wrapped pattern
}
