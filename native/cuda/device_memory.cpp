// Streams and raw device memory for the CUDA build: plain cudaMalloc (never managed memory).
#include <utility>

#include "cuda_internal.h"

namespace ringtrain::cuda {

using detail::check;

// --- Stream ------------------------------------------------------------------------------------

Stream::Stream(int device) {
  device_ = detail::enter_device(device);
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  handle_ = s;
}

Stream::~Stream() {
  if (handle_ != nullptr) {
    // cudaStreamDestroy returns at once; work already enqueued still runs to completion.
    cudaSetDevice(device_);
    cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
  }
}

Stream::Stream(Stream&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), device_(other.device_) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) {
      cudaSetDevice(device_);
      cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
    }
    handle_ = std::exchange(other.handle_, nullptr);
    device_ = other.device_;
  }
  return *this;
}

void Stream::synchronize(std::chrono::milliseconds timeout) const {
  if (handle_ == nullptr) return;
  check(cudaSetDevice(device_), "cudaSetDevice");
  detail::wait_stream(static_cast<cudaStream_t>(handle_), timeout, "Stream::synchronize");
}

bool Stream::idle() const {
  if (handle_ == nullptr) return true;
  check(cudaSetDevice(device_), "cudaSetDevice");
  const cudaError_t err = cudaStreamQuery(static_cast<cudaStream_t>(handle_));
  if (err == cudaErrorNotReady) return false;
  check(err, "cudaStreamQuery");
  return true;
}

// --- raw memory --------------------------------------------------------------------------------

uint64_t device_alloc(size_t bytes, int device) {
  detail::enter_device(device);
  if (bytes == 0) return 0;
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw CudaError(CudaError::Kind::Runtime,
                    "cudaMalloc of " + std::to_string(bytes) + " bytes failed: out of GPU memory");
  }
  check(err, "cudaMalloc");
  return reinterpret_cast<uint64_t>(p);
}

void device_free(uint64_t ptr) noexcept {
  if (ptr == 0) return;
  cudaFree(reinterpret_cast<void*>(ptr));
  cudaGetLastError();
}

int pointer_device(uint64_t device_ptr) {
  require_available();
  detail::check_not_null(device_ptr, "pointer");
  cudaPointerAttributes attr{};
  check(cudaPointerGetAttributes(&attr, reinterpret_cast<const void*>(device_ptr)),
        "cudaPointerGetAttributes");
  // Managed memory is accepted from callers (ringtrain itself never allocates it).
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) {
    throw CudaError(CudaError::Kind::InvalidArgument,
                    "pointer " + std::to_string(device_ptr) +
                        " is not GPU memory (host or unknown pointer, CUDA memory type " +
                        std::to_string(static_cast<int>(attr.type)) + ")");
  }
  return attr.device;
}

namespace {
// Copies that take a host pointer run on the per-thread stream of the device owning the device side.
void host_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, uint64_t device_side,
               const char* what) {
  require_available();
  if (bytes == 0) return;
  detail::check_not_null(device_side, what);
  if (dst == nullptr || src == nullptr) {
    throw CudaError(CudaError::Kind::InvalidArgument, std::string(what) + ": null host pointer");
  }
  check(cudaSetDevice(pointer_device(device_side)), "cudaSetDevice");
  check(cudaMemcpyAsync(dst, src, bytes, kind, cudaStreamPerThread), what);
  detail::wait_stream(cudaStreamPerThread, default_timeout(), what);
}
}  // namespace

void upload(uint64_t device_dst, const void* host_src, size_t bytes) {
  host_copy(reinterpret_cast<void*>(device_dst), host_src, bytes, cudaMemcpyHostToDevice,
            device_dst, "upload (host to device)");
}

void download(void* host_dst, uint64_t device_src, size_t bytes) {
  host_copy(host_dst, reinterpret_cast<const void*>(device_src), bytes, cudaMemcpyDeviceToHost,
            device_src, "download (device to host)");
}

void copy_device(uint64_t device_dst, uint64_t device_src, size_t bytes, Stream* stream) {
  require_available();
  if (bytes == 0) return;
  detail::check_not_null(device_dst, "copy_device dst");
  detail::check_not_null(device_src, "copy_device src");
  if (stream != nullptr) check(cudaSetDevice(stream->device()), "cudaSetDevice");
  check(cudaMemcpyAsync(reinterpret_cast<void*>(device_dst),
                        reinterpret_cast<const void*>(device_src), bytes,
                        cudaMemcpyDeviceToDevice, detail::stream_of(stream)),
        "cudaMemcpyAsync(device to device)");
  detail::finish(stream, "copy_device");
}

void memset_device(uint64_t device_dst, int value, size_t bytes, Stream* stream) {
  require_available();
  if (bytes == 0) return;
  detail::check_not_null(device_dst, "memset_device dst");
  if (stream != nullptr) check(cudaSetDevice(stream->device()), "cudaSetDevice");
  check(cudaMemsetAsync(reinterpret_cast<void*>(device_dst), value, bytes,
                        detail::stream_of(stream)),
        "cudaMemsetAsync");
  detail::finish(stream, "memset_device");
}

// --- DeviceBuffer ------------------------------------------------------------------------------

DeviceBuffer::DeviceBuffer(size_t bytes, int device) {
  device_ = detail::enter_device(device);
  ptr_ = device_alloc(bytes, device_);
  bytes_ = bytes;
}

DeviceBuffer::~DeviceBuffer() { reset(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, 0)),
      bytes_(std::exchange(other.bytes_, 0)),
      device_(other.device_) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    ptr_ = std::exchange(other.ptr_, 0);
    bytes_ = std::exchange(other.bytes_, 0);
    device_ = other.device_;
  }
  return *this;
}

void DeviceBuffer::reset() noexcept {
  if (ptr_ != 0) {
    cudaSetDevice(device_);
    device_free(ptr_);
  }
  ptr_ = 0;
  bytes_ = 0;
}

namespace {
void check_range(size_t offset, size_t bytes, size_t size, const char* what) {
  if (offset > size || bytes > size - offset) {
    throw CudaError(CudaError::Kind::InvalidArgument,
                    std::string(what) + ": [" + std::to_string(offset) + ", " +
                        std::to_string(offset + bytes) + ") lies outside the buffer of " +
                        std::to_string(size) + " bytes");
  }
}
}  // namespace

void DeviceBuffer::upload(const void* host_src, size_t bytes, size_t offset) {
  check_range(offset, bytes, bytes_, "DeviceBuffer::upload");
  ringtrain::cuda::upload(ptr_ + offset, host_src, bytes);
}

void DeviceBuffer::download(void* host_dst, size_t bytes, size_t offset) const {
  check_range(offset, bytes, bytes_, "DeviceBuffer::download");
  ringtrain::cuda::download(host_dst, ptr_ + offset, bytes);
}

}  // namespace ringtrain::cuda
