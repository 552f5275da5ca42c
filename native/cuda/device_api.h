// ringtrain's GPU data path, seen from plain C++.
//
// This header names no CUDA type on purpose: the addon and device_allreduce.cpp (the core's
// DeviceReducer; the core itself never includes this) include it from g++-compiled code, and the same declarations are served either by the real
// implementation (the .cu/.cpp files beside this one, built when CMake finds a CUDA compiler) or by
// device_api_stub.cpp (built otherwise), whose every call throws CudaError{NotBuilt}. Device
// addresses travel as uint64_t so that they can cross N-API as a bigint unchanged.
//
// Threading: every function sets the calling thread's current device (cudaSetDevice) to the one it
// works on. Stream and DeviceStager objects (and batched_copy.h's BatchedCopier) are not
// thread-safe: one owner thread at a time. The free functions are thread-safe.
//
// Streams: functions that take `Stream* stream` enqueue on that stream and return at once when it is
// non-null (the caller synchronises); with nullptr they run on the calling thread's per-thread stream
// and wait for completion (bounded by default_timeout()) before returning.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ringtrain::cuda {

// ---------------------------------------------------------------------------------------------
// Types and errors
// ---------------------------------------------------------------------------------------------

/**
 * Element types. The numeric values equal ringtrain::Dtype's in native/src/core/dtype.h, so the core
 * may static_cast between the two (native/src/core/device_allreduce.cpp static_asserts that they
 * agree; this header stays free of core includes).
 */
enum class Dtype : uint8_t {
  Float32 = 0,
  Float64 = 1,
  Int32 = 2,
  Int8 = 3,
  Uint8 = 4,
  Int64 = 5,
  Float16 = 6,
  BFloat16 = 7,
};

/**
 * Element-wise reductions. In reduce(), Avg adds exactly like Sum: the division by the number of
 * ranks is a separate step, finalize_avg(), applied once to the fully reduced data.
 * Min/Max on floating types propagate NaN (if either operand is NaN the result is NaN).
 * Integer Sum/Prod wrap around (two's complement), as the CPU kernels do.
 */
enum class ReduceOp : uint8_t { Sum = 0, Avg = 1, Min = 2, Max = 3, Prod = 4 };  // = core's values

size_t dtype_size(Dtype dtype);
const char* dtype_name(Dtype dtype);
const char* op_name(ReduceOp op);

class CudaError : public std::runtime_error {
 public:
  enum class Kind {
    NotBuilt,         // this binary was built without CUDA
    NoDevice,         // built with CUDA, but no driver / no GPU / driver too old
    Runtime,          // a CUDA call failed (message has the CUDA error name and text)
    InvalidArgument,  // bad pointer, size, dtype/op combination, slot index, ...
    Timeout,          // a bounded wait for the GPU ran out
  };
  CudaError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

// ---------------------------------------------------------------------------------------------
// Runtime probe (never throws)
// ---------------------------------------------------------------------------------------------

struct GpuInfo {
  int index = 0;
  std::string name;
  int cc_major = 0;  // compute capability
  int cc_minor = 0;
  int multiprocessors = 0;
  uint64_t total_memory = 0;  // bytes
  std::string pci_bus_id;
  /** "sass" when this build carries machine code for the GPU, "ptx-jit" when the driver compiles
   *  the embedded PTX at load, "unsupported" when neither can run on it. */
  std::string code_path;
};

struct RuntimeInfo {
  bool built_with_cuda = false;
  int build_cuda_version = 0;   // CUDART_VERSION at build time, e.g. 13000
  int runtime_version = 0;      // cudaRuntimeGetVersion (statically linked runtime)
  int driver_version = 0;       // cudaDriverGetVersion; 0 when no driver is installed
  std::string architectures;    // what the binary embeds, e.g. "sm_75 sm_80 ... sm_90 compute_90"
  std::vector<GpuInfo> gpus;
  /** Empty when at least one GPU is usable; otherwise why none is ("no NVIDIA driver ...", ...). */
  std::string unavailable_reason;
};

/** True when this build has CUDA (compile-time fact). */
bool built_with_cuda() noexcept;
/** Queries the driver once per call; never throws. */
RuntimeInfo probe() noexcept;
/** True when built with CUDA and at least one GPU is usable. */
bool available() noexcept;
/** Human-readable multi-line summary of probe(), for `ringtrain info`. */
std::string describe() noexcept;
/** Throws CudaError{NotBuilt|NoDevice} with a clear message unless available(). */
void require_available();

int device_count();            // 0 without GPU (throws NotBuilt in the stub)
void set_device(int device);   // for the calling thread
int current_device();

/** Bound on every wait this library performs when the caller gives none (default 60 s). */
std::chrono::milliseconds default_timeout() noexcept;
void set_default_timeout(std::chrono::milliseconds timeout) noexcept;

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

/** An owned, non-blocking CUDA stream on one device (does not synchronise with stream 0). */
class Stream {
 public:
  explicit Stream(int device = -1);  // -1: the calling thread's current device
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  /** Waits until all work enqueued so far has finished; throws Timeout or the work's error. */
  void synchronize(std::chrono::milliseconds timeout = default_timeout()) const;
  bool idle() const;  // non-blocking query
  int device() const noexcept { return device_; }
  /** The cudaStream_t, for native interop. */
  void* native() const noexcept { return handle_; }

 private:
  void* handle_ = nullptr;
  int device_ = -1;
};

// ---------------------------------------------------------------------------------------------
// Raw device memory (cudaMalloc; never managed memory)
// ---------------------------------------------------------------------------------------------

/** cudaMalloc on `device` (-1: current). The address is 256-byte aligned. bytes == 0 gives 0. */
uint64_t device_alloc(size_t bytes, int device = -1);
/** cudaFree; 0 is ignored. Implicitly synchronises the device (CUDA semantics). */
void device_free(uint64_t ptr) noexcept;
/** Host → device; `host` may be pageable. Synchronous (bounded by default_timeout()). */
void upload(uint64_t device_dst, const void* host_src, size_t bytes);
/** Device → host; synchronous. */
void download(void* host_dst, uint64_t device_src, size_t bytes);
void copy_device(uint64_t device_dst, uint64_t device_src, size_t bytes, Stream* stream = nullptr);
void memset_device(uint64_t device_dst, int value, size_t bytes, Stream* stream = nullptr);
/** The device a pointer was allocated on; throws InvalidArgument for a host / unknown pointer. */
int pointer_device(uint64_t device_ptr);

/** RAII owner of one cudaMalloc allocation. Move-only. Freed in the destructor. */
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes, int device = -1);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  uint64_t ptr() const noexcept { return ptr_; }
  size_t bytes() const noexcept { return bytes_; }
  int device() const noexcept { return device_; }
  /** Copies host bytes to [offset, offset + bytes); throws InvalidArgument past the end. */
  void upload(const void* host_src, size_t bytes, size_t offset = 0);
  void download(void* host_dst, size_t bytes, size_t offset = 0) const;
  /** Frees now (idempotent). */
  void reset() noexcept;

 private:
  uint64_t ptr_ = 0;
  size_t bytes_ = 0;
  int device_ = -1;
};

// ---------------------------------------------------------------------------------------------
// Element-wise kernels
// ---------------------------------------------------------------------------------------------

/** dst[i] = op(dst[i], src[i]) for i < count (Avg adds; see finalize_avg). All dtypes, all ops. */
void reduce(uint64_t dst, uint64_t src, size_t count, Dtype dtype, ReduceOp op,
            Stream* stream = nullptr);
/**
 * Mixed-precision reduce for compressed transfer: dst is float32, src is float16 or bfloat16 (the
 * wire type); dst[i] = op(dst[i], float(src[i])).
 */
void reduce_mixed(uint64_t dst_f32, uint64_t src, Dtype src_dtype, size_t count, ReduceOp op,
                  Stream* stream = nullptr);
/**
 * data[i] = data[i] / divisor: floating types divide (float16/bfloat16 in float32, rounded to nearest
 * even), integer types divide truncating toward zero. divisor >= 1.
 */
void finalize_avg(uint64_t data, size_t count, Dtype dtype, int divisor, Stream* stream = nullptr);
/**
 * Converts count elements. Supported: float32 → float16 / bfloat16 (round to nearest even; overflow
 * gives ±inf, NaN stays NaN) and float16 / bfloat16 → float32 (exact). dst and src must not overlap.
 */
void convert(uint64_t dst, Dtype dst_dtype, uint64_t src, Dtype src_dtype, size_t count,
             Stream* stream = nullptr);

// ---------------------------------------------------------------------------------------------
// DeviceStager: pinned staging for a ring all-reduce of device memory
// ---------------------------------------------------------------------------------------------

/**
 * Pinned host staging slots plus their device scratch, and three streams (download, upload,
 * compute), all allocated once in the constructor and reused for every collective; nothing is
 * allocated per call.
 *
 * How a ring drives it, segment by segment (the TCP transfer is the caller's):
 *   reduce-scatter step, for each segment k of the chunk to send / the chunk to receive:
 *     start_download(s, chunk_send + k*seg, n, dtype)  → wait(s) → send host_slot(s) over TCP
 *     recv into host_slot(r) over TCP → start_upload_reduce(r, chunk_recv + k*seg, n, dtype, op)
 *     (before refilling slot r with a later segment, wait(r))
 *   after the last reduce-scatter step, for Avg: finalize_avg() on the owned chunk.
 *   allgather step: the owned chunk is downloaded once and sent; received segments are forwarded
 *     from their host slot as they are and start_upload()ed into place; no D2H needed.
 *   end: synchronize().
 * With 2+ slots per direction, D2H of segment k+1, TCP of segment k and H2D + reduce of segment
 * k-1 overlap: the three streams run on the GPU's separate copy engines and SMs.
 *
 * Ordering the stager guarantees (so the caller need not):
 *   - every download starts after all reduce/convert/upload work enqueued before it that writes
 *     device memory (the ring sends what it just reduced);
 *   - every operation on slot s starts on the GPU after the previous operation on slot s has
 *     finished using slot s's device scratch.
 * Ordering the caller owns:
 *   - host_slot(s) may be read or written by the CPU only when no operation on s is pending, i.e.
 *     after wait(s) (or ready(s)) since the last start_* on s;
 *   - do not start an upload/reduce into a device region while a download of that region is still
 *     pending (the ring never does: it waits for each download before sending its bytes);
 *   - device memory passed in must be fully written by other streams before the call (the stager's
 *     streams are non-blocking and do not wait on other streams), and stays in use until
 *     synchronize() (or the slot's wait) returns.
 * Lifetime: host_slot() pointers are valid until the stager is destroyed. The destructor waits
 * (bounded by options.timeout) for all pending work, then frees the slots and streams.
 *
 * Compressed transfer: wire_dtype float16/bfloat16 with dtype float32 converts on the GPU before the
 * D2H (round to nearest even) and widens after the H2D (reduce_mixed / convert); a segment then
 * takes count * dtype_size(wire_dtype) slot bytes. For every rank to end bitwise equal, the owner of
 * each reduced chunk rounds its own copy through the wire type before the allgather
 * (start_download(..., wire) then start_upload(..., wire) into the same place), since the other
 * ranks only ever see the rounded values.
 *
 * test/cuda_test.cpp's staged_ring_allreduce() drives this API through a whole ring all-reduce
 * (reduce-scatter, avg, compressed rounding, allgather) with the TCP transfer replaced by memcpy:
 * it is the reference for the addon's allreduceDevice.
 */
class DeviceStager {
 public:
  struct Options {
    size_t slot_bytes = size_t{4} << 20;  // largest segment in wire bytes
    int slots = 4;                         // e.g. 2 for sending + 2 for receiving
    int device = -1;                       // -1: the current device at construction
    std::chrono::milliseconds timeout = std::chrono::milliseconds(60000);  // every wait's bound
  };

  explicit DeviceStager(const Options& options);
  ~DeviceStager();
  DeviceStager(const DeviceStager&) = delete;
  DeviceStager& operator=(const DeviceStager&) = delete;

  size_t slot_bytes() const noexcept;
  int slot_count() const noexcept;
  int device() const noexcept;
  /** Pinned (page-locked) host memory of slot_bytes(); valid until destruction. */
  void* host_slot(int slot) const;

  /** D2H: count elements at device_src (dtype) into host_slot(slot), as wire_dtype. */
  void start_download(int slot, uint64_t device_src, size_t count, Dtype dtype,
                      Dtype wire_dtype);
  void start_download(int slot, uint64_t device_src, size_t count, Dtype dtype) {
    start_download(slot, device_src, count, dtype, dtype);
  }
  /** H2D of host_slot(slot) (wire_dtype) into scratch, then device_dst = op(device_dst, scratch). */
  void start_upload_reduce(int slot, uint64_t device_dst, size_t count, Dtype dtype, ReduceOp op,
                           Dtype wire_dtype);
  void start_upload_reduce(int slot, uint64_t device_dst, size_t count, Dtype dtype, ReduceOp op) {
    start_upload_reduce(slot, device_dst, count, dtype, op, dtype);
  }
  /** H2D of host_slot(slot) (wire_dtype) into device_dst (dtype): a plain copy, or widen. */
  void start_upload(int slot, uint64_t device_dst, size_t count, Dtype dtype, Dtype wire_dtype);
  void start_upload(int slot, uint64_t device_dst, size_t count, Dtype dtype) {
    start_upload(slot, device_dst, count, dtype, dtype);
  }
  /** Divides device data by divisor on the compute stream (see finalize_avg()). */
  void start_finalize_avg(uint64_t device_data, size_t count, Dtype dtype, int divisor);

  /**
   * Waits until host_slot(slot) is free: after a download, its bytes are in the slot; after an
   * upload, the slot may be refilled. Throws Timeout after options.timeout (or `timeout`).
   */
  void wait(int slot);
  void wait(int slot, std::chrono::milliseconds timeout);
  /** Non-blocking form of wait(); throws the GPU error if the work failed. */
  bool ready(int slot);
  /** Waits for all work on all streams (the device buffer is final when this returns). */
  void synchronize();
  void synchronize(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringtrain::cuda
