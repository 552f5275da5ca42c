// float16 / bfloat16 conversions (half_float.h) against the reference in reference_numerics.h:
// every 16-bit pattern decoded, and every rounding edge (exact ties, one ulp either side) of every
// float exponent and leading-mantissa pattern encoded, plus random floats.
#include <cmath>

#include "check.h"
#include "half_float.h"
#include "reference_numerics.h"

using namespace ringtrain;

TEST(half_decodes_every_pattern_exactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = halfToFloat(static_cast<uint16_t>(h));
    const double want = reference::halfToDouble(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      CHECK_MSG(std::isnan(got), "half 0x" << std::hex << h);
    } else {
      CHECK_MSG(static_cast<double>(got) == want && std::signbit(got) == std::signbit(want), "half 0x" << std::hex << h << " -> " << got);
    }
  }
}

TEST(half_round_trips_every_non_nan_pattern) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t back = floatToHalf(halfToFloat(static_cast<uint16_t>(h)));
    if (reference::halfIsNan(static_cast<uint16_t>(h))) {
      CHECK_MSG(reference::halfIsNan(back), "nan 0x" << std::hex << h << " came back as 0x" << back);
    } else {
      CHECK_MSG(back == h, "0x" << std::hex << h << " came back as 0x" << back);
    }
  }
}

namespace {
// Low-bit patterns that sit on and around a rounding decision for a target with `dropped` bits cut.
template <typename F>
void forEachRoundingEdge(int dropped, F&& visit) {
  const uint32_t half = 1u << (dropped - 1), all = (1u << dropped) - 1;
  const uint32_t lows[] = {0, 1, half - 1, half, half + 1, all};
  for (uint32_t high = 0; high < (1u << (32 - dropped)); ++high) {
    for (uint32_t low : lows) visit((high << dropped) | low);
  }
}
}  // namespace

TEST(float_to_half_rounds_to_nearest_even_at_every_edge) {
  long checked = 0;
  forEachRoundingEdge(13, [&](uint32_t bits) {
    const float f = reference::floatFromBits(bits);
    const uint16_t got = floatToHalf(f), want = reference::floatToHalf(f);
    ++checked;
    if (std::isnan(f)) {
      CHECK_MSG(reference::halfIsNan(got) && (got >> 15) == (bits >> 31), "float bits 0x" << std::hex << bits);
    } else {
      CHECK_MSG(got == want, "float bits 0x" << std::hex << bits << " (" << f << "): got 0x" << got << ", want 0x" << want);
    }
  });
  CHECK(checked == 6L * (1L << 19));
}

TEST(float_to_half_matches_reference_on_random_floats) {
  uint64_t s = 12345;
  for (int i = 0; i < 2000000; ++i) {
    const uint32_t bits = static_cast<uint32_t>(reference::splitmix(s));
    const float f = reference::floatFromBits(bits);
    if (std::isnan(f)) continue;
    CHECK_MSG(floatToHalf(f) == reference::floatToHalf(f), "float bits 0x" << std::hex << bits);
  }
  // Named edges: largest half, the overflow threshold, smallest subnormal and half of it.
  CHECK_EQ(floatToHalf(65504.0f), 0x7bff);
  CHECK_EQ(floatToHalf(65519.99f), 0x7bff);
  CHECK_EQ(floatToHalf(65520.0f), 0x7c00);
  CHECK_EQ(floatToHalf(-65520.0f), 0xfc00);
  CHECK_EQ(floatToHalf(5.9604644775390625e-8f), 0x0001);
  CHECK_EQ(floatToHalf(2.98023223876953125e-8f), 0x0000);  // exact tie to even (zero)
  CHECK_EQ(floatToHalf(8.94069671630859375e-8f), 0x0002);  // 1.5 ulp ties to even (2)
  CHECK_EQ(floatToHalf(-0.0f), 0x8000);
  CHECK_EQ(floatToHalf(1.0f + 1.0f / 2048), 0x3c00);        // tie, rounds to even
  CHECK_EQ(floatToHalf(1.0f + 3.0f / 2048), 0x3c02);        // tie, rounds to even (up)
}

TEST(bfloat16_decode_and_round_trip_every_pattern) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = bf16ToFloat(static_cast<uint16_t>(b));
    CHECK_EQ(reference::bitsOf(f), b << 16);
    const uint16_t back = floatToBf16(f);
    if (reference::bf16IsNan(static_cast<uint16_t>(b))) {
      CHECK_MSG(reference::bf16IsNan(back), "nan 0x" << std::hex << b);
    } else {
      CHECK_MSG(back == b, "0x" << std::hex << b << " came back as 0x" << back);
    }
  }
}

TEST(float_to_bfloat16_rounds_to_nearest_even_at_every_edge) {
  forEachRoundingEdge(16, [&](uint32_t bits) {
    const float f = reference::floatFromBits(bits);
    const uint16_t got = floatToBf16(f);
    if (std::isnan(f)) {
      CHECK_MSG(reference::bf16IsNan(got) && (got >> 15) == (bits >> 31), "float bits 0x" << std::hex << bits);
    } else {
      CHECK_MSG(got == reference::floatToBf16(f), "float bits 0x" << std::hex << bits << ": got 0x" << got);
    }
  });
  uint64_t s = 777;
  for (int i = 0; i < 1000000; ++i) {
    const uint32_t bits = static_cast<uint32_t>(reference::splitmix(s));
    const float f = reference::floatFromBits(bits);
    if (!std::isnan(f)) CHECK_MSG(floatToBf16(f) == reference::floatToBf16(f), "float bits 0x" << std::hex << bits);
  }
  CHECK_EQ(floatToBf16(3.3895313892515355e38f), 0x7f7f);  // largest finite bfloat16
  CHECK_EQ(floatToBf16(3.4028234663852886e38f), 0x7f80);  // FLT_MAX rounds up to inf
  CHECK_EQ(floatToBf16(1.0f + 1.0f / 256), 0x3f80);       // tie to even
}
