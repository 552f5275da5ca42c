// batched_copy.h for builds without CUDA: every call throws CudaError{NotBuilt}, as the device
// API's stub does.
#include <string>

#include "batched_copy.h"

namespace ringtrain::cuda {
namespace {

[[noreturn]] void not_built(const char* what) {
  throw CudaError(CudaError::Kind::NotBuilt, std::string(what) +
                                                 ": ringtrain was built without CUDA (RINGTRAIN_CUDA=OFF or no CUDA "
                                                 "compiler at build time), so the GPU device API is unavailable");
}

}  // namespace

struct BatchedCopier::Impl {};
BatchedCopier::BatchedCopier(size_t, int) { not_built("BatchedCopier"); }
BatchedCopier::~BatchedCopier() = default;
void BatchedCopier::copy(const CopySegment*, size_t, Stream*) { not_built("BatchedCopier::copy"); }
void BatchedCopier::gather(const uint64_t*, const uint64_t*, const uint64_t*, size_t, uint64_t,
                           Stream*) {
  not_built("BatchedCopier::gather");
}
void BatchedCopier::scatter(uint64_t, const uint64_t*, const uint64_t*, const uint64_t*, size_t,
                            Stream*) {
  not_built("BatchedCopier::scatter");
}

}  // namespace ringtrain::cuda
