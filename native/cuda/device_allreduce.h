// All-reduce of a buffer in GPU memory, the core's DeviceReducer: pinned staging slots carry
// successive chunks through device->host copy, the ring (on the host), and host->device copy, with
// chunk k's ring transfer overlapping chunk k+1's download and chunk k-1's upload. In a build
// without CUDA the device API's stub answers every call with "built without CUDA".
#pragma once
#include <memory>

#include "device_reducer.h"

namespace ringtrain {

std::unique_ptr<DeviceReducer> makeStagedDeviceReducer();

}  // namespace ringtrain
