// Byte layout of the point-to-point protocol on a mesh link (both directions carry it).
//
// A message of at most kEagerBytes goes eagerly (Eager + payload) while the receiver's buffer for
// unexpected messages from this sender has room (the sender counts; Credit frames give room back).
// Larger messages use a rendezvous: Rts announces it, the receiver answers Cts once a matching recv
// is posted and agrees on length and dtype (or Refuse when it does not), then the payload travels
// as Data frames of at most kChunkBytes, interleaved with every other message on the link, and Fin
// tells the sender the receiver has all of it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "wire_format.h"

namespace ringtrain {
namespace p2p {

constexpr uint32_t kFrameMagic = 0x31505452;  // "RTP1"
// One source of truth for the protocol's sizes; both ends must agree on kFrameSize only.
constexpr size_t kEagerBytes = 64 << 10;         // largest message sent without a rendezvous
constexpr size_t kEagerBudgetBytes = 4 << 20;    // unexpected eager bytes a receiver holds per sender
constexpr size_t kEagerChargeBytes = 64;         // bookkeeping cost charged per eager message (so 0-byte ones are bounded too)
constexpr size_t kChunkBytes = 256 << 10;        // rendezvous payload per Data frame (fairness between messages)
constexpr uint32_t kMaxTag = 0x7fffffffu;        // tags are 0 <= tag <= kMaxTag

enum class FrameType : uint8_t { Eager = 1, Rts = 2, Cts = 3, Data = 4, Fin = 5, Refuse = 6, Credit = 7, Goodbye = 8, Abort = 9 };
constexpr size_t kMaxAbortText = 2048;

// Eager/Rts: tag, dtype, bytes of the message. Cts/Fin: id. Data: id, bytes of this chunk.
// Refuse: id of the refused message, dtype and bytes the receiver's recv expected. Credit: id.
// Abort: the sender gives up on this link (tag 0) or on the whole job (tag 1); id: the error code;
// bytes: length of the text that follows (at most kMaxAbortText).
struct Frame {
  static constexpr size_t kSize = 4 + 1 + 1 + 2 + 4 + 4 + 8;
  FrameType type = FrameType::Eager;
  uint8_t dtype = 0;
  uint16_t comm = 0;  // which communicator of the job (0 = top level; sub-communicators get their own)
  uint32_t tag = 0;
  uint32_t id = 0;
  uint64_t bytes = 0;

  void encode(uint8_t* p) const {
    wire::put32(p, kFrameMagic);
    p[4] = static_cast<uint8_t>(type);
    p[5] = dtype;
    wire::put16(p + 6, comm);
    wire::put32(p + 8, tag);
    wire::put32(p + 12, id);
    wire::put64(p + 16, bytes);
  }
  // False for anything that is not a frame of this protocol.
  bool decode(const uint8_t* p) {
    if (wire::get32(p) != kFrameMagic) return false;
    if (p[4] < static_cast<uint8_t>(FrameType::Eager) || p[4] > static_cast<uint8_t>(FrameType::Abort)) return false;
    type = static_cast<FrameType>(p[4]);
    dtype = p[5];
    comm = wire::get16(p + 6);
    tag = wire::get32(p + 8);
    id = wire::get32(p + 12);
    bytes = wire::get64(p + 16);
    return true;
  }
};

}  // namespace p2p
}  // namespace ringtrain
