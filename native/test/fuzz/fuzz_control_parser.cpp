// libFuzzer target: the reverse-direction control stream parser (ControlParser::feed), which reads
// bytes from the right neighbour. Two halves per input:
//  1. the raw bytes, fed in fuzzer-chosen chunks: must never crash or over-read, every message it
//     yields must be well-formed (known type, text within kMaxControlPayload), and after it reports
//     corruption nothing more is delivered;
//  2. a round trip: messages described by the input are framed with encodeControl and parsed back
//     through arbitrary splits; what comes out must equal what went in (text cut to the limit).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "control_parser.h"

using namespace ringtrain;

namespace {
void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_control_parser: invariant broken: %s\n", what);
    std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const bool raw = in.ConsumeBool();
  if (raw) {
    std::vector<uint8_t> bytes = in.ConsumeRemainingBytes<uint8_t>();
    ControlParser p;
    std::vector<ControlMessage> out;
    size_t i = 0, chunk = bytes.empty() ? 1 : 1 + bytes[0] % 17;
    bool ok = true;
    while (i < bytes.size() && ok) {
      const size_t n = std::min(chunk, bytes.size() - i);
      const size_t before = out.size();
      ok = p.feed(bytes.data() + i, n, out);
      for (size_t k = before; k < out.size(); ++k) {
        const int t = static_cast<int>(out[k].type);
        require(t >= 1 && t <= 3, "unknown control type delivered");
        require(out[k].text.size() <= wire::kMaxControlPayload, "payload over the limit delivered");
      }
      i += n;
      chunk = 1 + (chunk * 7 + 3) % 61;
    }
    return 0;
  }

  // Round trip.
  std::vector<ControlMessage> sent;
  std::vector<uint8_t> stream;
  const int count = in.ConsumeIntegralInRange<int>(0, 8);
  for (int m = 0; m < count; ++m) {
    ControlMessage msg;
    msg.type = static_cast<wire::ControlType>(in.ConsumeIntegralInRange<int>(1, 3));
    msg.origin = in.ConsumeIntegral<uint32_t>();
    const size_t len = in.ConsumeIntegralInRange<size_t>(0, 3000);
    msg.text = in.ConsumeBytesAsString(len);
    if (in.ConsumeBool()) msg.text.append(in.ConsumeIntegralInRange<size_t>(0, 4000), 'p');
    encodeControl(stream, msg.type, msg.origin, msg.text);
    if (msg.text.size() > wire::kMaxControlPayload) msg.text.resize(wire::kMaxControlPayload);
    sent.push_back(std::move(msg));
  }
  ControlParser p;
  std::vector<ControlMessage> got;
  size_t i = 0;
  while (i < stream.size()) {
    const size_t n = std::min(stream.size() - i, in.ConsumeIntegralInRange<size_t>(1, 4096));
    require(p.feed(stream.data() + i, n, got), "a well-formed stream was called corrupt");
    i += n;
  }
  require(got.size() == sent.size(), "message count differs after the round trip");
  for (size_t k = 0; k < sent.size(); ++k) {
    require(got[k].type == sent[k].type && got[k].origin == sent[k].origin && got[k].text == sent[k].text,
            "a message changed in the round trip");
  }
  return 0;
}
