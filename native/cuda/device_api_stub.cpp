// device_api.h for builds without CUDA (RINGTRAIN_CUDA=OFF, or no CUDA compiler at build time).
// Everything that would touch a GPU throws CudaError{NotBuilt}; the probe reports why; the parts
// that need no GPU live in device_api_common.cpp and work as in the CUDA build.
#include "device_api.h"

namespace ringtrain::cuda {
namespace {

const char* const kNotBuilt =
    "ringtrain was built without CUDA (RINGTRAIN_CUDA=OFF or no CUDA compiler at build time), so "
    "the GPU device API is unavailable; CPU collectives work as usual";

[[noreturn]] void not_built(const char* what) {
  throw CudaError(CudaError::Kind::NotBuilt, std::string(what) + ": " + kNotBuilt);
}

}  // namespace

bool built_with_cuda() noexcept { return false; }

RuntimeInfo probe() noexcept {
  RuntimeInfo info;
  info.built_with_cuda = false;
  info.architectures = "none";
  info.unavailable_reason = kNotBuilt;
  return info;
}

bool available() noexcept { return false; }

void require_available() { not_built("require_available"); }

std::string describe() noexcept {
  return std::string("build: CPU only (no CUDA)\nstatus: ") + kNotBuilt + "\n";
}

int device_count() { not_built("device_count"); }
void set_device(int) { not_built("set_device"); }
int current_device() { not_built("current_device"); }

Stream::Stream(int) { not_built("Stream"); }
Stream::~Stream() = default;
Stream::Stream(Stream&& other) noexcept : handle_(other.handle_), device_(other.device_) {
  other.handle_ = nullptr;
}
Stream& Stream::operator=(Stream&& other) noexcept {
  handle_ = other.handle_;
  device_ = other.device_;
  other.handle_ = nullptr;
  return *this;
}
void Stream::synchronize(std::chrono::milliseconds) const { not_built("Stream::synchronize"); }
bool Stream::idle() const { not_built("Stream::idle"); }

uint64_t device_alloc(size_t, int) { not_built("device_alloc"); }
void device_free(uint64_t) noexcept {}
void upload(uint64_t, const void*, size_t) { not_built("upload"); }
void download(void*, uint64_t, size_t) { not_built("download"); }
void copy_device(uint64_t, uint64_t, size_t, Stream*) { not_built("copy_device"); }
void memset_device(uint64_t, int, size_t, Stream*) { not_built("memset_device"); }
int pointer_device(uint64_t) { not_built("pointer_device"); }

DeviceBuffer::DeviceBuffer(size_t, int) { not_built("DeviceBuffer"); }
DeviceBuffer::~DeviceBuffer() = default;
DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(other.ptr_), bytes_(other.bytes_), device_(other.device_) {
  other.ptr_ = 0;
  other.bytes_ = 0;
}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  ptr_ = other.ptr_;
  bytes_ = other.bytes_;
  device_ = other.device_;
  other.ptr_ = 0;
  other.bytes_ = 0;
  return *this;
}
void DeviceBuffer::upload(const void*, size_t, size_t) { not_built("DeviceBuffer::upload"); }
void DeviceBuffer::download(void*, size_t, size_t) const { not_built("DeviceBuffer::download"); }
void DeviceBuffer::reset() noexcept {
  ptr_ = 0;
  bytes_ = 0;
}

void reduce(uint64_t, uint64_t, size_t, Dtype, ReduceOp, Stream*) { not_built("reduce"); }
void reduce_mixed(uint64_t, uint64_t, Dtype, size_t, ReduceOp, Stream*) {
  not_built("reduce_mixed");
}
void finalize_avg(uint64_t, size_t, Dtype, int, Stream*) { not_built("finalize_avg"); }
void convert(uint64_t, Dtype, uint64_t, Dtype, size_t, Stream*) { not_built("convert"); }

struct DeviceStager::Impl {};
DeviceStager::DeviceStager(const Options&) { not_built("DeviceStager"); }
DeviceStager::~DeviceStager() = default;
size_t DeviceStager::slot_bytes() const noexcept { return 0; }
int DeviceStager::slot_count() const noexcept { return 0; }
int DeviceStager::device() const noexcept { return -1; }
void* DeviceStager::host_slot(int) const { not_built("DeviceStager::host_slot"); }
void DeviceStager::start_download(int, uint64_t, size_t, Dtype, Dtype) {
  not_built("DeviceStager::start_download");
}
void DeviceStager::start_upload_reduce(int, uint64_t, size_t, Dtype, ReduceOp, Dtype) {
  not_built("DeviceStager::start_upload_reduce");
}
void DeviceStager::start_upload(int, uint64_t, size_t, Dtype, Dtype) {
  not_built("DeviceStager::start_upload");
}
void DeviceStager::start_finalize_avg(uint64_t, size_t, Dtype, int) {
  not_built("DeviceStager::start_finalize_avg");
}
void DeviceStager::wait(int) { not_built("DeviceStager::wait"); }
void DeviceStager::wait(int, std::chrono::milliseconds) { not_built("DeviceStager::wait"); }
bool DeviceStager::ready(int) { not_built("DeviceStager::ready"); }
void DeviceStager::synchronize() { not_built("DeviceStager::synchronize"); }
void DeviceStager::synchronize(std::chrono::milliseconds) { not_built("DeviceStager::synchronize"); }

}  // namespace ringtrain::cuda
