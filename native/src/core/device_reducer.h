// The core's hook for all-reduce of GPU memory. The core owns this interface and knows nothing of
// GPUs; whoever builds a Communicator (the addon) may install a factory whose reducers stage device
// memory through host memory (native/cuda/device_allreduce.cpp). Without one, a device all-reduce
// fails with ERR_ARGUMENT before anything is sent.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "dtype.h"

namespace ringtrain {

// All-reduces `count` elements of host memory at `data` over the ring, in place (same dtype, op and
// sequence number as the device call it serves).
using HostAllreduce = std::function<void(void* data, size_t count)>;

class DeviceReducer {
 public:
  virtual ~DeviceReducer() = default;
  // Runs on the communicator's worker thread; `devicePtr` stays valid and untouched by the caller
  // until it returns. Throws CommError.
  virtual void allreduce(uint64_t devicePtr, size_t count, Dtype dtype, ReduceOp op,
                         const HostAllreduce& ringAllreduce) = 0;
};

// Called on the worker thread at the first device all-reduce; the reducer lives until close.
using DeviceReducerFactory = std::function<std::unique_ptr<DeviceReducer>()>;

}  // namespace ringtrain
