// Independent reference conversions for the tests: rounding done in double with nearbyint (ties to
// even under the default rounding mode) on an explicitly computed quantum, rather than the bit
// tricks of half_float.h, so an error in one is not repeated in the other.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace reference {

inline uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline float floatFromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline double halfToDouble(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  double v;
  if (exp == 31) v = man ? NAN : INFINITY;
  else if (exp == 0) v = std::ldexp(static_cast<double>(man), -24);
  else v = std::ldexp(1.0 + man / 1024.0, exp - 15);
  return sign ? -v : v;
}

inline bool halfIsNan(uint16_t h) { return ((h >> 10) & 31) == 31 && (h & 1023) != 0; }

// Rounds |x| (finite, non-zero) to a multiple of 2^(max(ilogb(x), minExp) - mantissaBits).
inline double roundToGrid(double x, int minExp, int mantissaBits) {
  int e = std::ilogb(x);
  if (e < minExp) e = minExp;
  const double q = std::ldexp(1.0, e - mantissaBits);
  return std::nearbyint(x / q) * q;
}

inline uint16_t floatToHalf(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (std::isnan(f)) return sign | 0x7e00;
  const double x = std::fabs(static_cast<double>(f));
  if (std::isinf(x)) return sign | 0x7c00;
  if (x == 0) return sign;
  const double r = roundToGrid(x, -14, 10);
  if (r >= 65536.0) return sign | 0x7c00;
  if (r < std::ldexp(1.0, -14)) return sign | static_cast<uint16_t>(r / std::ldexp(1.0, -24));  // subnormal
  const int e = std::ilogb(r);
  const int man = static_cast<int>(std::ldexp(r, -e) * 1024.0) - 1024;
  return sign | static_cast<uint16_t>(((e + 15) << 10) | man);
}

inline float bf16ToFloat(uint16_t b) { return floatFromBits(static_cast<uint32_t>(b) << 16); }

inline uint16_t floatToBf16(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (std::isnan(f)) return sign | 0x7fc0;
  const double x = std::fabs(static_cast<double>(f));
  if (std::isinf(x)) return sign | 0x7f80;
  if (x == 0) return sign;
  const double r = roundToGrid(x, -126, 7);
  if (r >= std::ldexp(1.0, 128)) return sign | 0x7f80;
  return sign | static_cast<uint16_t>(bitsOf(static_cast<float>(r)) >> 16);
}

inline bool bf16IsNan(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0; }

}  // namespace reference
