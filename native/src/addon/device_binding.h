// JS class DeviceBuffer (GPU memory: allocate, upload, download, free) and cudaInfo(): thin
// bindings over native/cuda/device_api.h. In a build without CUDA every call says so.
#pragma once
#include <napi.h>

#include <memory>

#include "device_api.h"

namespace ringtrain {

class DeviceBufferBinding : public Napi::ObjectWrap<DeviceBufferBinding> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit DeviceBufferBinding(const Napi::CallbackInfo& info);

 private:
  Napi::Value Ptr(const Napi::CallbackInfo& info);
  Napi::Value ByteLength(const Napi::CallbackInfo& info);
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Download(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);

  std::unique_ptr<cuda::DeviceBuffer> buffer_;  // null once freed
};

// Throws a JS error with code ERR_RINGTRAIN_NO_GPU unless a GPU is usable.
void requireGpu(Napi::Env env);
Napi::Error cudaError(Napi::Env env, const cuda::CudaError& e);

}  // namespace ringtrain
