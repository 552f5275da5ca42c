#include "communicator.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "clock.h"

namespace ringtrain {

namespace {

void logToStderr(const std::string& line) {
  std::string out = "ringtrain: " + line + "\n";
  // One write() per line keeps lines whole when several threads or processes share the terminal.
  ssize_t ignored = ::write(2, out.data(), out.size());
  (void)ignored;
}

// How often an idle worker checks on its neighbours (heartbeats go out at most every second).
constexpr int kIdleTickMs = 20;

void drainEventFd(int fd) {
  uint64_t v;
  ssize_t ignored = ::read(fd, &v, sizeof v);
  (void)ignored;
}

RingOptions ringOptions(const CommunicatorOptions& o, std::vector<PeerAddress> peers) {
  RingOptions ro;
  ro.rank = o.rank;
  ro.size = o.size;
  ro.peers = std::move(peers);
  ro.timeoutMs = o.timeoutMs;
  ro.stallWarningMs = o.stallWarningMs;
  ro.segmentBytes = o.segmentBytes;
  ro.smallBytes = o.smallBytes;
  ro.pieceBytes = o.pieceBytes;
  ro.spinUs = o.spinUs;
  ro.log = o.log;
  return ro;
}

}  // namespace

Communicator::Communicator(CommunicatorOptions options) : o_(std::move(options)) {
  if (o_.size < 1 || o_.rank < 0 || o_.rank >= o_.size) {
    throw CommError(ErrorCode::Argument, "rank " + std::to_string(o_.rank) + " is out of range for size " + std::to_string(o_.size));
  }
  if (!o_.log) o_.log = logToStderr;
  if (o_.size > 1) listener_ = listenTcp(o_.bindHost, o_.portMin, o_.portMax, &port_);
  wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  cancelFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0 || cancelFd_ < 0) throw CommError(ErrorCode::Internal, std::string("eventfd: ") + std::strerror(errno));
  worker_ = std::thread([this] { workerMain(); });
}

Communicator::Communicator(CommunicatorOptions options, SubCommunicatorSetup sub) : o_(std::move(options)) {
  if (!o_.log) o_.log = logToStderr;
  o_.size = static_cast<int>(sub.topRanks.size());
  ownsEngine_ = false;
  userComm_ = sub.userComm;
  topRanks_ = sub.topRanks;
  topPeers_ = sub.topPeers;
  p2p_ = sub.engine;
  group_ = std::make_unique<GroupCollectives>(sub.engine, sub.internalComm, sub.topRanks, o_.rank, sub.topPeers);
  wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  cancelFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0 || cancelFd_ < 0) throw CommError(ErrorCode::Internal, std::string("eventfd: ") + std::strerror(errno));
  worker_ = std::thread([this] { workerMain(); });
}

std::unique_ptr<Communicator> Communicator::split(uint16_t commId, const std::vector<int>& members, int index) {
  SubCommunicatorSetup sub;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closeRequested_ || workerDone_ || topRanks_.empty() || (!p2p_ && members.size() > 1)) {
      throw CommError(ErrorCode::Closed, "the communicator is closed or not connected");
    }
    sub.engine = p2p_;
    sub.topPeers = topPeers_;
    for (int m : members) {
      if (m < 0 || m >= o_.size) throw CommError(ErrorCode::Argument, "split: member " + std::to_string(m) + " is not a rank");
      sub.topRanks.push_back(topRanks_.at(static_cast<size_t>(m)));
    }
  }
  if (commId == 0 || commId >= 0x8000) throw CommError(ErrorCode::Argument, "split: communicator id " + std::to_string(commId) + " out of range");
  if (index < 0 || index >= static_cast<int>(members.size())) throw CommError(ErrorCode::Argument, "split: index out of range");
  sub.userComm = commId;
  sub.internalComm = static_cast<uint16_t>(commId | 0x8000);
  CommunicatorOptions o = o_;
  o.rank = index;
  o.size = static_cast<int>(members.size());
  return std::make_unique<Communicator>(std::move(o), std::move(sub));
}

Communicator::~Communicator() {
  cancel();
  if (wakeFd_ >= 0) ::close(wakeFd_);
  if (cancelFd_ >= 0) ::close(cancelFd_);
}

void Communicator::wake() {
  uint64_t one = 1;
  ssize_t ignored = ::write(wakeFd_, &one, sizeof one);
  (void)ignored;
}

void Communicator::submit(std::unique_ptr<Operation> op) {
  op->submittedUs = nowUs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closeRequested_ && !workerDone_) {
      if (op->kind == OpKind::Close) closeRequested_ = true;
      queue_.push_back(std::move(op));
      wake();
      return;
    }
  }
  if (op->kind == OpKind::Close) {
    op->done(*op, nullptr);  // closing twice is fine
    return;
  }
  CommError closed(ErrorCode::Closed, "the communicator is closed");
  op->done(*op, &closed);
}

void Communicator::cancel() {
  if (!ownsEngine_ && groupBusy_.load()) {
    // A sub-communicator's call waits on messages of the shared engine, which only the top-level
    // communicator's close ends: cancelling mid-call (process exit) has to fail the engine.
    std::shared_ptr<P2pEngine> engine;
    {
      std::lock_guard<std::mutex> lock(mu_);
      engine = p2p_;
    }
    if (engine) engine->fail(CommError(ErrorCode::Closed, "the communicator was closed"));
  }
  if (!cancelled_.exchange(true)) {
    uint64_t one = 1;
    ssize_t ignored = ::write(cancelFd_, &one, sizeof one);
    (void)ignored;
  }
  join();
}

void Communicator::join() {
  std::lock_guard<std::mutex> lock(joinMu_);
  if (worker_.joinable()) worker_.join();
}

void Communicator::failWith(const CommError& error) {
  CommError final = ring_ ? ring_->abortAndClose(error, false) : error;
  failure_ = final;
  // A failed ring (a dead rank, a mismatch) fails point-to-point too, and so every sub-communicator:
  // one job, one fate. A sub-communicator's own failure stays its own.
  std::lock_guard<std::mutex> lock(mu_);
  if (p2p_ && ownsEngine_) p2p_->fail(final);
}

void Communicator::submitP2p(std::unique_ptr<P2pOp> op) {
  std::shared_ptr<P2pEngine> engine;
  {
    std::lock_guard<std::mutex> lock(mu_);
    engine = p2p_;
  }
  if (!engine) {
    CommError e(ErrorCode::Closed, o_.size == 1 ? "a world of one rank has no peer to send to" : "the communicator is closed or not connected");
    op->done(&e);
    return;
  }
  if (!ownsEngine_) {  // a sub-communicator's ranks are not the engine's
    op->peer = topRanks_.at(static_cast<size_t>(op->peer));
    op->comm = userComm_;
  }
  engine->submit(std::move(op));
}

void Communicator::runP2pSync(std::vector<std::unique_ptr<P2pOp>> ops, const std::function<bool()>& finished) {
  std::shared_ptr<P2pEngine> engine;
  {
    std::lock_guard<std::mutex> lock(mu_);
    engine = p2p_;
  }
  if (engine) {
    if (!ownsEngine_) {
      for (auto& op : ops) {
        op->peer = topRanks_.at(static_cast<size_t>(op->peer));
        op->comm = userComm_;
      }
    }
    if (engine->runInline(ops, finished)) return;
    if (!ownsEngine_) {  // undo: submitP2p maps again
      for (auto& op : ops) {
        for (size_t i = 0; i < topRanks_.size(); ++i)
          if (topRanks_[i] == op->peer) op->peer = static_cast<int>(i);
      }
    }
  }
  for (auto& op : ops) submitP2p(std::move(op));
}

void Communicator::stopP2p() {
  std::shared_ptr<P2pEngine> engine;
  {
    std::lock_guard<std::mutex> lock(mu_);
    engine.swap(p2p_);
  }
  if (engine && ownsEngine_) engine->close();  // joins its thread; a submitter racing this still holds a reference
}

void Communicator::execute(Operation& op) {
  op.startUs = nowUs();
  if (op.kind == OpKind::Close) {
    stopP2p();
    if (ring_ && !failure_) ring_->goodbyeAndClose();
    ring_.reset();
    group_.reset();
    listener_.reset();
    op.done(op, nullptr);
    return;
  }
  if (cancelled_.load()) {
    CommError e(ErrorCode::Closed, "the communicator was closed before this operation ran");
    op.done(op, &e);
    return;
  }
  if (failure_) {
    // The first operation to meet a failure found while idle reports it as it is; later ones say
    // the communicator is closed, and why.
    CommError e(failureReported_ ? ErrorCode::Closed : failure_->code(),
                std::string(failureReported_ ? "the communicator is closed after an earlier failure: " : "") + failure_->what());
    failureReported_ = true;
    op.done(op, &e);
    return;
  }
  try {
    if (op.kind == OpKind::Connect) {
      if (o_.size > 1) {
        if (static_cast<int>(op.peers.size()) != o_.size) {
          throw CommError(ErrorCode::Argument, "peer table has " + std::to_string(op.peers.size()) + " entries for " + std::to_string(o_.size) + " ranks");
        }
        RingConnector connector(o_.rank, o_.size, o_.token, op.peers, o_.log);
        RingLinks links = connector.establish(listener_, nowMs() + o_.timeoutMs, cancelled_);
        listener_.reset();  // nothing else may join this ring: strangers now meet a closed port
        std::vector<std::unique_ptr<Link>> mesh(links.mesh.size());
        for (size_t q = 0; q < mesh.size(); ++q)
          if (links.mesh[q].valid()) mesh[q] = std::make_unique<TcpLink>(std::move(links.mesh[q]));
        auto engine = std::make_shared<P2pEngine>(o_.rank, op.peers, std::move(mesh), o_.timeoutMs, o_.spinUs, o_.log);
        {
          std::lock_guard<std::mutex> lock(mu_);
          p2p_ = std::move(engine);
          topPeers_ = op.peers;
          topRanks_.clear();
          for (int q = 0; q < o_.size; ++q) topRanks_.push_back(q);
        }
        ring_ = std::make_unique<Ring>(ringOptions(o_, op.peers), std::move(links), cancelFd_);
      } else {
        {
          std::lock_guard<std::mutex> lock(mu_);
          topPeers_ = op.peers;
          topRanks_ = {0};
        }
        ring_ = std::make_unique<Ring>(ringOptions(o_, {}), RingLinks{}, cancelFd_);
      }
      op.done(op, nullptr);
      return;
    }
    if (group_) {
      op.seq = ++seq_;
      runOnGroup(op);
      op.done(op, nullptr);
      return;
    }
    if (!ring_) throw CommError(ErrorCode::Closed, "the communicator is not connected");
    op.seq = ++seq_;
    switch (op.kind) {
      case OpKind::Allreduce: ring_->allreduce(op.data, op.count, op.dtype, op.op, op.seq, &op.phases); break;
      case OpKind::AllreduceDevice:
        if (!device_) {
          if (!o_.deviceReducer) throw CommError(ErrorCode::Argument, "device all-reduce: this build has no device path");
          device_ = o_.deviceReducer();
        }
        device_->allreduce(op.devicePtr, op.count, op.dtype, op.op,
                           [&](void* host, size_t n) { ring_->allreduce(host, n, op.dtype, op.op, op.seq); });
        break;
      case OpKind::Broadcast: ring_->broadcast(op.data, op.count, op.dtype, op.root, op.seq); break;
      case OpKind::Allgather: ring_->allgather(op.src, op.data, op.count, op.dtype, op.seq); break;
      case OpKind::Barrier: ring_->barrier(op.seq); break;
      case OpKind::Reducescatter: ring_->reducescatter(op.src, op.data, op.count, op.dtype, op.op, op.seq); break;
      default: break;
    }
    op.done(op, nullptr);
  } catch (const CommError& e) {
    if (e.code() == ErrorCode::Cancelled || cancelled_.load()) {
      stopP2p();
      failure_ = CommError(ErrorCode::Closed, "the communicator was closed");
      ring_.reset();
      CommError closed(ErrorCode::Closed, std::string("the communicator was closed during this operation"));
      op.done(op, &closed);
      return;
    }
    failWith(e);
    failureReported_ = true;
    op.done(op, &*failure_);
  } catch (const std::exception& e) {
    failWith(CommError(ErrorCode::Internal, e.what()));
    failureReported_ = true;
    op.done(op, &*failure_);
  }
}

void Communicator::runOnGroup(Operation& op) {
  struct Busy {
    std::atomic<bool>& b;
    explicit Busy(std::atomic<bool>& f) : b(f) { b = true; }
    ~Busy() { b = false; }
  } busy(groupBusy_);
  switch (op.kind) {
    case OpKind::Allreduce: group_->allreduce(op.data, op.count, op.dtype, op.op, op.seq); break;
    case OpKind::Broadcast: group_->broadcast(op.data, op.count, op.dtype, op.root, op.seq); break;
    case OpKind::Allgather: group_->allgather(op.src, op.data, op.count, op.dtype, op.seq); break;
    case OpKind::Barrier: group_->barrier(op.seq); break;
    case OpKind::Reducescatter: group_->reducescatter(op.src, op.data, op.count, op.dtype, op.op, op.seq); break;
    case OpKind::AllreduceDevice: throw CommError(ErrorCode::Argument, "allreduceDevice is not available on sub-communicators yet");
    default: break;
  }
}

bool Communicator::tryRunInline(Operation& op) {
  std::unique_lock<std::mutex> ring(ringMu_, std::try_to_lock);
  if (!ring.owns_lock()) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The worker pops only while holding ringMu_, so an empty queue here means nothing submitted
    // earlier is still waiting to run: running now keeps submission order.
    if (!queue_.empty() || closeRequested_ || workerDone_) return false;
  }
  op.submittedUs = nowUs();
  execute(op);
  return true;
}

void Communicator::workerMain() {
  for (;;) {
    {
      std::unique_lock<std::mutex> ring(ringMu_);
      std::unique_ptr<Operation> op;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!queue_.empty()) {
          op = std::move(queue_.front());
          queue_.pop_front();
        }
      }
      if (op) {
        bool isClose = op->kind == OpKind::Close;
        execute(*op);
        op.reset();
        if (isClose) break;
        continue;
      }
      if (cancelled_.load()) break;
      // A non-blocking health pass: heartbeats, aborts, departed neighbours.
      if (ring_ && !failure_) {
        try {
          ring_->idle(-1, 0);
        } catch (const CommError& e) {
          if (!cancelled_.load()) {
            failWith(e);
            o_.log("rank " + std::to_string(o_.rank) + ": " + failure_->what() + " (the next collective on this rank will fail)");
          }
        }
      }
    }
    // Sleep without holding the ring, so a synchronous call can run on its own thread meanwhile
    // (no hand-off to this thread and back: that is most of a small all-reduce's latency).
    pollfd fds[2] = {{wakeFd_, POLLIN, 0}, {cancelFd_, POLLIN, 0}};
    ::poll(fds, 2, kIdleTickMs);
    if (fds[0].revents & POLLIN) drainEventFd(wakeFd_);
  }
  std::lock_guard<std::mutex> ring(ringMu_);
  stopP2p();
  // Cancelled while idle and healthy (e.g. the process exits without close()): say goodbye, so the
  // neighbours see a clean departure rather than a crash.
  if (ring_ && !failure_ && cancelled_.load()) ring_->goodbyeAndClose();
  // Whatever is still queued (cancel, or ops racing a close) completes with an error.
  std::deque<std::unique_ptr<Operation>> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workerDone_ = true;
    rest.swap(queue_);
  }
  ring_.reset();
  listener_.reset();
  device_.reset();
  for (auto& op : rest) {
    if (op->kind == OpKind::Close) {
      op->done(*op, nullptr);
      continue;
    }
    CommError e(ErrorCode::Closed, "the communicator was closed before this operation ran");
    op->done(*op, &e);
  }
}

}  // namespace ringtrain
