// SHA-256 and HMAC-SHA-256 (FIPS 180-4, RFC 2104), self-contained so the core needs no crypto
// library: they only authenticate handshakes (the job token never crosses the wire).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ringtrain {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t len);
  Digest finish();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t bufLen_ = 0;
  uint64_t total_ = 0;
};

Digest hmacSha256(const std::string& key, const void* msg, size_t len);

// Constant-time comparison, so a forger learns nothing from timing.
bool digestEqual(const uint8_t* a, const uint8_t* b, size_t len);

}  // namespace ringtrain
