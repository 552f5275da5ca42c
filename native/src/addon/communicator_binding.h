// JS class NativeCommunicator: thin binding over the core Communicator. Promise-returning calls
// complete through one thread-safe function per communicator; the sync call blocks the JS thread.
#pragma once
#include <napi.h>

#include <memory>

#include "../core/communicator.h"
#include "addon_state.h"

namespace ringtrain {

struct JsCompletion;

class CommunicatorBinding : public Napi::ObjectWrap<CommunicatorBinding> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonState* state);
  explicit CommunicatorBinding(const Napi::CallbackInfo& info);
  ~CommunicatorBinding() override;

  // Cancels the worker and releases the thread-safe function; safe to call more than once.
  void shutdown();
  void detachState() { state_ = nullptr; }
  void settle(Napi::Env env, JsCompletion* completion);
  // shutdown(), then destroys the core: listener, eventfds and worker thread are gone after it.
  void releaseCore();
  // Throws ERR_RINGTRAIN_CLOSED once releaseCore() ran.
  void requireCore(Napi::Env env) const;

 private:
  static void CallJs(Napi::Env env, Napi::Function, CommunicatorBinding* self, JsCompletion* completion);
  using Tsfn = Napi::TypedThreadSafeFunction<CommunicatorBinding, JsCompletion, CallJs>;

  Napi::Value Port(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Allreduce(const Napi::CallbackInfo& info);
  Napi::Value AllreduceSync(const Napi::CallbackInfo& info);
  Napi::Value AllreduceDevice(const Napi::CallbackInfo& info);
  Napi::Value Broadcast(const Napi::CallbackInfo& info);
  Napi::Value Allgather(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  Napi::Value Reducescatter(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  // Point-to-point: (view, dtype, peer, tag[, comm]); SendrecvSync takes both halves.
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value SendSync(const Napi::CallbackInfo& info);
  Napi::Value RecvSync(const Napi::CallbackInfo& info);
  Napi::Value SendrecvSync(const Napi::CallbackInfo& info);
  Napi::Value p2pAsync(const Napi::CallbackInfo& info, P2pOp::Kind kind);
  // Builds a p2p op from info[first..first+3] (view, dtype, peer, tag); throws on bad arguments.
  std::unique_ptr<P2pOp> p2pArgs(const Napi::CallbackInfo& info, size_t first, P2pOp::Kind kind);

  void initSub(Napi::Env env, const Napi::Object& options);
  Napi::Value submitAsync(Napi::Env env, std::unique_ptr<Operation> op, JsCompletion* completion);

  std::unique_ptr<Communicator> core_;
  Tsfn tsfn_;
  bool tsfnLive_ = false;
  int pending_ = 0;
  int size_ = 1;  // the world size, kept here because core_ is gone once closed
  int rank_ = 0;
  bool closed_ = false;
  bool timing_ = false;  // resolve operations with their timings (for the timeline)
  AddonState* state_ = nullptr;
};

}  // namespace ringtrain
