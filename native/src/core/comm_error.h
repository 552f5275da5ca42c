// The one exception type the core throws; `code` maps 1:1 to the JS error codes (ERR_RINGTRAIN_*).
#pragma once
#include <stdexcept>
#include <string>

namespace ringtrain {

enum class ErrorCode { Timeout, Peer, Mismatch, Auth, Closed, Argument, Internal, Cancelled };

inline const char* errorCodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::Timeout: return "ERR_RINGTRAIN_TIMEOUT";
    case ErrorCode::Peer: return "ERR_RINGTRAIN_PEER";
    case ErrorCode::Mismatch: return "ERR_RINGTRAIN_MISMATCH";
    case ErrorCode::Auth: return "ERR_RINGTRAIN_AUTH";
    case ErrorCode::Closed: return "ERR_RINGTRAIN_CLOSED";
    case ErrorCode::Argument: return "ERR_RINGTRAIN_ARGUMENT";
    case ErrorCode::Internal: return "ERR_RINGTRAIN_INTERNAL";
    case ErrorCode::Cancelled: return "ERR_RINGTRAIN_CLOSED";
  }
  return "ERR_RINGTRAIN_INTERNAL";
}

class CommError : public std::runtime_error {
 public:
  CommError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace ringtrain
