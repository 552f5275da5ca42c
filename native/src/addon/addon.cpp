// Module entry: registers NativeCommunicator and the cleanup hook that stops every communicator's
// worker thread when the environment exits (also when close() was never called).
#include <napi.h>

#include "addon_state.h"
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

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* state = new AddonState();
  env.SetInstanceData<AddonState>(state);  // deleted by Node after the cleanup hooks ran
  env.AddCleanupHook(cleanup, state);
  CommunicatorBinding::Init(env, exports, state);
  DeviceBufferBinding::Init(env, exports);
  exports.Set("buildInfo", buildInfo(env));
  return exports;
}

}  // namespace ringtrain

static Napi::Object InitRingtrain(Napi::Env env, Napi::Object exports) { return ringtrain::Init(env, exports); }
NODE_API_MODULE(ringtrain, InitRingtrain)
