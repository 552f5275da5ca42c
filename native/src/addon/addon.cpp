// Module entry: registers NativeCommunicator and the cleanup hook that stops every communicator's
// worker thread when the environment exits (also when close() was never called).
#include <napi.h>

#include "addon_state.h"
#include "dtype.h"
#include "communicator_binding.h"
#include "device_binding.h"

namespace ringtrain {
namespace {

void cleanup(AddonState* state) {
  for (CommunicatorBinding* c : state->live) {
    c->shutdown();
    c->detachState();
  }
  state->live.clear();
}

Napi::Object buildInfo(Napi::Env env) {
  Napi::Object info = Napi::Object::New(env);
#ifdef RINGTRAIN_HAVE_CUDA
  info.Set("cuda", Napi::Boolean::New(env, true));
#else
  info.Set("cuda", Napi::Boolean::New(env, false));
#endif
  info.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
#ifdef RINGTRAIN_BUILD_SYSTEM
  info.Set("buildSystem", Napi::String::New(env, RINGTRAIN_BUILD_SYSTEM));
#endif
  return info;
}

// The wire codes as the core numbers them (dtype.h), so the TypeScript table can be checked against them.
Napi::Object wireCodes(Napi::Env env) {
  Napi::Object dtypes = Napi::Object::New(env);
  for (int i = 0; i < kDtypeCount; ++i) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("code", Napi::Number::New(env, i));
    d.Set("bytes", Napi::Number::New(env, static_cast<double>(dtypeSize(static_cast<Dtype>(i)))));
    dtypes.Set(dtypeName(static_cast<Dtype>(i)), d);
  }
  Napi::Object ops = Napi::Object::New(env);
  for (int i = 0; i < kReduceOpCount; ++i) ops.Set(opName(static_cast<ReduceOp>(i)), Napi::Number::New(env, i));
  Napi::Object codes = Napi::Object::New(env);
  codes.Set("dtypes", dtypes);
  codes.Set("ops", ops);
  return codes;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* state = new AddonState();
  env.SetInstanceData<AddonState>(state);  // deleted by Node after the cleanup hooks ran
  env.AddCleanupHook(cleanup, state);
  CommunicatorBinding::Init(env, exports, state);
  DeviceBufferBinding::Init(env, exports);
  exports.Set("buildInfo", buildInfo(env));
  exports.Set("wireCodes", wireCodes(env));
  return exports;
}

}  // namespace ringtrain

static Napi::Object InitRingtrain(Napi::Env env, Napi::Object exports) { return ringtrain::Init(env, exports); }
NODE_API_MODULE(ringtrain, InitRingtrain)
