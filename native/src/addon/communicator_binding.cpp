#include "communicator_binding.h"

#include "clock.h"
#include "device_allreduce.h"
#include "device_binding.h"
#include "../core/clock.h"

#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>

namespace ringtrain {

// One in-flight async operation, from submission (JS thread) to settlement (JS thread). The
// references keep the caller's typed arrays alive while the worker thread uses their memory.
struct JsCompletion {
  explicit JsCompletion(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  std::vector<Napi::Reference<Napi::Value>> keep;
  std::optional<CommError> error;
  uint64_t seq = 0;
  int64_t submittedUs = 0, startUs = 0, headerUs = 0, reduceScatterUs = 0, endUs = 0;
  bool connect = false;
  bool close = false;  // settling this one releases the communicator's OS resources
};

namespace {

Napi::Error makeError(Napi::Env env, const CommError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, errorCodeName(e.code())));
  return err;
}

// Argument errors are found before an operation is queued, so nothing was sent: the TypeScript
// layer keeps the communicator usable after an error marked beforeSend (src/communicator.ts).
[[noreturn]] void throwArg(Napi::Env env, const std::string& message) {
  Napi::Error err = Napi::TypeError::New(env, message);
  err.Set("code", Napi::String::New(env, "ERR_RINGTRAIN_ARGUMENT"));
  err.Set("beforeSend", Napi::Boolean::New(env, true));
  throw err;
}

int intArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throwArg(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

// Checks a typed array against a dtype and returns its memory and element count.
void* viewData(Napi::Env env, const Napi::Value& v, Dtype dtype, size_t* count) {
  if (!v.IsTypedArray()) throwArg(env, "expected a typed array");
  auto ta = v.As<Napi::TypedArray>();
  size_t elem = dtypeSize(dtype);
  if (ta.ElementSize() != elem) {
    throwArg(env, std::string("a typed array of ") + std::to_string(ta.ElementSize()) + "-byte elements cannot carry " + dtypeName(dtype));
  }
  // napi_get_typedarray_info gives the data pointer of any backing store; going through
  // TypedArray::ArrayBuffer() would refuse a SharedArrayBuffer (it is not an ArrayBuffer to N-API).
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, ta, &type, &length, &data, nullptr, nullptr) != napi_ok) {
    throwArg(env, "could not read the typed array's memory");
  }
  *count = length;
  return data;
}

Dtype dtypeArg(const Napi::CallbackInfo& info, size_t i) {
  int d = intArg(info, i, "dtype");
  if (!validDtype(d)) throwArg(info.Env(), "unknown dtype code " + std::to_string(d));
  return static_cast<Dtype>(d);
}

Napi::Object timingObject(Napi::Env env, uint64_t seq, int64_t submitted, int64_t start, int64_t header, int64_t rs, int64_t end) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("seq", Napi::Number::New(env, static_cast<double>(seq)));
  t.Set("submittedUs", Napi::Number::New(env, static_cast<double>(submitted)));
  t.Set("startUs", Napi::Number::New(env, static_cast<double>(start)));
  t.Set("headerUs", Napi::Number::New(env, static_cast<double>(header)));
  t.Set("reduceScatterUs", Napi::Number::New(env, static_cast<double>(rs)));
  t.Set("endUs", Napi::Number::New(env, static_cast<double>(end)));
  return t;
}

}  // namespace

void CommunicatorBinding::Init(Napi::Env env, Napi::Object exports, AddonState* state) {
  Napi::Function cls = DefineClass(env, "NativeCommunicator",
                                   {
                                       InstanceAccessor<&CommunicatorBinding::Port>("port"),
                                       InstanceMethod<&CommunicatorBinding::Connect>("connect"),
                                       InstanceMethod<&CommunicatorBinding::Allreduce>("allreduce"),
                                       InstanceMethod<&CommunicatorBinding::AllreduceSync>("allreduceSync"),
                                       InstanceMethod<&CommunicatorBinding::AllreduceDevice>("allreduceDevice"),
                                       InstanceMethod<&CommunicatorBinding::Broadcast>("broadcast"),
                                       InstanceMethod<&CommunicatorBinding::Allgather>("allgather"),
                                       InstanceMethod<&CommunicatorBinding::Barrier>("barrier"),
                                       InstanceMethod<&CommunicatorBinding::Reducescatter>("reducescatter"),
                                       InstanceMethod<&CommunicatorBinding::Close>("close"),
                                       InstanceMethod<&CommunicatorBinding::Send>("send"),
                                       InstanceMethod<&CommunicatorBinding::Recv>("recv"),
                                       InstanceMethod<&CommunicatorBinding::SendSync>("sendSync"),
                                       InstanceMethod<&CommunicatorBinding::RecvSync>("recvSync"),
                                       InstanceMethod<&CommunicatorBinding::SendrecvSync>("sendrecvSync"),
                                   },
                                   state);
  exports.Set("NativeCommunicator", cls);
}

CommunicatorBinding::CommunicatorBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CommunicatorBinding>(info) {
  Napi::Env env = info.Env();
  state_ = static_cast<AddonState*>(info.Data());
  if (info.Length() < 1 || !info[0].IsObject()) throwArg(env, "NativeCommunicator needs an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  if (o.Get("parent").IsObject()) {
    initSub(env, o);
    return;
  }
  auto num = [&](const char* key, double fallback) {
    Napi::Value v = o.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
  };
  // Tuning has no fallback here: src/settings.ts resolves every value, and a missing one is a bug.
  auto tuning = [&](const char* key) {
    Napi::Value v = o.Get(key);
    if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 0) throwArg(env, std::string("NativeCommunicator: option ") + key + " must be a number >= 0");
    return v.As<Napi::Number>().DoubleValue();
  };
  auto str = [&](const char* key) {
    Napi::Value v = o.Get(key);
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  };
  CommunicatorOptions opts;
  opts.rank = static_cast<int>(num("rank", 0));
  opts.size = static_cast<int>(num("size", 1));
  opts.token = str("token");
  opts.timeoutMs = static_cast<int>(tuning("timeoutMs"));
  opts.stallWarningMs = static_cast<int>(tuning("stallWarningMs"));
  opts.segmentBytes = static_cast<size_t>(tuning("segmentBytes"));
  opts.smallBytes = static_cast<size_t>(tuning("smallBytes"));
  opts.pieceBytes = static_cast<size_t>(tuning("pieceBytes"));
  opts.spinUs = static_cast<int64_t>(tuning("spinUs"));
  opts.bindHost = str("bindHost");
  timing_ = o.Get("timing").ToBoolean().Value();
  opts.portMin = static_cast<int>(num("portMin", 0));
  opts.portMax = static_cast<int>(num("portMax", 0));
  opts.deviceReducer = makeStagedDeviceReducer;  // native/cuda: the real stager, or the stub's "built without CUDA"
  size_ = opts.size;
  rank_ = opts.rank;
  try {
    core_ = std::make_unique<Communicator>(std::move(opts));
  } catch (const CommError& e) {
    throw makeError(env, e);
  }
  tsfn_ = Tsfn::New(env, "ringtrain.completion", 0, 1, this);
  tsfn_.Unref(env);  // an idle communicator must not keep the process alive
  tsfnLive_ = true;
  if (state_) state_->live.insert(this);
}

// A sub-communicator: { parent: NativeCommunicator, commId, members: number[], index }.
void CommunicatorBinding::initSub(Napi::Env env, const Napi::Object& o) {
  Napi::Object parentObj = o.Get("parent").As<Napi::Object>();
  CommunicatorBinding* parent = Napi::ObjectWrap<CommunicatorBinding>::Unwrap(parentObj);
  if (!parent || !parent->core_ || parent->closed_) throw makeError(env, CommError(ErrorCode::Closed, "split: the parent communicator is closed"));
  if (!o.Get("members").IsArray() || !o.Get("commId").IsNumber() || !o.Get("index").IsNumber()) throwArg(env, "split needs commId, members and index");
  Napi::Array arr = o.Get("members").As<Napi::Array>();
  std::vector<int> members;
  for (uint32_t i = 0; i < arr.Length(); ++i) members.push_back(arr.Get(i).ToNumber().Int32Value());
  const int commId = o.Get("commId").As<Napi::Number>().Int32Value();
  if (commId <= 0 || commId >= 0x8000) throwArg(env, "split: communicator id out of range (a job has at most 32767 communicators)");
  try {
    core_ = parent->core_->split(static_cast<uint16_t>(commId), members, o.Get("index").As<Napi::Number>().Int32Value());
  } catch (const CommError& e) {
    throw makeError(env, e);
  }
  timing_ = parent->timing_;
  size_ = core_->size();
  rank_ = core_->rank();
  tsfn_ = Tsfn::New(env, "ringtrain.completion", 0, 1, this);
  tsfn_.Unref(env);
  tsfnLive_ = true;
  if (state_) state_->live.insert(this);
}

CommunicatorBinding::~CommunicatorBinding() {
  shutdown();
  if (state_) state_->live.erase(this);
}

void CommunicatorBinding::shutdown() {
  if (core_) core_->cancel();  // joins the worker; every queued completion has been posted
  if (tsfnLive_) {
    tsfnLive_ = false;
    tsfn_.Release();
  }
}

void CommunicatorBinding::releaseCore() {
  // The core first: its threads may still post completions through the thread-safe function.
  if (core_) {
    core_->cancel();
    core_.reset();  // closes the listener, the eventfds and the p2p engine
  }
  shutdown();
}

void CommunicatorBinding::requireCore(Napi::Env env) const {
  if (!core_) throw makeError(env, CommError(ErrorCode::Closed, "the communicator is closed"));
}

void CommunicatorBinding::CallJs(Napi::Env env, Napi::Function, CommunicatorBinding* self, JsCompletion* c) {
  if (env == nullptr || self == nullptr) {  // environment going away: nobody to tell
    delete c;
    return;
  }
  self->settle(env, c);
}

void CommunicatorBinding::settle(Napi::Env env, JsCompletion* c) {
  Napi::HandleScope scope(env);
  if (c->error) {
    c->deferred.Reject(makeError(env, *c->error).Value());
  } else if (c->close) {
    releaseCore();  // before resolving: once close() resolves, its fds and thread are gone
    c->deferred.Resolve(env.Undefined());
  } else if (c->connect) {
    c->deferred.Resolve(env.Undefined());
  } else {
    c->deferred.Resolve(timing_ ? timingObject(env, c->seq, c->submittedUs, c->startUs, c->headerUs, c->reduceScatterUs, c->endUs).As<Napi::Value>()
                                : env.Undefined());
  }
  delete c;
  if (--pending_ == 0) {
    if (tsfnLive_) tsfn_.Unref(env);
    Unref();
  }
}

Napi::Value CommunicatorBinding::submitAsync(Napi::Env env, std::unique_ptr<Operation> op, JsCompletion* c) {
  Napi::Promise promise = c->deferred.Promise();
  if (closed_ || !tsfnLive_) {
    c->deferred.Reject(makeError(env, CommError(ErrorCode::Closed, "the communicator is closed")).Value());
    delete c;
    return promise;
  }
  if (pending_++ == 0) {
    tsfn_.Ref(env);
    Ref();
  }
  Tsfn tsfn = tsfn_;
  op->done = [c, tsfn](Operation& o, const CommError* error) mutable {
    if (error) c->error = *error;
    c->seq = o.seq;
    c->submittedUs = o.submittedUs;
    c->startUs = o.startUs;
    c->headerUs = o.phases.headerDoneUs;
    c->reduceScatterUs = o.phases.reduceScatterDoneUs;
    c->endUs = nowUs();
    if (tsfn.NonBlockingCall(c) != napi_ok) delete c;  // only when the environment is being torn down
  };
  core_->submit(std::move(op));
  return promise;
}

Napi::Value CommunicatorBinding::Port(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), core_ ? core_->port() : 0); }

Napi::Value CommunicatorBinding::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throwArg(env, "connect needs the peer table");
  Napi::Array arr = info[0].As<Napi::Array>();
  auto op = std::make_unique<Operation>();
  op->kind = OpKind::Connect;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) throwArg(env, "peer table entries must be objects");
    Napi::Object p = v.As<Napi::Object>();
    PeerAddress a;
    a.host = p.Get("host").ToString().Utf8Value();
    a.port = p.Get("port").ToNumber().Int32Value();
    Napi::Value hn = p.Get("hostname");
    if (hn.IsString()) a.hostname = hn.As<Napi::String>().Utf8Value();
    op->peers.push_back(std::move(a));
  }
  auto* c = new JsCompletion(env);
  c->connect = true;
  return submitAsync(env, std::move(op), c);
}

Napi::Value CommunicatorBinding::Allreduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Dtype dtype = dtypeArg(info, 1);
  int opCode = intArg(info, 2, "op");
  if (!validOp(opCode)) throwArg(env, "unknown op code " + std::to_string(opCode));
  auto op = std::make_unique<Operation>();
  op->kind = OpKind::Allreduce;
  op->dtype = dtype;
  op->op = static_cast<ReduceOp>(opCode);
  op->data = viewData(env, info[0], dtype, &op->count);
  auto* c = new JsCompletion(env);
  c->keep.push_back(Napi::Persistent(info[0]));
  return submitAsync(env, std::move(op), c);
}

Napi::Value CommunicatorBinding::AllreduceDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBigInt()) throwArg(env, "allreduceDevice needs a device pointer (bigint)");
  bool lossless = false;
  uint64_t ptr = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless || ptr == 0) throwArg(env, "allreduceDevice: not a device pointer");
  if (info.Length() < 2 || !info[1].IsNumber() || info[1].As<Napi::Number>().DoubleValue() < 0) throwArg(env, "count must be a number >= 0");
  Dtype dtype = dtypeArg(info, 2);
  int opCode = intArg(info, 3, "op");
  if (!validOp(opCode)) throwArg(env, "unknown op code " + std::to_string(opCode));
  requireGpu(env);  // a missing GPU is the caller's error, not a failure of the ring
  auto op = std::make_unique<Operation>();
  op->kind = OpKind::AllreduceDevice;
  op->devicePtr = ptr;
  op->count = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
  op->dtype = dtype;
  op->op = static_cast<ReduceOp>(opCode);
  return submitAsync(env, std::move(op), new JsCompletion(env));
}

Napi::Value CommunicatorBinding::AllreduceSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Dtype dtype = dtypeArg(info, 1);
  int opCode = intArg(info, 2, "op");
  if (!validOp(opCode)) throwArg(env, "unknown op code " + std::to_string(opCode));
  if (closed_) throw makeError(env, CommError(ErrorCode::Closed, "the communicator is closed"));
  auto op = std::make_unique<Operation>();
  op->kind = OpKind::Allreduce;
  op->dtype = dtype;
  op->op = static_cast<ReduceOp>(opCode);
  op->data = viewData(env, info[0], dtype, &op->count);

  // The worker signals here; `info[0]` stays alive on the JS stack for the whole wait.
  struct Wait {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::optional<CommError> error;
    uint64_t seq = 0;
    int64_t submitted = 0, start = 0, header = 0, rs = 0, end = 0;
  };
  auto wait = std::make_shared<Wait>();
  op->done = [wait](Operation& o, const CommError* error) {
    std::lock_guard<std::mutex> lock(wait->m);
    if (error) wait->error = *error;
    wait->seq = o.seq;
    wait->submitted = o.submittedUs;
    wait->start = o.startUs;
    wait->header = o.phases.headerDoneUs;
    wait->rs = o.phases.reduceScatterDoneUs;
    wait->end = nowUs();
    wait->done = true;
    wait->cv.notify_all();
  };
  if (!core_->tryRunInline(*op)) core_->submit(std::move(op));
  {
    // No deadline here on purpose: the worker bounds every step of every queued operation by the
    // communicator timeout, so this wait always ends.
    std::unique_lock<std::mutex> lock(wait->m);
    wait->cv.wait(lock, [&] { return wait->done; });
  }
  if (wait->error) throw makeError(env, *wait->error);
  // Building the timing object costs about as much as a small exchange: only when someone records.
  if (!timing_) return env.Undefined();
  return timingObject(env, wait->seq, wait->submitted, wait->start, wait->header, wait->rs, wait->end);
}

Napi::Value CommunicatorBinding::Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Dtype dtype = dtypeArg(info, 1);
  int root = intArg(info, 2, "root");
  if (root < 0 || root >= size_) throwArg(env, "root " + std::to_string(root) + " is not a rank of this world");
  auto op = std::make_unique<Operation>();
  op->kind = OpKind::Broadcast;
  op->dtype = dtype;
  op->root = root;
  op->data = viewData(env, info[0], dtype, &op->count);
  auto* c = new JsCompletion(env);
  c->keep.push_back(Napi::Persistent(info[0]));
  return submitAsync(env, std::move(op), c);
}

Napi::Value CommunicatorBinding::Allgather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Dtype dtype = dtypeArg(info, 2);
  auto op = std::make_unique<Operation>();
  op->kind = OpKind::Allgather;
  op->dtype = dtype;
  size_t srcCount = 0, dstCount = 0;
  op->src = viewData(env, info[0], dtype, &srcCount);
  op->data = viewData(env, info[1], dtype, &dstCount);
  if (dstCount != srcCount * static_cast<size_t>(size_)) {
    throwArg(env, "allgather destination must hold size x source elements");
  }
  op->count = srcCount;
  auto* c = new JsCompletion(env);
  c->keep.push_back(Napi::Persistent(info[0]));
  c->keep.push_back(Napi::Persistent(info[1]));
  return submitAsync(env, std::move(op), c);
}

Napi::Value CommunicatorBinding::Reducescatter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Dtype dtype = dtypeArg(info, 2);
  int opCode = intArg(info, 3, "op");
  if (!validOp(opCode)) throwArg(env, "unknown op code " + std::to_string(opCode));
  auto op = std::make_unique<Operation>();
  op->kind = OpKind::Reducescatter;
  op->dtype = dtype;
  op->op = static_cast<ReduceOp>(opCode);
  size_t srcCount = 0, dstCount = 0;
  op->src = viewData(env, info[0], dtype, &srcCount);
  op->data = viewData(env, info[1], dtype, &dstCount);
  requireCore(env);
  if (dstCount != shareCount(srcCount, size_, rank_)) {
    throwArg(env, "reducescatter destination must hold this rank's share (" + std::to_string(shareCount(srcCount, size_, rank_)) + " elements)");
  }
  op->count = srcCount;
  auto* c = new JsCompletion(env);
  c->keep.push_back(Napi::Persistent(info[0]));
  c->keep.push_back(Napi::Persistent(info[1]));
  return submitAsync(env, std::move(op), c);
}

Napi::Value CommunicatorBinding::Barrier(const Napi::CallbackInfo& info) {
  auto op = std::make_unique<Operation>();
  op->kind = OpKind::Barrier;
  return submitAsync(info.Env(), std::move(op), new JsCompletion(info.Env()));
}

Napi::Value CommunicatorBinding::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(env.Undefined());
    return d.Promise();
  }
  auto op = std::make_unique<Operation>();
  op->kind = OpKind::Close;
  auto* c = new JsCompletion(env);
  c->close = true;
  Napi::Value promise = submitAsync(env, std::move(op), c);
  closed_ = true;  // later calls are refused here, before reaching the worker
  return promise;
}

std::unique_ptr<P2pOp> CommunicatorBinding::p2pArgs(const Napi::CallbackInfo& info, size_t first, P2pOp::Kind kind) {
  Napi::Env env = info.Env();
  requireCore(env);
  Dtype dtype = dtypeArg(info, first + 1);
  int peer = intArg(info, first + 2, "peer");
  if (info.Length() <= first + 3 || !info[first + 3].IsNumber()) throwArg(env, "tag must be a number");
  double tag = info[first + 3].As<Napi::Number>().DoubleValue();
  const char* verb = kind == P2pOp::Kind::Send ? "send" : "recv";
  if (peer < 0 || peer >= size_ || peer == rank_) {
    throwArg(env, std::string(verb) + ": rank " + std::to_string(peer) + " is not another rank of this communicator (0.." +
                      std::to_string(size_ - 1) + ", this is rank " + std::to_string(rank_) + ")");
  }
  if (!(tag >= 0 && tag <= p2p::kMaxTag && tag == static_cast<double>(static_cast<uint32_t>(tag)))) {
    throwArg(env, std::string(verb) + ": tag must be an integer with 0 <= tag < 2^31");
  }
  auto op = std::make_unique<P2pOp>();
  op->kind = kind;
  op->peer = peer;
  op->tag = static_cast<uint32_t>(tag);
  op->dtype = dtype;
  op->data = viewData(env, info[first], dtype, &op->count);
  return op;
}

Napi::Value CommunicatorBinding::p2pAsync(const Napi::CallbackInfo& info, P2pOp::Kind kind) {
  Napi::Env env = info.Env();
  std::unique_ptr<P2pOp> op = p2pArgs(info, 0, kind);
  auto* c = new JsCompletion(env);
  c->connect = true;  // resolves with undefined
  c->keep.push_back(Napi::Persistent(info[0]));
  Napi::Promise promise = c->deferred.Promise();
  if (closed_ || !tsfnLive_) {
    c->deferred.Reject(makeError(env, CommError(ErrorCode::Closed, "the communicator is closed")).Value());
    delete c;
    return promise;
  }
  if (pending_++ == 0) {
    tsfn_.Ref(env);
    Ref();
  }
  Tsfn tsfn = tsfn_;
  op->done = [c, tsfn](const CommError* error) mutable {
    if (error) c->error = *error;
    if (tsfn.NonBlockingCall(c) != napi_ok) delete c;  // only when the environment is being torn down
  };
  core_->submitP2p(std::move(op));
  return promise;
}

Napi::Value CommunicatorBinding::Send(const Napi::CallbackInfo& info) { return p2pAsync(info, P2pOp::Kind::Send); }
Napi::Value CommunicatorBinding::Recv(const Napi::CallbackInfo& info) { return p2pAsync(info, P2pOp::Kind::Recv); }

namespace {

// A synchronous p2p call: the engine thread signals here while the JS thread waits (the views stay
// alive on the JS stack). No deadline here: the engine bounds every pending op by the timeout.
struct P2pWait {
  std::mutex m;
  std::condition_variable cv;
  int left = 0;                  // guarded by m
  std::atomic<int> pending{0};   // the same, for spinning without the lock
  std::optional<CommError> error;
};

void runSync(Communicator& core, std::vector<std::unique_ptr<P2pOp>> ops, Napi::Env env) {
  auto wait = std::make_shared<P2pWait>();
  wait->left = static_cast<int>(ops.size());
  wait->pending = wait->left;
  for (auto& op : ops) {
    op->done = [wait](const CommError* error) {
      std::lock_guard<std::mutex> lock(wait->m);
      if (error && !wait->error) wait->error = *error;
      wait->pending.fetch_sub(1, std::memory_order_release);
      if (--wait->left == 0) wait->cv.notify_all();
    };
  }
  core.runP2pSync(std::move(ops), [wait] { return wait->pending.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lock(wait->m);
  wait->cv.wait(lock, [&] { return wait->left == 0; });
  if (wait->error) throw makeError(env, *wait->error);
}

}  // namespace

Napi::Value CommunicatorBinding::SendSync(const Napi::CallbackInfo& info) {
  if (closed_) throw makeError(info.Env(), CommError(ErrorCode::Closed, "the communicator is closed"));
  std::vector<std::unique_ptr<P2pOp>> ops;
  ops.push_back(p2pArgs(info, 0, P2pOp::Kind::Send));
  runSync(*core_, std::move(ops), info.Env());
  return info.Env().Undefined();
}

Napi::Value CommunicatorBinding::RecvSync(const Napi::CallbackInfo& info) {
  if (closed_) throw makeError(info.Env(), CommError(ErrorCode::Closed, "the communicator is closed"));
  std::vector<std::unique_ptr<P2pOp>> ops;
  ops.push_back(p2pArgs(info, 0, P2pOp::Kind::Recv));
  runSync(*core_, std::move(ops), info.Env());
  return info.Env().Undefined();
}

Napi::Value CommunicatorBinding::SendrecvSync(const Napi::CallbackInfo& info) {
  if (closed_) throw makeError(info.Env(), CommError(ErrorCode::Closed, "the communicator is closed"));
  std::vector<std::unique_ptr<P2pOp>> ops;
  ops.push_back(p2pArgs(info, 0, P2pOp::Kind::Send));
  ops.push_back(p2pArgs(info, 4, P2pOp::Kind::Recv));
  runSync(*core_, std::move(ops), info.Env());
  return info.Env().Undefined();
}

}  // namespace ringtrain
