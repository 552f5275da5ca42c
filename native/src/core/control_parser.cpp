#include "control_parser.h"

#include <algorithm>

namespace ringtrain {

void encodeControl(std::vector<uint8_t>& out, wire::ControlType type, uint32_t origin, const std::string& text) {
  const size_t len = std::min(text.size(), wire::kMaxControlPayload);
  uint8_t h[wire::kControlHeaderSize];
  wire::put32(h, wire::kControlMagic);
  h[4] = static_cast<uint8_t>(type);
  h[5] = 0;
  wire::put16(h + 6, static_cast<uint16_t>(len));
  wire::put32(h + 8, origin);
  out.insert(out.end(), h, h + sizeof h);
  out.insert(out.end(), text.begin(), text.begin() + static_cast<long>(len));
}

bool ControlParser::feed(const uint8_t* data, size_t len, std::vector<ControlMessage>& out) {
  size_t i = 0;
  while (i < len) {
    if (!inPayload_) {
      size_t take = std::min(len - i, wire::kControlHeaderSize - have_);
      std::copy(data + i, data + i + take, header_ + have_);
      have_ += take;
      i += take;
      if (have_ < wire::kControlHeaderSize) break;
      const uint8_t type = header_[4];
      payloadLen_ = wire::get16(header_ + 6);
      if (wire::get32(header_) != wire::kControlMagic || type < 1 || type > 3 || payloadLen_ > wire::kMaxControlPayload) {
        return false;
      }
      inPayload_ = true;
      payload_.clear();
    }
    size_t take = std::min(len - i, payloadLen_ - payload_.size());
    payload_.append(reinterpret_cast<const char*>(data + i), take);
    i += take;
    if (payload_.size() == payloadLen_) {
      ControlMessage m;
      m.type = static_cast<wire::ControlType>(header_[4]);
      m.origin = wire::get32(header_ + 8);
      m.text = std::move(payload_);
      out.push_back(std::move(m));
      payload_.clear();
      have_ = 0;
      inPayload_ = false;
    }
  }
  return true;
}

}  // namespace ringtrain
