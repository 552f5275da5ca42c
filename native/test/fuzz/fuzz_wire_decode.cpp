// libFuzzer target: decoding of every fixed-layout wire message from untrusted bytes: the handshake
// Hello (first bytes a stranger sends to a ring listener), the Challenge (what a dialled peer
// answers), the CollectiveHeader (first bytes of every collective), and the names used to describe
// a peer's header in error messages. Decoding must accept exactly the right magic, and whatever it
// accepts must encode back to the same bytes.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "dtype.h"
#include "wire_format.h"

using namespace ringtrain;

namespace {
void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_wire_decode: invariant broken: %s\n", what);
    std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= wire::Hello::kSize) {
    wire::Hello h;
    const bool ok = h.decode(data);
    require(ok == (wire::get32(data) == wire::kHelloMagic), "Hello accepted a wrong magic or refused the right one");
    if (ok) {
      uint8_t back[wire::Hello::kSize];
      h.encode(back);
      require(std::memcmp(back, data, sizeof back) == 0, "Hello does not re-encode to the same bytes");
    }
  }
  if (size >= wire::Challenge::kSize) {
    wire::Challenge c;
    const bool ok = c.decode(data);
    require(ok == (wire::get32(data) == wire::kChallengeMagic), "Challenge accepted a wrong magic or refused the right one");
    if (ok) {
      uint8_t back[wire::Challenge::kSize];
      c.encode(back);
      require(std::memcmp(back, data, sizeof back) == 0, "Challenge does not re-encode to the same bytes");
    }
  }
  if (size >= wire::CollectiveHeader::kSize) {
    wire::CollectiveHeader h;
    const bool ok = h.decode(data);
    require(ok == (wire::get32(data) == wire::kHeaderMagic), "CollectiveHeader accepted a wrong magic or refused the right one");
    if (ok) {
      uint8_t back[wire::CollectiveHeader::kSize];
      h.encode(back);
      require(std::memcmp(back, data, 7) == 0 && std::memcmp(back + 8, data + 8, sizeof back - 8) == 0,
              "CollectiveHeader does not re-encode to the same bytes");
      wire::CollectiveHeader same;
      require(same.decode(back) && same == h, "CollectiveHeader round trip changed a field");
      // What an error message says about a peer's header: any byte values must be nameable.
      std::string text = std::string(wire::kindName(h.kind)) + dtypeName(static_cast<Dtype>(h.dtype)) + opName(static_cast<ReduceOp>(h.op));
      require(!text.empty(), "empty name");
      if (validDtype(h.dtype)) require(dtypeSize(static_cast<Dtype>(h.dtype)) >= 1, "dtype without a size");
    }
  }
  return 0;
}
