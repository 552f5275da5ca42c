// Batched device-to-device copy (gather into / scatter out of a fusion buffer in one kernel launch).
// Not part of the shipped addon, which never calls it: only the CUDA tests and the bench build it
// (CMake target ringtrain_cuda_batched_copy; its stub in a build without CUDA says so).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "device_api.h"

namespace ringtrain::cuda {

// ---------------------------------------------------------------------------------------------
// Batched copy: many (src, dst, bytes) segments in one kernel launch
// ---------------------------------------------------------------------------------------------

/** One device-to-device copy. Regions of different segments must not overlap each other's dst. */
struct CopySegment {
  uint64_t src;
  uint64_t dst;
  uint64_t bytes;
};

/**
 * Offsets at which to pack tensors of the given byte sizes into one fusion buffer, each rounded up
 * to `alignment` (a power of two; 16 lets the copy kernel use 16-byte loads and stores on both sides
 * whenever the tensors themselves are 16-byte aligned, as cudaMalloc'd tensors are). Returns the
 * offsets; *total_bytes receives the buffer size needed.
 */
std::vector<uint64_t> fusion_offsets(const uint64_t* sizes, size_t count, size_t alignment,
                                     uint64_t* total_bytes);

/**
 * Copies many segments with one kernel launch (plus one small descriptor upload). Work is split in
 * 16 KiB chunks spread evenly over a grid sized to the GPU, so 1,000 segments of mixed sizes keep
 * every SM busy. 16-byte vector loads/stores where source and destination agree modulo 16; 8- or
 * 4-byte loads, or aligned 4-byte loads merged with funnel shifts, where they do not.
 *
 * Lifetime: the copier owns a pinned host descriptor array and a device descriptor array, grown
 * geometrically and reused by later calls, never allocated per call once large enough. copy() waits
 * (bounded) until the previous call's descriptor upload has finished before overwriting them, so a
 * copier may be reused immediately; the segments' memory must stay valid until the stream has run
 * the copy. Destroying the copier waits for its last upload.
 */
class BatchedCopier {
 public:
  explicit BatchedCopier(size_t initial_segments = 1024, int device = -1);
  ~BatchedCopier();
  BatchedCopier(const BatchedCopier&) = delete;
  BatchedCopier& operator=(const BatchedCopier&) = delete;

  /** Enqueues the copies (stream == nullptr: synchronous). count == 0 is a no-op. */
  void copy(const CopySegment* segments, size_t count, Stream* stream = nullptr);
  /** gather: tensor i (srcs[i], sizes[i]) → fusion + offsets[i]. */
  void gather(const uint64_t* srcs, const uint64_t* sizes, const uint64_t* offsets, size_t count,
              uint64_t fusion, Stream* stream = nullptr);
  /** scatter: fusion + offsets[i] → tensor i (dsts[i], sizes[i]). */
  void scatter(uint64_t fusion, const uint64_t* offsets, const uint64_t* sizes,
               const uint64_t* dsts, size_t count, Stream* stream = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringtrain::cuda
