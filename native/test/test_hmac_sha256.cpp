// SHA-256 against FIPS 180-4 example digests and HMAC-SHA-256 against the RFC 4231 test cases:
// the handshake's security rests on these being exactly right.
#include <string>
#include <vector>

#include "check.h"
#include "hmac_sha256.h"

using ringtrain::Digest;

namespace {

std::string hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}
std::string hex(const Digest& d) { return hex(d.data(), d.size()); }

std::string sha(const std::string& msg) {
  ringtrain::Sha256 s;
  s.update(msg.data(), msg.size());
  return hex(s.finish());
}

std::string hmac(const std::string& key, const std::string& msg) { return hex(ringtrain::hmacSha256(key, msg.data(), msg.size())); }

}  // namespace

TEST(sha256_fips_180_examples) {
  CHECK_EQ(sha(""), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  CHECK_EQ(sha("abc"), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  CHECK_EQ(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
           std::string("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
  CHECK_EQ(sha(std::string(1000000, 'a')), std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

TEST(sha256_same_digest_whatever_the_update_split) {
  // Lengths around the 55/56/64-byte padding boundaries, fed in every split.
  for (size_t len : {0u, 1u, 55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 128u, 200u}) {
    std::string msg;
    for (size_t i = 0; i < len; ++i) msg += static_cast<char>('a' + (i * 7) % 26);
    const std::string whole = sha(msg);
    for (size_t cut = 0; cut <= len; ++cut) {
      ringtrain::Sha256 s;
      s.update(msg.data(), cut);
      s.update(msg.data() + cut, len - cut);
      CHECK_MSG(hex(s.finish()) == whole, "len " << len << " cut " << cut);
    }
    ringtrain::Sha256 bytewise;
    for (char c : msg) bytewise.update(&c, 1);
    CHECK_MSG(hex(bytewise.finish()) == whole, "byte-at-a-time, len " << len);
  }
}

TEST(hmac_sha256_rfc4231_test_cases) {
  std::string key25;
  for (int i = 1; i <= 25; ++i) key25 += static_cast<char>(i);
  const std::string aa131(131, '\xaa');
  // Case 1..4, 6, 7 compare the full MAC; case 5 the first 128 bits, as the RFC gives it.
  CHECK_EQ(hmac(std::string(20, '\x0b'), "Hi There"), std::string("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
  CHECK_EQ(hmac("Jefe", "what do ya want for nothing?"), std::string("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
  CHECK_EQ(hmac(std::string(20, '\xaa'), std::string(50, '\xdd')),
           std::string("773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"));
  CHECK_EQ(hmac(key25, std::string(50, '\xcd')), std::string("82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"));
  CHECK_EQ(hmac(std::string(20, '\x0c'), "Test With Truncation").substr(0, 32), std::string("a3b6167473100ee06e0c796c2955552b"));
  CHECK_EQ(hmac(aa131, "Test Using Larger Than Block-Size Key - Hash Key First"),
           std::string("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
  CHECK_EQ(hmac(aa131,
                "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be "
                "hashed before being used by the HMAC algorithm."),
           std::string("9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"));
}

TEST(hmac_empty_key_and_64_byte_key_edges) {
  // Known values (computed with an independent implementation, Node's crypto): the empty token
  // (the default when RINGTRAIN_TOKEN is unset) and a key of exactly one block.
  CHECK_EQ(hmac("", ""), std::string("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"));
  CHECK_EQ(hmac(std::string(64, 'k'), "m"), std::string("3b7a8d453e76edb519238a515105a57508d0f169f480ebeee120a9e7803289fa"));
}

TEST(digest_equal_compares_every_byte) {
  Digest a = ringtrain::hmacSha256("t", "x", 1);
  Digest b = a;
  CHECK(ringtrain::digestEqual(a.data(), b.data(), a.size()));
  for (size_t i = 0; i < a.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      b = a;
      b[i] ^= static_cast<uint8_t>(1 << bit);
      CHECK_MSG(!ringtrain::digestEqual(a.data(), b.data(), a.size()), "byte " << i << " bit " << bit);
    }
  }
  CHECK(ringtrain::digestEqual(a.data(), b.data(), 0));
}
