// Byte layouts of everything ringtrain sends: handshake messages, collective headers on the forward
// (data) direction, and control messages on the reverse direction. Little-endian, packed by hand.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace ringtrain {
namespace wire {

constexpr uint32_t kHelloMagic = 0x31485452;      // "RTH1"
constexpr uint32_t kChallengeMagic = 0x31435452;  // "RTC1"
constexpr uint32_t kHeaderMagic = 0x314f4352;     // "RCO1"
constexpr uint32_t kControlMagic = 0x31565252;    // "RRV1"
constexpr uint16_t kProtocolVersion = 1;
constexpr size_t kNonceBytes = 16;
constexpr size_t kMacBytes = 32;

inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
inline uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// Handshake, connector -> acceptor.
struct Hello {
  static constexpr size_t kSize = 4 + 2 + 2 + 4 + 4 + 4 + kNonceBytes;
  uint16_t version = kProtocolVersion;
  uint16_t channel = 0;
  uint32_t fromRank = 0;
  uint32_t toRank = 0;
  uint32_t size = 0;
  uint8_t nonce[kNonceBytes] = {};

  void encode(uint8_t* p) const {
    put32(p, kHelloMagic);
    put16(p + 4, version);
    put16(p + 6, channel);
    put32(p + 8, fromRank);
    put32(p + 12, toRank);
    put32(p + 16, size);
    std::memcpy(p + 20, nonce, kNonceBytes);
  }
  bool decode(const uint8_t* p) {
    if (get32(p) != kHelloMagic) return false;
    version = get16(p + 4);
    channel = get16(p + 6);
    fromRank = get32(p + 8);
    toRank = get32(p + 12);
    size = get32(p + 16);
    std::memcpy(nonce, p + 20, kNonceBytes);
    return true;
  }
};

// Handshake, acceptor -> connector: its nonce and its proof.
struct Challenge {
  static constexpr size_t kSize = 4 + kNonceBytes + kMacBytes;
  uint8_t nonce[kNonceBytes] = {};
  uint8_t mac[kMacBytes] = {};
  void encode(uint8_t* p) const {
    put32(p, kChallengeMagic);
    std::memcpy(p + 4, nonce, kNonceBytes);
    std::memcpy(p + 4 + kNonceBytes, mac, kMacBytes);
  }
  bool decode(const uint8_t* p) {
    if (get32(p) != kChallengeMagic) return false;
    std::memcpy(nonce, p + 4, kNonceBytes);
    std::memcpy(mac, p + 4 + kNonceBytes, kMacBytes);
    return true;
  }
};

// Connector -> acceptor after Challenge: kMacBytes of proof. Acceptor -> connector: a 4-byte status.
enum class AckStatus : uint32_t { Ok = 0, AuthFailed = 1, Unexpected = 2 };
constexpr size_t kProofSize = kMacBytes;
constexpr size_t kAckSize = 4;

// Goodbye and Abort are not collectives: they end the forward stream (Abort's `count` is the length
// of the text that follows, `root` the rank that detected the failure).
enum class CollectiveKind : uint8_t { Allreduce = 1, Broadcast = 2, Allgather = 3, Barrier = 4, Goodbye = 5, Abort = 6, Reducescatter = 7 };

inline const char* kindName(CollectiveKind k) {
  switch (k) {
    case CollectiveKind::Allreduce: return "allreduce";
    case CollectiveKind::Broadcast: return "broadcast";
    case CollectiveKind::Allgather: return "allgather";
    case CollectiveKind::Barrier: return "barrier";
    case CollectiveKind::Goodbye: return "close";
    case CollectiveKind::Abort: return "abort";
    case CollectiveKind::Reducescatter: return "reducescatter";
  }
  return "unknown";
}

// Precedes every collective on the forward direction, so the receiver checks that both sides run
// the same call (sequence number, kind, dtype, op, length, root) before it trusts a byte of data.
struct CollectiveHeader {
  static constexpr size_t kSize = 4 + 4 + 4 + 8 + 8;
  CollectiveKind kind = CollectiveKind::Allreduce;
  uint8_t dtype = 0;
  uint8_t op = 0;
  uint32_t root = 0;
  uint64_t seq = 0;
  uint64_t count = 0;

  void encode(uint8_t* p) const {
    put32(p, kHeaderMagic);
    p[4] = static_cast<uint8_t>(kind);
    p[5] = dtype;
    p[6] = op;
    p[7] = 0;
    put32(p + 8, root);
    put64(p + 12, seq);
    put64(p + 20, count);
  }
  bool decode(const uint8_t* p) {
    if (get32(p) != kHeaderMagic) return false;
    kind = static_cast<CollectiveKind>(p[4]);
    dtype = p[5];
    op = p[6];
    root = get32(p + 8);
    seq = get64(p + 12);
    count = get64(p + 20);
    return true;
  }
  bool operator==(const CollectiveHeader& o) const {
    return kind == o.kind && dtype == o.dtype && op == o.op && root == o.root && seq == o.seq && count == o.count;
  }
};

// Reverse direction (right -> left), which carries no data: heartbeats, aborts, goodbyes.
enum class ControlType : uint8_t { Heartbeat = 1, Abort = 2, Goodbye = 3 };
constexpr size_t kControlHeaderSize = 12;
constexpr size_t kMaxControlPayload = 2048;

}  // namespace wire
}  // namespace ringtrain
