// batched_copy.h's fusion buffer layout: needs no GPU, so the CPU logic test uses it too.
#include <string>

#include "batched_copy.h"

namespace ringtrain::cuda {

std::vector<uint64_t> fusion_offsets(const uint64_t* sizes, size_t count, size_t alignment,
                                     uint64_t* total_bytes) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    throw CudaError(CudaError::Kind::InvalidArgument,
                    "fusion_offsets: alignment must be a power of two, got " +
                        std::to_string(alignment));
  }
  if (count > 0 && sizes == nullptr) {
    throw CudaError(CudaError::Kind::InvalidArgument, "fusion_offsets: sizes is null");
  }
  std::vector<uint64_t> offsets(count);
  uint64_t at = 0;
  const uint64_t mask = alignment - 1;
  for (size_t i = 0; i < count; ++i) {
    at = (at + mask) & ~mask;
    offsets[i] = at;
    at += sizes[i];
  }
  if (total_bytes != nullptr) *total_bytes = at;
  return offsets;
}

}  // namespace ringtrain::cuda
