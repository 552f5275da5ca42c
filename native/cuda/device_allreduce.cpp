#include "device_allreduce.h"

#include <algorithm>

#include "comm_error.h"
#include "device_api.h"

namespace ringtrain {
namespace {

// The core's Dtype / ReduceOp (dtype.h) are the one numbering; device_api.h repeats it so that it
// stays free of core includes, and these checks, compiled in every build, keep the two equal.
#define RT_SAME(E, v) static_cast<int>(ringtrain::E::v) == static_cast<int>(ringtrain::cuda::E::v)
static_assert(RT_SAME(Dtype, Float32) && RT_SAME(Dtype, Float64) && RT_SAME(Dtype, Int32) &&
                  RT_SAME(Dtype, Int8) && RT_SAME(Dtype, Uint8) && RT_SAME(Dtype, Int64) &&
                  RT_SAME(Dtype, Float16) && RT_SAME(Dtype, BFloat16) && kDtypeCount == 8,
              "cuda::Dtype numbering differs from the core's (native/src/core/dtype.h)");
static_assert(RT_SAME(ReduceOp, Sum) && RT_SAME(ReduceOp, Avg) && RT_SAME(ReduceOp, Min) &&
                  RT_SAME(ReduceOp, Max) && RT_SAME(ReduceOp, Prod) && kReduceOpCount == 5,
              "cuda::ReduceOp numbering differs from the core's (native/src/core/dtype.h)");
#undef RT_SAME

constexpr size_t kChunkBytes = size_t{8} << 20;
constexpr int kSlots = 3;  // one downloading, one on the ring, one uploading

class StagedDeviceReducer final : public DeviceReducer {
 public:
  void allreduce(uint64_t devicePtr, size_t count, Dtype dtype, ReduceOp op,
                 const HostAllreduce& ringAllreduce) override {
    try {
      run(devicePtr, count, dtype, ringAllreduce);
    } catch (const cuda::CudaError& e) {
      throw CommError(e.kind() == cuda::CudaError::Kind::Timeout ? ErrorCode::Timeout : ErrorCode::Argument,
                      std::string("device all-reduce: ") + e.what());
    }
  }

 private:
  void run(uint64_t devicePtr, size_t count, Dtype dtype, const HostAllreduce& ringAllreduce) {
    const int device = cuda::pointer_device(devicePtr);
    if (!stager_ || device != device_) {
      cuda::DeviceStager::Options o;
      o.slot_bytes = kChunkBytes;
      o.slots = kSlots;
      o.device = device;
      stager_ = std::make_unique<cuda::DeviceStager>(o);
      device_ = device;
    }
    const auto cdt = static_cast<cuda::Dtype>(dtype);  // same numbering (static_asserts above)
    const size_t elem = dtypeSize(dtype);
    const size_t per = kChunkBytes / elem;
    const size_t chunks = count == 0 ? 1 : (count + per - 1) / per;
    auto first = [&](size_t k) { return k * per; };
    auto len = [&](size_t k) { return std::min(per, count - std::min(count, k * per)); };
    stager_->start_download(0, devicePtr, len(0), cdt);
    for (size_t k = 0; k < chunks; ++k) {
      const int slot = static_cast<int>(k % kSlots);
      stager_->wait(slot);
      if (k + 1 < chunks) {
        const int next = static_cast<int>((k + 1) % kSlots);
        stager_->wait(next);  // its upload from three chunks ago must be done before refilling it
        stager_->start_download(next, devicePtr + (first(k + 1)) * elem, len(k + 1), cdt);
      }
      // Every rank cuts the buffer the same way, so chunk k meets chunk k on every rank.
      ringAllreduce(stager_->host_slot(slot), len(k));
      stager_->start_upload(slot, devicePtr + first(k) * elem, len(k), cdt);
    }
    stager_->synchronize();
  }

  std::unique_ptr<cuda::DeviceStager> stager_;  // created on first use, reused: pinned memory is costly to allocate
  int device_ = -1;
};

}  // namespace

std::unique_ptr<DeviceReducer> makeStagedDeviceReducer() { return std::make_unique<StagedDeviceReducer>(); }

}  // namespace ringtrain
