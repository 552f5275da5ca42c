// Parts of device_api.h that need no GPU: compiled into both the CUDA build and the stub build.
#include <atomic>

#include "device_api.h"

namespace ringtrain::cuda {

size_t dtype_size(Dtype dtype) {
  switch (dtype) {
    case Dtype::Float32: return 4;
    case Dtype::Float64: return 8;
    case Dtype::Int32: return 4;
    case Dtype::Int8: return 1;
    case Dtype::Uint8: return 1;
    case Dtype::Int64: return 8;
    case Dtype::Float16: return 2;
    case Dtype::BFloat16: return 2;
  }
  throw CudaError(CudaError::Kind::InvalidArgument,
                  "unknown dtype value " + std::to_string(static_cast<int>(dtype)));
}

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::Float32: return "float32";
    case Dtype::Float64: return "float64";
    case Dtype::Int32: return "int32";
    case Dtype::Int8: return "int8";
    case Dtype::Uint8: return "uint8";
    case Dtype::Int64: return "int64";
    case Dtype::Float16: return "float16";
    case Dtype::BFloat16: return "bfloat16";
  }
  return "unknown-dtype";
}

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Avg: return "avg";
    case ReduceOp::Min: return "min";
    case ReduceOp::Max: return "max";
    case ReduceOp::Prod: return "prod";
  }
  return "unknown-op";
}

namespace {
std::atomic<int64_t> g_default_timeout_ms{60000};
}

std::chrono::milliseconds default_timeout() noexcept {
  return std::chrono::milliseconds(g_default_timeout_ms.load(std::memory_order_relaxed));
}

void set_default_timeout(std::chrono::milliseconds timeout) noexcept {
  g_default_timeout_ms.store(timeout.count() > 0 ? timeout.count() : 1, std::memory_order_relaxed);
}

}  // namespace ringtrain::cuda
