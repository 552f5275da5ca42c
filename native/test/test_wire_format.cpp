// Wire layouts: every message encodes to its documented size and decodes back field for field;
// a wrong magic is refused; the control framing survives any split of the byte stream and rejects
// corrupt or oversized frames without consuming past them.
#include <string>
#include <vector>

#include "check.h"
#include "control_parser.h"
#include "reference_numerics.h"
#include "wire_format.h"

using namespace ringtrain;

TEST(hello_challenge_header_round_trip_and_refuse_wrong_magic) {
  uint64_t s = 99;
  for (int iter = 0; iter < 1000; ++iter) {
    wire::Hello h;
    h.version = static_cast<uint16_t>(reference::splitmix(s));
    h.channel = static_cast<uint16_t>(reference::splitmix(s));
    h.fromRank = static_cast<uint32_t>(reference::splitmix(s));
    h.toRank = static_cast<uint32_t>(reference::splitmix(s));
    h.size = static_cast<uint32_t>(reference::splitmix(s));
    for (auto& b : h.nonce) b = static_cast<uint8_t>(reference::splitmix(s));
    uint8_t buf[wire::Hello::kSize];
    h.encode(buf);
    wire::Hello d;
    CHECK(d.decode(buf));
    CHECK(d.version == h.version && d.channel == h.channel && d.fromRank == h.fromRank && d.toRank == h.toRank && d.size == h.size);
    CHECK(std::memcmp(d.nonce, h.nonce, wire::kNonceBytes) == 0);
    buf[iter % 4] ^= 0x20;
    CHECK(!d.decode(buf));

    wire::Challenge c;
    for (auto& b : c.nonce) b = static_cast<uint8_t>(reference::splitmix(s));
    for (auto& b : c.mac) b = static_cast<uint8_t>(reference::splitmix(s));
    uint8_t cb[wire::Challenge::kSize];
    c.encode(cb);
    wire::Challenge cd;
    CHECK(cd.decode(cb));
    CHECK(std::memcmp(cd.nonce, c.nonce, wire::kNonceBytes) == 0 && std::memcmp(cd.mac, c.mac, wire::kMacBytes) == 0);
    cb[iter % 4] ^= 0x01;
    CHECK(!cd.decode(cb));

    wire::CollectiveHeader ch;
    ch.kind = static_cast<wire::CollectiveKind>(1 + iter % 5);
    ch.dtype = static_cast<uint8_t>(reference::splitmix(s));
    ch.op = static_cast<uint8_t>(reference::splitmix(s));
    ch.root = static_cast<uint32_t>(reference::splitmix(s));
    ch.seq = reference::splitmix(s);
    ch.count = reference::splitmix(s);
    uint8_t hb[wire::CollectiveHeader::kSize];
    ch.encode(hb);
    wire::CollectiveHeader hd;
    CHECK(hd.decode(hb));
    CHECK(hd == ch);
    hb[3] ^= 0x80;
    CHECK(!hd.decode(hb));
  }
  CHECK_EQ(wire::Hello::kSize, 36u);
  CHECK_EQ(wire::Challenge::kSize, 52u);
  CHECK_EQ(wire::CollectiveHeader::kSize, 28u);
}

TEST(collective_headers_differing_in_any_field_are_unequal) {
  wire::CollectiveHeader a;
  a.kind = wire::CollectiveKind::Allreduce;
  a.dtype = 0;
  a.op = 0;
  a.root = 0;
  a.seq = 5;
  a.count = 1000;
  wire::CollectiveHeader b = a;
  CHECK(a == b);
  b.count = 1001;
  CHECK(!(a == b));
  b = a;
  b.dtype = 1;
  CHECK(!(a == b));
  b = a;
  b.op = 3;
  CHECK(!(a == b));
  b = a;
  b.seq = 6;
  CHECK(!(a == b));
  b = a;
  b.root = 1;
  CHECK(!(a == b));
  b = a;
  b.kind = wire::CollectiveKind::Broadcast;
  CHECK(!(a == b));
}

TEST(control_stream_survives_every_split) {
  std::vector<uint8_t> stream;
  encodeControl(stream, wire::ControlType::Heartbeat, 3, "");
  encodeControl(stream, wire::ControlType::Abort, 7, "rank 2 (h, 10.0.0.2:1) died");
  encodeControl(stream, wire::ControlType::Goodbye, 1, "");
  encodeControl(stream, wire::ControlType::Abort, 0, std::string(5000, 'x'));  // cut to kMaxControlPayload
  for (size_t chunk = 1; chunk <= stream.size(); chunk += (chunk < 40 ? 1 : 97)) {
    ControlParser p;
    std::vector<ControlMessage> got;
    for (size_t i = 0; i < stream.size(); i += chunk) CHECK(p.feed(stream.data() + i, std::min(chunk, stream.size() - i), got));
    CHECK_EQ(got.size(), 4u);
    if (got.size() != 4) continue;
    CHECK(got[0].type == wire::ControlType::Heartbeat && got[0].origin == 3 && got[0].text.empty());
    CHECK(got[1].type == wire::ControlType::Abort && got[1].origin == 7 && got[1].text == "rank 2 (h, 10.0.0.2:1) died");
    CHECK(got[2].type == wire::ControlType::Goodbye && got[2].origin == 1);
    CHECK(got[3].text == std::string(wire::kMaxControlPayload, 'x'));
  }
}

TEST(control_parser_rejects_corrupt_frames) {
  auto frame = [](uint32_t magic, uint8_t type, uint16_t len) {
    std::vector<uint8_t> f(wire::kControlHeaderSize);
    wire::put32(f.data(), magic);
    f[4] = type;
    wire::put16(f.data() + 6, len);
    wire::put32(f.data() + 8, 1);
    return f;
  };
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
  } cases[] = {
      {"bad magic", frame(0x12345678, 1, 0)},
      {"type 0", frame(wire::kControlMagic, 0, 0)},
      {"type 4", frame(wire::kControlMagic, 4, 0)},
      {"payload one over the limit", frame(wire::kControlMagic, 2, wire::kMaxControlPayload + 1)},
      {"payload 65535", frame(wire::kControlMagic, 2, 65535)},
  };
  for (auto& c : cases) {
    ControlParser p;
    std::vector<ControlMessage> got;
    CHECK_MSG(!p.feed(c.bytes.data(), c.bytes.size(), got), c.what);
    CHECK_MSG(got.empty(), c.what);
  }
  // A good frame, then a corrupt one in the same feed: the good one is delivered, then false.
  std::vector<uint8_t> mixed;
  encodeControl(mixed, wire::ControlType::Heartbeat, 9, "");
  auto bad = frame(0xdeadbeef, 1, 0);
  mixed.insert(mixed.end(), bad.begin(), bad.end());
  ControlParser p;
  std::vector<ControlMessage> got;
  CHECK(!p.feed(mixed.data(), mixed.size(), got));
  CHECK_EQ(got.size(), 1u);
  // The largest legal payload is accepted.
  std::vector<uint8_t> max = frame(wire::kControlMagic, 2, wire::kMaxControlPayload);
  max.resize(max.size() + wire::kMaxControlPayload, 'y');
  ControlParser q;
  got.clear();
  CHECK(q.feed(max.data(), max.size(), got));
  CHECK_EQ(got.size(), 1u);
}
