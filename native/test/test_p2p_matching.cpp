// Point-to-point bookkeeping without sockets: the tag matcher keeps per-tag order whichever side
// comes first, tags never block each other, draining empties it; p2p frames round-trip and refuse
// what is not a frame.
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "p2p_frame.h"
#include "reference_numerics.h"
#include "tag_matcher.h"

using namespace ringtrain;

namespace {
// By value: CHECK_EQ binds references, which must not point into a temporary optional.
template <class T>
T val(std::optional<T> o) {
  return o.value_or(T{});
}
}  // namespace

TEST(tag_matcher_keeps_order_per_tag_whichever_side_comes_first) {
  TagMatcher<int, std::string> m;
  CHECK(!m.takePosted(5).has_value());
  CHECK(!m.takeArrival(5).has_value());
  // Arrivals first: taken oldest first.
  for (int k = 0; k < 10; ++k) m.holdArrival(5, k);
  CHECK_EQ(m.heldArrivals(), size_t{10});
  for (int k = 0; k < 10; ++k) {
    auto a = m.takeArrival(5);
    CHECK(a.has_value());
    if (a) CHECK_EQ(*a, k);
  }
  CHECK(!m.takeArrival(5).has_value());
  CHECK_EQ(m.heldArrivals(), size_t{0});
  // Receives first: matched oldest first.
  m.holdPosted(9, "a");
  m.holdPosted(9, "b");
  CHECK_EQ(val(m.takePosted(9)), std::string("a"));
  CHECK_EQ(val(m.takePosted(9)), std::string("b"));
  CHECK_EQ(m.heldPosted(), size_t{0});
}

TEST(tag_matcher_tags_and_communicators_are_independent) {
  TagMatcher<int, int> m;
  // Keys are (communicator << 32) | tag: the same tag in another communicator is another queue.
  const uint64_t a = 7, b = (uint64_t{1} << 32) | 7;
  m.holdArrival(a, 1);
  m.holdArrival(b, 2);
  m.holdArrival(0x7fffffff, 3);
  CHECK_EQ(val(m.takeArrival(0x7fffffff)), 3);  // any order across tags
  CHECK_EQ(val(m.takeArrival(b)), 2);
  CHECK_EQ(val(m.takeArrival(a)), 1);
}

TEST(tag_matcher_random_interleavings_match_fifo_per_tag) {
  uint64_t s = 4242;
  TagMatcher<int, int> m;
  std::vector<int> sent(8, 0), taken(8, 0);
  int bad = 0;
  for (int step = 0; step < 20000; ++step) {
    uint64_t tag = reference::splitmix(s) % 8;
    if (reference::splitmix(s) % 2) {
      // A message arrives: it meets the oldest waiting receive, or is held.
      int seq = sent[tag]++;
      auto p = m.takePosted(tag);
      if (p) bad += *p != seq;
      else m.holdArrival(tag, seq);
    } else {
      int want = taken[tag]++;
      auto a = m.takeArrival(tag);
      if (a) bad += *a != want;
      else m.holdPosted(tag, want);
    }
  }
  CHECK_EQ(bad, 0);
  // Whatever is left on one side is never also left on the other, per tag.
  size_t posted = m.heldPosted();
  std::vector<int> drained = m.drainPosted();
  CHECK_EQ(drained.size(), posted);
  CHECK_EQ(m.heldPosted(), size_t{0});
}

TEST(tag_matcher_drop_arrivals_if_keeps_the_rest_in_order) {
  TagMatcher<int, int> m;
  for (int k = 0; k < 6; ++k) m.holdArrival(1, k);
  m.dropArrivalsIf([](int v) { return v % 2 == 1; });
  CHECK_EQ(m.heldArrivals(), size_t{3});
  CHECK_EQ(val(m.takeArrival(1)), 0);
  CHECK_EQ(val(m.takeArrival(1)), 2);
  CHECK_EQ(val(m.takeArrival(1)), 4);
  CHECK(!m.takeArrival(1).has_value());
}

TEST(p2p_frame_round_trips_and_refuses_what_is_not_a_frame) {
  uint64_t s = 7;
  for (int iter = 0; iter < 1000; ++iter) {
    p2p::Frame f;
    f.type = static_cast<p2p::FrameType>(1 + reference::splitmix(s) % 9);  // Eager .. Abort
    f.dtype = static_cast<uint8_t>(reference::splitmix(s) % 8);
    f.comm = static_cast<uint16_t>(reference::splitmix(s));
    f.tag = static_cast<uint32_t>(reference::splitmix(s)) & p2p::kMaxTag;
    f.id = static_cast<uint32_t>(reference::splitmix(s));
    f.bytes = reference::splitmix(s);
    uint8_t buf[p2p::Frame::kSize];
    f.encode(buf);
    p2p::Frame d;
    CHECK(d.decode(buf));
    CHECK(d.type == f.type && d.dtype == f.dtype && d.comm == f.comm && d.tag == f.tag && d.id == f.id && d.bytes == f.bytes);
    uint8_t bad[p2p::Frame::kSize];
    std::memcpy(bad, buf, sizeof bad);
    bad[iter % 4] ^= 0x10;  // wrong magic
    CHECK(!d.decode(bad));
    std::memcpy(bad, buf, sizeof bad);
    bad[4] = static_cast<uint8_t>(iter % 2 ? 0 : 10 + iter % 200);  // unknown frame type (Abort = 9 is the last)
    CHECK(!d.decode(bad));
  }
  CHECK_EQ(p2p::Frame::kSize, size_t{24});
  CHECK(p2p::kEagerBytes <= p2p::kEagerBudgetBytes);
}
