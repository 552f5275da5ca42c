// All-reduce of a buffer in GPU memory: pinned staging slots carry successive chunks through
// device->host copy, the ring (on the host), and host->device copy, with chunk k's ring transfer
// overlapping chunk k+1's download and chunk k-1's upload. Builds without CUDA get the stub,
// whose calls say so.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "dtype.h"
#include "ring.h"

namespace ringtrain {
namespace cuda {
class DeviceStager;
}

class DeviceAllreduce {
 public:
  DeviceAllreduce();
  ~DeviceAllreduce();
  // Runs on the communicator's worker thread; `devicePtr` stays valid and untouched by the caller
  // until it returns.
  void run(Ring& ring, uint64_t devicePtr, size_t count, Dtype dtype, ReduceOp op, uint64_t seq);

 private:
  std::unique_ptr<cuda::DeviceStager> stager_;  // created on first use, reused: pinned memory is costly to allocate
  int device_ = -1;
};

}  // namespace ringtrain
