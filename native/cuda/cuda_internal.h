// Internal to the CUDA implementation (may name CUDA types; never included by the core or addon).
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>

#include "device_api.h"
#include "kernel_logic.h"

namespace ringtrain::cuda::detail {

/** Throws CudaError for err, with `what` (the failed step) and CUDA's name and text for err. */
[[noreturn]] void throw_cuda(cudaError_t err, const char* what);

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw_cuda(err, what);
}

/** Throws unless a GPU is usable; returns `device`, or the current device when device < 0. */
int resolve_device(int device);
/** resolve_device + cudaSetDevice on the calling thread. */
int enter_device(int device);
int sm_count(int device);

/** The stream to enqueue on: the caller's, or the calling thread's per-thread stream. */
inline cudaStream_t stream_of(Stream* s) {
  return s != nullptr ? static_cast<cudaStream_t>(s->native()) : cudaStreamPerThread;
}
/** Polls until all work on st has finished; throws Timeout or the work's error. */
void wait_stream(cudaStream_t st, std::chrono::milliseconds timeout, const char* what);
/** Polls until ev has completed; throws Timeout or the work's error. */
void wait_event(cudaEvent_t ev, std::chrono::milliseconds timeout, const char* what);
/** After enqueueing on stream_of(s): for s == nullptr, waits (default_timeout()). */
inline void finish(Stream* s, const char* what) {
  if (s == nullptr) wait_stream(cudaStreamPerThread, default_timeout(), what);
}

void check_not_null(uint64_t ptr, const char* name);

// Kernel launchers (elementwise.cu, batched_copy.cu). Validate, enqueue, check the launch.
void launch_reduce(uint64_t dst, uint64_t src, size_t count, Dtype dtype, ReduceOp op,
                   int device, cudaStream_t st);
void launch_reduce_mixed(uint64_t dst_f32, uint64_t src, Dtype src_dtype, size_t count,
                         ReduceOp op, int device, cudaStream_t st);
void launch_finalize_avg(uint64_t data, size_t count, Dtype dtype, int divisor, int device,
                         cudaStream_t st);
void launch_convert(uint64_t dst, Dtype dst_dtype, uint64_t src, Dtype src_dtype, size_t count,
                    int device, cudaStream_t st);
void launch_batched_copy(const logic::CopyDesc* device_descs, uint32_t count,
                         uint64_t total_chunks, int device, cudaStream_t st);

}  // namespace ringtrain::cuda::detail
