// The reverse-direction control stream (heartbeats, aborts, goodbyes): framing and parsing.
// Separate from the ring so it can be fuzzed: it must never crash, over-read or allocate more than
// kMaxControlPayload, whatever bytes arrive.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "wire_format.h"

namespace ringtrain {

struct ControlMessage {
  wire::ControlType type = wire::ControlType::Heartbeat;
  uint32_t origin = 0;
  std::string text;
};

// Appends one framed message to `out` (text is cut at kMaxControlPayload).
void encodeControl(std::vector<uint8_t>& out, wire::ControlType type, uint32_t origin, const std::string& text);

class ControlParser {
 public:
  // Consumes `len` bytes; appends every completed message to `out`. Returns false (and stops
  // consuming) on a corrupt stream: bad magic, unknown type, or an oversized payload.
  bool feed(const uint8_t* data, size_t len, std::vector<ControlMessage>& out);

 private:
  uint8_t header_[wire::kControlHeaderSize] = {};
  size_t have_ = 0;
  bool inPayload_ = false;
  std::string payload_;
  size_t payloadLen_ = 0;
};

}  // namespace ringtrain
