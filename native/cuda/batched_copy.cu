// Batched device-to-device copy: many segments, one kernel launch.
//
// Geometry: the segments' bytes are cut in 16 KiB chunks (kernel_logic.h); a grid of exactly as many
// blocks as fit on the GPU at once (occupancy × SMs, so there is no second wave to wait for) takes
// the chunks in contiguous, equal runs. Every block thus moves the same number of bytes whatever
// the mix of segment sizes, and reads/writes sequential memory within its run.
#include <array>
#include <atomic>
#include <utility>

#include "batched_copy.h"
#include "cuda_internal.h"

namespace ringtrain::cuda {
namespace detail {
namespace {

__global__ void __launch_bounds__(logic::kCopyThreads)
    batched_copy_kernel(const logic::CopyDesc* descs, uint32_t n, uint64_t total_chunks) {
  logic::copy_block(descs, n, total_chunks, blockIdx.x, gridDim.x, threadIdx.x);
}

int resident_blocks(int device) {
  static std::array<std::atomic<int>, 64> cache{};
  if (device >= 0 && device < static_cast<int>(cache.size())) {
    const int cached = cache[device].load(std::memory_order_relaxed);
    if (cached > 0) return cached;
  }
  int per_sm = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, batched_copy_kernel,
                                                      logic::kCopyThreads, 0),
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  if (per_sm <= 0) per_sm = 1;
  const int blocks = per_sm * sm_count(device);
  if (device >= 0 && device < static_cast<int>(cache.size())) cache[device].store(blocks);
  return blocks;
}

}  // namespace

void launch_batched_copy(const logic::CopyDesc* device_descs, uint32_t count,
                         uint64_t total_chunks, int device, cudaStream_t st) {
  if (count == 0 || total_chunks == 0) return;
  uint64_t grid = static_cast<uint64_t>(resident_blocks(device));
  if (grid > total_chunks) grid = total_chunks;
  batched_copy_kernel<<<static_cast<unsigned>(grid), logic::kCopyThreads, 0, st>>>(
      device_descs, count, total_chunks);
  check(cudaGetLastError(), "batched copy kernel launch");
}

}  // namespace detail

// Lifetime of the descriptor arrays: the pinned host array is read by an async H2D copy, so it is
// rewritten only after `uploaded` fired; the device array is read by the kernel, so a later upload
// into it (maybe on another stream) first waits for `done` on the GPU, and growing it (cudaFree)
// first waits for `done` on the host.
struct BatchedCopier::Impl {
  int device = -1;
  size_t capacity = 0;
  logic::CopyDesc* host = nullptr;    // cudaMallocHost
  logic::CopyDesc* dev = nullptr;     // cudaMalloc
  cudaEvent_t uploaded = nullptr;
  cudaEvent_t done = nullptr;
  bool used = false;

  void release() noexcept {
    if (host != nullptr) cudaFreeHost(host);
    if (dev != nullptr) cudaFree(dev);
    host = nullptr;
    dev = nullptr;
    capacity = 0;
  }

  void reserve(size_t n) {
    if (n <= capacity) return;
    size_t cap = capacity == 0 ? 64 : capacity;
    while (cap < n) cap *= 2;
    if (used) detail::wait_event(done, default_timeout(), "BatchedCopier: previous copy");
    release();
    detail::check(cudaMallocHost(reinterpret_cast<void**>(&host), cap * sizeof(logic::CopyDesc)),
                  "cudaMallocHost (copy descriptors)");
    detail::check(cudaMalloc(reinterpret_cast<void**>(&dev), cap * sizeof(logic::CopyDesc)),
                  "cudaMalloc (copy descriptors)");
    capacity = cap;
  }

  /** fill(i) → CopySegment for i < count; validates, uploads, launches. */
  template <class Fill>
  void submit(size_t count, Fill fill, Stream* stream) {
    detail::check(cudaSetDevice(device), "cudaSetDevice");
    if (stream != nullptr && stream->device() != device) {
      throw CudaError(CudaError::Kind::InvalidArgument,
                      "BatchedCopier: stream is on device " + std::to_string(stream->device()) +
                          " but the copier on device " + std::to_string(device));
    }
    if (count == 0) return;
    if (count > UINT32_MAX) {
      throw CudaError(CudaError::Kind::InvalidArgument, "BatchedCopier: more than 2^32 segments");
    }
    if (used) detail::wait_event(uploaded, default_timeout(), "BatchedCopier: previous descriptor upload");
    reserve(count);
    uint64_t chunks = 0;
    for (size_t i = 0; i < count; ++i) {
      const CopySegment s = fill(i);
      if (s.bytes != 0 && (s.src == 0 || s.dst == 0)) {
        throw CudaError(CudaError::Kind::InvalidArgument,
                        "BatchedCopier: segment " + std::to_string(i) + " has a null pointer");
      }
      host[i] = logic::CopyDesc{s.src, s.dst, s.bytes, chunks};
      chunks += logic::copy_chunks(s.dst, s.bytes);
    }
    const cudaStream_t st = detail::stream_of(stream);
    if (used) detail::check(cudaStreamWaitEvent(st, done, 0), "cudaStreamWaitEvent");
    detail::check(cudaMemcpyAsync(dev, host, count * sizeof(logic::CopyDesc),
                                  cudaMemcpyHostToDevice, st),
                  "cudaMemcpyAsync (copy descriptors)");
    detail::check(cudaEventRecord(uploaded, st), "cudaEventRecord");
    detail::launch_batched_copy(dev, static_cast<uint32_t>(count), chunks, device, st);
    detail::check(cudaEventRecord(done, st), "cudaEventRecord");
    used = true;
    detail::finish(stream, "BatchedCopier::copy");
  }
};

BatchedCopier::BatchedCopier(size_t initial_segments, int device) : impl_(new Impl) {
  impl_->device = detail::enter_device(device);
  detail::check(cudaEventCreateWithFlags(&impl_->uploaded, cudaEventDisableTiming), "cudaEventCreate");
  detail::check(cudaEventCreateWithFlags(&impl_->done, cudaEventDisableTiming), "cudaEventCreate");
  impl_->reserve(initial_segments);
}

BatchedCopier::~BatchedCopier() {
  if (!impl_) return;
  cudaSetDevice(impl_->device);
  if (impl_->used) {
    try {
      detail::wait_event(impl_->done, default_timeout(), "~BatchedCopier");
    } catch (...) {
      // The GPU failed or hung: freeing is still the best we can do in a destructor.
    }
  }
  impl_->release();
  if (impl_->uploaded != nullptr) cudaEventDestroy(impl_->uploaded);
  if (impl_->done != nullptr) cudaEventDestroy(impl_->done);
}

void BatchedCopier::copy(const CopySegment* segments, size_t count, Stream* stream) {
  if (count > 0 && segments == nullptr) {
    throw CudaError(CudaError::Kind::InvalidArgument, "BatchedCopier::copy: segments is null");
  }
  impl_->submit(count, [segments](size_t i) { return segments[i]; }, stream);
}

void BatchedCopier::gather(const uint64_t* srcs, const uint64_t* sizes, const uint64_t* offsets,
                           size_t count, uint64_t fusion, Stream* stream) {
  if (count > 0 && (srcs == nullptr || sizes == nullptr || offsets == nullptr)) {
    throw CudaError(CudaError::Kind::InvalidArgument, "BatchedCopier::gather: null array");
  }
  detail::check_not_null(fusion, "BatchedCopier::gather fusion");
  impl_->submit(
      count, [&](size_t i) { return CopySegment{srcs[i], fusion + offsets[i], sizes[i]}; }, stream);
}

void BatchedCopier::scatter(uint64_t fusion, const uint64_t* offsets, const uint64_t* sizes,
                            const uint64_t* dsts, size_t count, Stream* stream) {
  if (count > 0 && (dsts == nullptr || sizes == nullptr || offsets == nullptr)) {
    throw CudaError(CudaError::Kind::InvalidArgument, "BatchedCopier::scatter: null array");
  }
  detail::check_not_null(fusion, "BatchedCopier::scatter fusion");
  impl_->submit(
      count, [&](size_t i) { return CopySegment{fusion + offsets[i], dsts[i], sizes[i]}; }, stream);
}

}  // namespace ringtrain::cuda
