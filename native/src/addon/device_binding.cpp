#include "device_binding.h"

namespace ringtrain {

Napi::Error cudaError(Napi::Env env, const cuda::CudaError& e) {
  Napi::Error err = Napi::Error::New(env, std::string("ringtrain: ") + e.what());
  const bool noGpu = e.kind() == cuda::CudaError::Kind::NotBuilt || e.kind() == cuda::CudaError::Kind::NoDevice;
  err.Set("code", Napi::String::New(env, noGpu ? "ERR_RINGTRAIN_NO_GPU" : "ERR_RINGTRAIN_ARGUMENT"));
  return err;
}

void requireGpu(Napi::Env env) {
  try {
    cuda::require_available();
  } catch (const cuda::CudaError& e) {
    throw cudaError(env, e);
  }
}

namespace {

void* viewBytes(Napi::Env env, const Napi::Value& v, size_t* bytes) {
  if (!v.IsTypedArray()) {
    Napi::Error e = Napi::TypeError::New(env, "ringtrain: expected a typed array");
    e.Set("code", Napi::String::New(env, "ERR_RINGTRAIN_ARGUMENT"));
    throw e;
  }
  auto ta = v.As<Napi::TypedArray>();
  *bytes = ta.ByteLength();
  auto* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data());
  return base ? base + ta.ByteOffset() : nullptr;
}

Napi::Value cudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cuda::RuntimeInfo r = cuda::probe();
  Napi::Object o = Napi::Object::New(env);
  o.Set("builtWithCuda", r.built_with_cuda);
  o.Set("buildCudaVersion", r.build_cuda_version);
  o.Set("runtimeVersion", r.runtime_version);
  o.Set("driverVersion", r.driver_version);
  o.Set("architectures", r.architectures);
  o.Set("unavailableReason", r.unavailable_reason);
  o.Set("description", cuda::describe());
  Napi::Array gpus = Napi::Array::New(env, r.gpus.size());
  for (size_t i = 0; i < r.gpus.size(); ++i) {
    const cuda::GpuInfo& g = r.gpus[i];
    Napi::Object x = Napi::Object::New(env);
    x.Set("index", g.index);
    x.Set("name", g.name);
    x.Set("ccMajor", g.cc_major);
    x.Set("ccMinor", g.cc_minor);
    x.Set("multiprocessors", g.multiprocessors);
    x.Set("totalMemory", static_cast<double>(g.total_memory));
    x.Set("pciBusId", g.pci_bus_id);
    x.Set("codePath", g.code_path);
    gpus.Set(static_cast<uint32_t>(i), x);
  }
  o.Set("gpus", gpus);
  return o;
}

}  // namespace

void DeviceBufferBinding::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeDeviceBuffer",
                                   {
                                       InstanceAccessor<&DeviceBufferBinding::Ptr>("ptr"),
                                       InstanceAccessor<&DeviceBufferBinding::ByteLength>("byteLength"),
                                       InstanceMethod<&DeviceBufferBinding::Upload>("upload"),
                                       InstanceMethod<&DeviceBufferBinding::Download>("download"),
                                       InstanceMethod<&DeviceBufferBinding::Free>("free"),
                                   });
  exports.Set("NativeDeviceBuffer", cls);
  exports.Set("cudaInfo", Napi::Function::New(env, cudaInfo, "cudaInfo"));
}

DeviceBufferBinding::DeviceBufferBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBufferBinding>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 0) {
    Napi::Error e = Napi::TypeError::New(env, "ringtrain: DeviceBuffer needs a byte length >= 0");
    e.Set("code", Napi::String::New(env, "ERR_RINGTRAIN_ARGUMENT"));
    throw e;
  }
  requireGpu(env);
  try {
    buffer_ = std::make_unique<cuda::DeviceBuffer>(static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue()));
  } catch (const cuda::CudaError& e) {
    throw cudaError(env, e);
  }
}

Napi::Value DeviceBufferBinding::Ptr(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(buffer_ ? buffer_->ptr() : 0));
}

Napi::Value DeviceBufferBinding::ByteLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(buffer_ ? buffer_->bytes() : 0));
}

Napi::Value DeviceBufferBinding::Upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t bytes = 0;
  void* p = viewBytes(env, info[0], &bytes);
  if (!buffer_) throw Napi::Error::New(env, "ringtrain: DeviceBuffer was freed");
  try {
    buffer_->upload(p, bytes, 0);
  } catch (const cuda::CudaError& e) {
    throw cudaError(env, e);
  }
  return env.Undefined();
}

Napi::Value DeviceBufferBinding::Download(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t bytes = 0;
  void* p = viewBytes(env, info[0], &bytes);
  if (!buffer_) throw Napi::Error::New(env, "ringtrain: DeviceBuffer was freed");
  try {
    buffer_->download(p, bytes, 0);
  } catch (const cuda::CudaError& e) {
    throw cudaError(env, e);
  }
  return info[0];
}

Napi::Value DeviceBufferBinding::Free(const Napi::CallbackInfo& info) {
  buffer_.reset();
  return info.Env().Undefined();
}

}  // namespace ringtrain
