// DeviceStager: pinned host slots + device scratch + three streams, for pipelining a ring
// all-reduce of device memory (see the contract in device_api.h).
//
// Streams: d2h (downloads, and the narrowing convert that precedes a compressed download), h2d
// (uploads), compute (reductions, widening converts, finalize_avg). Events per slot: host_free
// (the slot's pinned bytes are no longer touched by the GPU) and device_done (the slot's device
// scratch is no longer touched). Two "write fence" events, recorded after every operation that
// writes caller device memory on compute / h2d, order downloads after those writes.
#include <utility>
#include <vector>

#include "cuda_internal.h"

namespace ringtrain::cuda {

using detail::check;

struct DeviceStager::Impl {
  int device = -1;
  size_t slot_bytes = 0;
  size_t host_stride = 0;
  size_t dev_stride = 0;
  int slots = 0;
  std::chrono::milliseconds timeout{60000};

  uint8_t* host = nullptr;  // cudaHostAlloc, slots * host_stride
  uint64_t scratch = 0;     // cudaMalloc, slots * dev_stride
  cudaStream_t d2h = nullptr, h2d = nullptr, compute = nullptr;
  std::vector<cudaEvent_t> host_free, device_done;
  std::vector<bool> recorded;  // the slot's events have been recorded at least once
  cudaEvent_t compute_write = nullptr, h2d_write = nullptr;
  bool compute_written = false, h2d_written = false;

  void destroy() noexcept {
    cudaSetDevice(device);
    for (cudaEvent_t e : host_free) cudaEventDestroy(e);
    for (cudaEvent_t e : device_done) cudaEventDestroy(e);
    host_free.clear();
    device_done.clear();
    if (compute_write != nullptr) cudaEventDestroy(compute_write);
    if (h2d_write != nullptr) cudaEventDestroy(h2d_write);
    for (cudaStream_t s : {d2h, h2d, compute}) {
      if (s != nullptr) cudaStreamDestroy(s);
    }
    d2h = h2d = compute = nullptr;
    if (host != nullptr) cudaFreeHost(host);
    host = nullptr;
    device_free(scratch);
    scratch = 0;
    cudaGetLastError();
  }

  void check_slot(int slot, const char* what) const {
    if (slot < 0 || slot >= slots) {
      throw CudaError(CudaError::Kind::InvalidArgument,
                      std::string(what) + ": slot " + std::to_string(slot) + " out of range [0, " +
                          std::to_string(slots) + ")");
    }
  }

  /** The caller must have waited for the slot's previous operation (see device_api.h). */
  void check_slot_free(int slot, const char* what) const {
    if (!recorded[slot]) return;
    const cudaError_t err = cudaEventQuery(host_free[slot]);
    if (err == cudaErrorNotReady) {
      throw CudaError(CudaError::Kind::InvalidArgument,
                      std::string(what) + ": slot " + std::to_string(slot) +
                          " is still in use by the GPU; call wait(" + std::to_string(slot) +
                          ") before reusing it");
    }
    check(err, what);
  }

  size_t wire_bytes(size_t count, Dtype dtype, Dtype wire, const char* what) const {
    if (wire != dtype && !(dtype == Dtype::Float32 &&
                           (wire == Dtype::Float16 || wire == Dtype::BFloat16))) {
      throw CudaError(CudaError::Kind::InvalidArgument,
                      std::string(what) + ": wire type " + dtype_name(wire) + " for data of type " +
                          dtype_name(dtype) +
                          " (compression is float32 data as float16 or bfloat16 only)");
    }
    const size_t bytes = count * dtype_size(wire);
    if (count > slot_bytes || bytes > slot_bytes) {
      throw CudaError(CudaError::Kind::InvalidArgument,
                      std::string(what) + ": " + std::to_string(count) + " elements of " +
                          dtype_name(wire) + " do not fit a slot of " +
                          std::to_string(slot_bytes) + " bytes");
    }
    return bytes;
  }

  void* host_at(int slot) const { return host + static_cast<size_t>(slot) * host_stride; }
  uint64_t scratch_at(int slot) const { return scratch + static_cast<uint64_t>(slot) * dev_stride; }

  void wait_for(cudaStream_t st, cudaEvent_t ev, bool valid) const {
    if (valid) check(cudaStreamWaitEvent(st, ev, 0), "cudaStreamWaitEvent");
  }
  void record(cudaEvent_t ev, cudaStream_t st) const {
    check(cudaEventRecord(ev, st), "cudaEventRecord");
  }
  void enter() const { check(cudaSetDevice(device), "cudaSetDevice"); }

  /** The checks every staged transfer starts with, on this stager's device; returns its wire bytes. */
  size_t begin_transfer(int slot, uint64_t device_ptr, size_t count, Dtype dtype, Dtype wire,
                        const char* what) const {
    check_slot(slot, what);
    const size_t bytes = wire_bytes(count, dtype, wire, what);
    if (count > 0) detail::check_not_null(device_ptr, what);
    enter();
    check_slot_free(slot, what);
    return bytes;
  }
};

DeviceStager::DeviceStager(const Options& options) : impl_(new Impl) {
  Impl& m = *impl_;
  if (options.slot_bytes == 0) {
    throw CudaError(CudaError::Kind::InvalidArgument, "DeviceStager: slot_bytes must be > 0");
  }
  if (options.slots < 1 || options.slots > 64) {
    throw CudaError(CudaError::Kind::InvalidArgument,
                    "DeviceStager: slots must be in [1, 64], got " + std::to_string(options.slots));
  }
  m.device = detail::enter_device(options.device);
  m.slot_bytes = options.slot_bytes;
  m.slots = options.slots;
  m.timeout = options.timeout.count() > 0 ? options.timeout : default_timeout();
  m.host_stride = (m.slot_bytes + 4095) & ~size_t{4095};
  m.dev_stride = (m.slot_bytes + 255) & ~size_t{255};
  try {
    void* h = nullptr;
    check(cudaHostAlloc(&h, m.host_stride * m.slots, cudaHostAllocPortable),
          "cudaHostAlloc (staging slots)");
    m.host = static_cast<uint8_t*>(h);
    m.scratch = device_alloc(m.dev_stride * m.slots, m.device);
    for (cudaStream_t* s : {&m.d2h, &m.h2d, &m.compute}) {
      check(cudaStreamCreateWithFlags(s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    }
    m.host_free.resize(m.slots, nullptr);
    m.device_done.resize(m.slots, nullptr);
    m.recorded.assign(m.slots, false);
    for (int i = 0; i < m.slots; ++i) {
      check(cudaEventCreateWithFlags(&m.host_free[i], cudaEventDisableTiming), "cudaEventCreate");
      check(cudaEventCreateWithFlags(&m.device_done[i], cudaEventDisableTiming), "cudaEventCreate");
    }
    check(cudaEventCreateWithFlags(&m.compute_write, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventCreateWithFlags(&m.h2d_write, cudaEventDisableTiming), "cudaEventCreate");
  } catch (...) {
    m.destroy();
    throw;
  }
}

DeviceStager::~DeviceStager() {
  if (!impl_) return;
  try {
    synchronize();
  } catch (...) {
    // A failed or hung GPU: free what we can; the driver reclaims the rest at exit.
  }
  impl_->destroy();
}

size_t DeviceStager::slot_bytes() const noexcept { return impl_->slot_bytes; }
int DeviceStager::slot_count() const noexcept { return impl_->slots; }
int DeviceStager::device() const noexcept { return impl_->device; }

void* DeviceStager::host_slot(int slot) const {
  impl_->check_slot(slot, "DeviceStager::host_slot");
  return impl_->host_at(slot);
}

void DeviceStager::start_download(int slot, uint64_t device_src, size_t count, Dtype dtype,
                                  Dtype wire_dtype) {
  Impl& m = *impl_;
  const char* what = "DeviceStager::start_download";
  const size_t bytes = m.begin_transfer(slot, device_src, count, dtype, wire_dtype, what);
  m.wait_for(m.d2h, m.compute_write, m.compute_written);
  m.wait_for(m.d2h, m.h2d_write, m.h2d_written);
  m.wait_for(m.d2h, m.device_done[slot], m.recorded[slot]);
  if (count > 0) {
    uint64_t from = device_src;
    if (wire_dtype != dtype) {
      detail::launch_convert(m.scratch_at(slot), wire_dtype, device_src, dtype, count, m.device,
                             m.d2h);
      from = m.scratch_at(slot);
    }
    check(cudaMemcpyAsync(m.host_at(slot), reinterpret_cast<const void*>(from), bytes,
                          cudaMemcpyDeviceToHost, m.d2h),
          "cudaMemcpyAsync (staging download)");
  }
  m.record(m.host_free[slot], m.d2h);
  m.record(m.device_done[slot], m.d2h);
  m.recorded[slot] = true;
}

void DeviceStager::start_upload_reduce(int slot, uint64_t device_dst, size_t count, Dtype dtype,
                                       ReduceOp op, Dtype wire_dtype) {
  Impl& m = *impl_;
  const char* what = "DeviceStager::start_upload_reduce";
  const size_t bytes = m.begin_transfer(slot, device_dst, count, dtype, wire_dtype, what);
  m.wait_for(m.h2d, m.device_done[slot], m.recorded[slot]);
  if (count > 0) {
    check(cudaMemcpyAsync(reinterpret_cast<void*>(m.scratch_at(slot)), m.host_at(slot), bytes,
                          cudaMemcpyHostToDevice, m.h2d),
          "cudaMemcpyAsync (staging upload)");
  }
  m.record(m.host_free[slot], m.h2d);
  m.recorded[slot] = true;
  m.wait_for(m.compute, m.host_free[slot], true);
  if (wire_dtype == dtype) {
    detail::launch_reduce(device_dst, m.scratch_at(slot), count, dtype, op, m.device, m.compute);
  } else {
    detail::launch_reduce_mixed(device_dst, m.scratch_at(slot), wire_dtype, count, op, m.device,
                                m.compute);
  }
  m.record(m.device_done[slot], m.compute);
  m.record(m.compute_write, m.compute);
  m.compute_written = true;
}

void DeviceStager::start_upload(int slot, uint64_t device_dst, size_t count, Dtype dtype,
                                Dtype wire_dtype) {
  Impl& m = *impl_;
  const char* what = "DeviceStager::start_upload";
  const size_t bytes = m.begin_transfer(slot, device_dst, count, dtype, wire_dtype, what);
  m.wait_for(m.h2d, m.device_done[slot], m.recorded[slot]);
  if (wire_dtype == dtype) {
    m.wait_for(m.h2d, m.compute_write, m.compute_written);  // keep writes to device memory ordered
    if (count > 0) {
      check(cudaMemcpyAsync(reinterpret_cast<void*>(device_dst), m.host_at(slot), bytes,
                            cudaMemcpyHostToDevice, m.h2d),
            "cudaMemcpyAsync (staging upload)");
    }
    m.record(m.host_free[slot], m.h2d);
    m.record(m.device_done[slot], m.h2d);
    m.record(m.h2d_write, m.h2d);
    m.h2d_written = true;
  } else {
    if (count > 0) {
      check(cudaMemcpyAsync(reinterpret_cast<void*>(m.scratch_at(slot)), m.host_at(slot), bytes,
                            cudaMemcpyHostToDevice, m.h2d),
            "cudaMemcpyAsync (staging upload)");
    }
    m.record(m.host_free[slot], m.h2d);
    m.wait_for(m.compute, m.host_free[slot], true);
    detail::launch_convert(device_dst, dtype, m.scratch_at(slot), wire_dtype, count, m.device,
                           m.compute);
    m.record(m.device_done[slot], m.compute);
    m.record(m.compute_write, m.compute);
    m.compute_written = true;
  }
  m.recorded[slot] = true;
}

void DeviceStager::start_finalize_avg(uint64_t device_data, size_t count, Dtype dtype,
                                      int divisor) {
  Impl& m = *impl_;
  m.enter();
  m.wait_for(m.compute, m.h2d_write, m.h2d_written);
  detail::launch_finalize_avg(device_data, count, dtype, divisor, m.device, m.compute);
  m.record(m.compute_write, m.compute);
  m.compute_written = true;
}

void DeviceStager::wait(int slot) { wait(slot, impl_->timeout); }

void DeviceStager::wait(int slot, std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  m.check_slot(slot, "DeviceStager::wait");
  if (!m.recorded[slot]) return;
  m.enter();
  detail::wait_event(m.host_free[slot], timeout, "DeviceStager::wait");
}

bool DeviceStager::ready(int slot) {
  Impl& m = *impl_;
  m.check_slot(slot, "DeviceStager::ready");
  if (!m.recorded[slot]) return true;
  m.enter();
  const cudaError_t err = cudaEventQuery(m.host_free[slot]);
  if (err == cudaErrorNotReady) return false;
  check(err, "DeviceStager::ready");
  return true;
}

void DeviceStager::synchronize() { synchronize(impl_->timeout); }

void DeviceStager::synchronize(std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  m.enter();
  // One deadline for all three streams.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (cudaStream_t s : {m.d2h, m.h2d, m.compute}) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    detail::wait_stream(s, left.count() > 0 ? left : std::chrono::milliseconds(0),
                        "DeviceStager::synchronize");
  }
}

}  // namespace ringtrain::cuda
