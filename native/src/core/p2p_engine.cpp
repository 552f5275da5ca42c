#include "p2p_engine.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "clock.h"

namespace ringtrain {

namespace {

constexpr int kTickMs = 100;         // longest sleep: deadlines are checked at least this often
constexpr int kGoodbyeLingerMs = 2000;  // at most, close() flushes the goodbyes and waits for each peer's end

uint64_t keyOf(uint16_t comm, uint32_t tag) { return (static_cast<uint64_t>(comm) << 32) | tag; }
std::string seconds(int ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", ms / 1000.0);
  return buf;
}

size_t eagerCharge(uint64_t bytes) { return static_cast<size_t>(bytes) + p2p::kEagerChargeBytes; }

std::string elems(Dtype d, uint64_t bytes) {
  return std::to_string(bytes / dtypeSize(d)) + " " + dtypeName(d) + (bytes % dtypeSize(d) ? " (+" + std::to_string(bytes % dtypeSize(d)) + " bytes)" : "");
}

}  // namespace

P2pEngine::P2pEngine(int rank, std::vector<PeerAddress> peers, std::vector<std::unique_ptr<Link>> links, int timeoutMs, int64_t spinUs,
                     Logger log)
    : rank_(rank), peers_(std::move(peers)), state_(peers_.size()), timeoutMs_(timeoutMs), spinUs_(spinUs), log_(std::move(log)) {
  for (size_t q = 0; q < state_.size() && q < links.size(); ++q) state_[q].link = std::move(links[q]);
  wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0) throw CommError(ErrorCode::Internal, std::string("eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] { threadMain(); });
}

P2pEngine::~P2pEngine() {
  close();
  ::close(wakeFd_);
}

void P2pEngine::submit(std::unique_ptr<P2pOp> op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      incoming_.push_back(std::move(op));
      uint64_t one = 1;
      ssize_t ignored = ::write(wakeFd_, &one, sizeof one);
      (void)ignored;
      return;
    }
  }
  CommError closed(ErrorCode::Closed, "the communicator is closed");
  op->done(&closed);
}

void P2pEngine::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  ssize_t ignored = ::write(wakeFd_, &one, sizeof one);
  (void)ignored;
  if (thread_.joinable()) thread_.join();
}

void P2pEngine::fail(const CommError& error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_) failure_ = error;
  uint64_t one = 1;
  ssize_t ignored = ::write(wakeFd_, &one, sizeof one);
  (void)ignored;
}

std::string P2pEngine::opText(const P2pOp& op) const {
  std::string s = op.kind == P2pOp::Kind::Send ? "send of " : "recv of ";
  s += elems(op.dtype, op.bytes()) + " (tag " + std::to_string(op.tag);
  if (op.comm) s += ", sub-communicator " + std::to_string(op.comm);
  s += ") ";
  s += op.kind == P2pOp::Kind::Send ? "from rank " + std::to_string(rank_) + " to " : "on rank " + std::to_string(rank_) + " from ";
  return s + who(op.peer);
}

std::string P2pEngine::mismatchText(bool atReceiver, const P2pOp& mine, Dtype theirDtype, uint64_t theirBytes) const {
  return opText(mine) + ": the matching " + (atReceiver ? "send" : "recv") + " on rank " + std::to_string(mine.peer) + " " +
         (atReceiver ? "carries " : "expects ") + elems(theirDtype, theirBytes) + " (length and dtype must match)";
}

void P2pEngine::complete(P2pOp* op, const CommError* error) {
  if (op->finished) return;
  op->finished = true;
  op->done(error);
}

void P2pEngine::takeSubmissions() {
  std::vector<std::unique_ptr<P2pOp>> fresh;
  std::optional<CommError> failure;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fresh.swap(incoming_);
    failure.swap(failure_);
  }
  if (failure) failAllPeers(*failure, true);
  for (auto& op : fresh) start(std::move(op));
}

void P2pEngine::start(std::unique_ptr<P2pOp> owned) {
  P2pOp* op = owned.get();
  if (op->peer < 0 || op->peer >= static_cast<int>(state_.size()) || op->peer == rank_) {
    CommError e(ErrorCode::Argument, "rank " + std::to_string(op->peer) + " is not another rank of this communicator");
    op->done(&e);
    return;
  }
  Peer& p = state_[static_cast<size_t>(op->peer)];
  if (p.error) {
    // A peer that closed cleanly may have sent messages before: they are still here to be received.
    std::optional<Arrival> a;
    if (p.closedCleanly && op->kind == P2pOp::Kind::Recv) a = p.matcher.takeArrival(keyOf(op->comm, op->tag));
    if (!a) {
      op->done(&*p.error);
      return;
    }
    op->deadlineMs = nowMs() + timeoutMs_;
    live_.push_back(std::move(owned));
    matchArrival(p, op, *a);
    return;
  }
  if (p.notice) {
    CommError e = *p.notice;
    p.notice.reset();
    op->done(&e);
    return;
  }
  op->deadlineMs = nowMs() + timeoutMs_;
  live_.push_back(std::move(owned));
  if (op->kind == P2pOp::Kind::Send) startSend(p, op);
  else startRecv(p, op);
}

void P2pEngine::queueFrame(Peer& p, p2p::FrameType type, uint32_t tag, uint32_t id, uint64_t bytes, Dtype dtype, uint16_t comm) {
  p2p::Frame f;
  f.type = type;
  f.tag = tag;
  f.id = id;
  f.bytes = bytes;
  f.dtype = static_cast<uint8_t>(dtype);
  f.comm = comm;
  OutItem item;
  f.encode(item.header);
  if (p.link) p.out.push_back(item);
}

void P2pEngine::startSend(Peer& p, P2pOp* op) {
  const size_t bytes = op->bytes();
  op->id = p.nextId++;
  if (bytes <= p2p::kEagerBytes && p.eagerOutstanding + eagerCharge(bytes) <= p2p::kEagerBudgetBytes) {
    p.eagerOutstanding += eagerCharge(bytes);
    p.eagerUnacked[op->id] = EagerRecord{op->tag, op->dtype, bytes, op->comm};
    queueFrame(p, p2p::FrameType::Eager, op->tag, op->id, bytes, op->dtype, op->comm);
    p.out.back().payload = static_cast<const uint8_t*>(op->data);
    p.out.back().payloadLen = bytes;
    p.out.back().eagerSend = op;
    return;
  }
  p.rendezvous[op->id] = op;
  queueFrame(p, p2p::FrameType::Rts, op->tag, op->id, bytes, op->dtype, op->comm);
}

void P2pEngine::queueChunk(Peer& p, P2pOp* op) {
  const size_t len = std::min(p2p::kChunkBytes, op->bytes() - op->offset);
  queueFrame(p, p2p::FrameType::Data, op->tag, op->id, len, op->dtype, op->comm);
  p.out.back().payload = static_cast<const uint8_t*>(op->data) + op->offset;
  p.out.back().payloadLen = len;
  p.out.back().stream = op;
}

void P2pEngine::startRecv(Peer& p, P2pOp* op) {
  std::optional<Arrival> a = p.matcher.takeArrival(keyOf(op->comm, op->tag));
  if (!a) {
    p.matcher.holdPosted(keyOf(op->comm, op->tag), op);
    return;
  }
  matchArrival(p, op, *a);
}

// A posted receive meets a message that arrived before it (eager with its payload, or an Rts).
void P2pEngine::matchArrival(Peer& p, P2pOp* op, Arrival& a) {
  const bool agree = a.dtype == op->dtype && a.bytes == op->bytes();
  if (a.type == p2p::FrameType::Eager) {
    if (agree) {
      if (a.bytes) std::memcpy(op->data, a.payload.data(), a.bytes);
      queueFrame(p, p2p::FrameType::Credit, op->tag, a.id, a.bytes, a.dtype, op->comm);
      complete(op, nullptr);
    } else {
      queueFrame(p, p2p::FrameType::Refuse, op->tag, a.id, op->bytes(), op->dtype, op->comm);
      CommError e(ErrorCode::Mismatch, mismatchText(true, *op, a.dtype, a.bytes));
      complete(op, &e);
    }
    return;
  }
  if (agree) {
    op->offset = 0;
    p.receiving[a.id] = op;
    queueFrame(p, p2p::FrameType::Cts, op->tag, a.id, 0, op->dtype, op->comm);
  } else {
    queueFrame(p, p2p::FrameType::Refuse, op->tag, a.id, op->bytes(), op->dtype, op->comm);
    CommError e(ErrorCode::Mismatch, mismatchText(true, *op, a.dtype, a.bytes));
    complete(op, &e);
  }
}

void P2pEngine::readFrom(int peer) {
  Peer& p = state_[static_cast<size_t>(peer)];
  for (int rounds = 0; rounds < 64 && p.link && !p.error; ++rounds) {
    int err = 0;
    long n;
    const bool inHeader = p.sink == Sink::None;
    if (inHeader) n = p.link->read(p.header + p.headerHave, p2p::Frame::kSize - p.headerHave, &err);
    else n = p.link->read(p.payloadDst, p.payloadLeft, &err);
    if (n == 0) return;
    if (n < 0) {
      if (p.saidGoodbye && err == 0) {
        peerClosed(peer);
      } else {
        failPeer(peer, CommError(ErrorCode::Peer, who(peer) + (err ? std::string(": connection lost (") + std::strerror(err) + ")"
                                                               : std::string(" closed its point-to-point link without a goodbye")) +
                                                  ": the rank died, was killed, or gave up on this link after a failure"));
      }
      return;
    }
    if (inHeader) {
      p.headerHave += static_cast<size_t>(n);
      if (p.headerHave == p2p::Frame::kSize) {
        p.headerHave = 0;
        onFrame(peer);
      }
    } else {
      p.payloadDst += n;
      p.payloadLeft -= static_cast<size_t>(n);
      if (p.payloadOp) p.payloadOp->deadlineMs = nowMs() + timeoutMs_;
      if (p.payloadLeft == 0) onPayloadDone(peer);
    }
  }
}

void P2pEngine::onFrame(int peer) {
  Peer& p = state_[static_cast<size_t>(peer)];
  p2p::Frame& f = p.frame;
  if (!f.decode(p.header) || !validDtype(f.dtype)) {
    failPeer(peer, CommError(ErrorCode::Internal, who(peer) + " sent bytes that are not a point-to-point frame (protocol error)"));
    return;
  }
  auto protocolError = [&](const std::string& what) {
    failPeer(peer, CommError(ErrorCode::Internal, who(peer) + ": point-to-point protocol error: " + what), true);
  };
  const Dtype dtype = static_cast<Dtype>(f.dtype);
  const uint64_t key = keyOf(f.comm, f.tag);
  switch (f.type) {
    case p2p::FrameType::Eager: {
      if (f.bytes > p2p::kEagerBytes) return protocolError("eager message of " + std::to_string(f.bytes) + " bytes");
      std::optional<P2pOp*> posted = p.matcher.takePosted(key);
      p.payloadLeft = static_cast<size_t>(f.bytes);
      if (posted && (*posted)->dtype == dtype && (*posted)->bytes() == f.bytes) {
        p.sink = Sink::RecvOp;
        p.payloadOp = *posted;
        p.payloadDst = static_cast<uint8_t*>((*posted)->data);
      } else if (posted) {
        CommError e(ErrorCode::Mismatch, mismatchText(true, **posted, dtype, f.bytes));
        queueFrame(p, p2p::FrameType::Refuse, f.tag, f.id, (*posted)->bytes(), (*posted)->dtype, f.comm);
        complete(*posted, &e);
        p.sink = Sink::Discard;
        p.discard.resize(p.payloadLeft);
        p.payloadDst = p.discard.data();
      } else {
        p.sink = Sink::Held;
        p.held = Arrival{p2p::FrameType::Eager, dtype, f.bytes, f.id, std::vector<uint8_t>(p.payloadLeft)};
        p.payloadDst = p.held.payload.data();
      }
      if (p.payloadLeft == 0) onPayloadDone(peer);
      return;
    }
    case p2p::FrameType::Rts: {
      Arrival a{p2p::FrameType::Rts, dtype, f.bytes, f.id, {}};
      std::optional<P2pOp*> posted = p.matcher.takePosted(key);
      if (posted) matchArrival(p, *posted, a);
      else p.matcher.holdArrival(key, std::move(a));
      return;
    }
    case p2p::FrameType::Cts: {
      auto it = p.rendezvous.find(f.id);
      if (it == p.rendezvous.end()) return protocolError("clear-to-send for an unknown message");
      it->second->deadlineMs = nowMs() + timeoutMs_;
      queueChunk(p, it->second);
      return;
    }
    case p2p::FrameType::Data: {
      auto it = p.receiving.find(f.id);
      if (it == p.receiving.end()) return protocolError("data for an unknown message");
      P2pOp* op = it->second;
      if (op->offset + f.bytes > op->bytes()) return protocolError("more data than the message holds");
      p.sink = Sink::Chunk;
      p.payloadOp = op;
      p.payloadDst = static_cast<uint8_t*>(op->data) + op->offset;
      p.payloadLeft = static_cast<size_t>(f.bytes);
      if (p.payloadLeft == 0) onPayloadDone(peer);
      return;
    }
    case p2p::FrameType::Fin: {
      auto it = p.rendezvous.find(f.id);
      if (it == p.rendezvous.end()) return protocolError("completion of an unknown message");
      P2pOp* op = it->second;
      p.rendezvous.erase(it);
      complete(op, nullptr);
      return;
    }
    case p2p::FrameType::Refuse: {
      auto it = p.rendezvous.find(f.id);
      if (it != p.rendezvous.end()) {
        P2pOp* op = it->second;
        p.rendezvous.erase(it);
        CommError e(ErrorCode::Mismatch, mismatchText(false, *op, dtype, f.bytes));
        complete(op, &e);
        return;
      }
      auto e = p.eagerUnacked.find(f.id);
      if (e == p.eagerUnacked.end()) return protocolError("refusal of an unknown message");
      P2pOp shadow;  // the finished eager send, for the message
      shadow.kind = P2pOp::Kind::Send;
      shadow.peer = peer;
      shadow.tag = e->second.tag;
      shadow.comm = e->second.comm;
      shadow.dtype = e->second.dtype;
      shadow.count = static_cast<size_t>(e->second.bytes / dtypeSize(e->second.dtype));
      p.notice = CommError(ErrorCode::Mismatch, "an earlier " + mismatchText(false, shadow, dtype, f.bytes));
      p.eagerOutstanding -= eagerCharge(e->second.bytes);
      p.eagerUnacked.erase(e);
      return;
    }
    case p2p::FrameType::Credit: {
      auto e = p.eagerUnacked.find(f.id);
      if (e == p.eagerUnacked.end()) return protocolError("credit for an unknown message");
      p.eagerOutstanding -= eagerCharge(e->second.bytes);
      p.eagerUnacked.erase(e);
      return;
    }
    case p2p::FrameType::Goodbye:
      // The peer's last frame: everything it sent is here. Closing now (nothing unread on our side)
      // ends the stream with a FIN, not a reset, so the peer, which reads until our end, loses nothing.
      p.saidGoodbye = true;
      peerClosed(peer);
      return;
    case p2p::FrameType::Abort:
      if (f.bytes > p2p::kMaxAbortText) return protocolError("abort text of " + std::to_string(f.bytes) + " bytes");
      p.sink = Sink::AbortText;
      p.discard.resize(static_cast<size_t>(f.bytes));
      p.payloadDst = p.discard.data();
      p.payloadLeft = p.discard.size();
      if (p.payloadLeft == 0) onPayloadDone(peer);
      return;
  }
}

void P2pEngine::onPayloadDone(int peer) {
  Peer& p = state_[static_cast<size_t>(peer)];
  const p2p::Frame& f = p.frame;
  Sink sink = p.sink;
  P2pOp* op = p.payloadOp;
  p.sink = Sink::None;
  p.payloadOp = nullptr;
  switch (sink) {
    case Sink::RecvOp:
      queueFrame(p, p2p::FrameType::Credit, f.tag, f.id, f.bytes, op->dtype, f.comm);
      complete(op, nullptr);
      break;
    case Sink::Held: {
      // A receive may have been posted while the payload was still arriving (it found nothing then).
      const uint64_t key = keyOf(f.comm, f.tag);
      std::optional<P2pOp*> posted = p.matcher.takePosted(key);
      if (posted) matchArrival(p, *posted, p.held);
      else p.matcher.holdArrival(key, std::move(p.held));
      break;
    }
    case Sink::Discard: p.discard.clear(); break;
    case Sink::Chunk:
      op->offset += static_cast<size_t>(f.bytes);
      if (op->offset == op->bytes()) {
        p.receiving.erase(f.id);
        queueFrame(p, p2p::FrameType::Fin, f.tag, f.id, 0, op->dtype, f.comm);
        complete(op, nullptr);
      }
      break;
    case Sink::AbortText: {
      std::string text(p.discard.begin(), p.discard.end());
      p.discard.clear();
      const auto code = f.id <= static_cast<uint32_t>(ErrorCode::Cancelled) ? static_cast<ErrorCode>(f.id) : ErrorCode::Peer;
      if (f.tag == 1) {
        // The job failed somewhere (a dead rank, say): everything fails with that cause, and every
        // peer hears it from here too, so ranks far from the failure learn it without a timeout.
        failAllPeers(CommError(code == ErrorCode::Cancelled ? ErrorCode::Closed : code, text), true);
      } else {
        failPeer(peer, CommError(ErrorCode::Peer, who(peer) + " gave up on its point-to-point link to this rank: " + text));
      }
      break;
    }
    case Sink::None: break;
  }
}

void P2pEngine::writeTo(int peer) {
  Peer& p = state_[static_cast<size_t>(peer)];
  while (!p.out.empty() && p.link && !p.error) {
    OutItem& it = p.out.front();
    iovec iov[2];
    int cnt = 0;
    if (it.written < p2p::Frame::kSize) iov[cnt++] = {it.header + it.written, p2p::Frame::kSize - it.written};
    const size_t payloadDone = it.written > p2p::Frame::kSize ? it.written - p2p::Frame::kSize : 0;
    if (it.payloadLen > payloadDone) iov[cnt++] = {const_cast<uint8_t*>(it.payload) + payloadDone, it.payloadLen - payloadDone};
    int err = 0;
    long n = p.link->write(iov, cnt, &err);
    if (n == 0) return;
    if (n < 0) {
      // The peer may have said why it closed (an Abort frame still in our receive buffer): read first.
      readFrom(peer);
      if (!p.error) failPeer(peer, CommError(ErrorCode::Peer, who(peer) + ": connection lost (" + std::strerror(err) + "): the rank died or was killed"));
      return;
    }
    it.written += static_cast<size_t>(n);
    if (it.written < p2p::Frame::kSize + it.payloadLen) return;  // the kernel's buffer is full
    OutItem done = it;
    p.out.pop_front();
    if (done.eagerSend) complete(done.eagerSend, nullptr);
    if (done.stream) {
      done.stream->offset += done.payloadLen;
      done.stream->deadlineMs = nowMs() + timeoutMs_;
      if (done.stream->offset < done.stream->bytes()) queueChunk(p, done.stream);  // to the back: other messages interleave
    }
  }
}

// The peer said goodbye and closed: eager messages it sent before are complete and stay receivable;
// everything else waiting on it fails.
void P2pEngine::peerClosed(int peer) {
  Peer& p = state_[static_cast<size_t>(peer)];
  p.closedCleanly = true;
  p.matcher.dropArrivalsIf([](const Arrival& a) { return a.type != p2p::FrameType::Eager; });
  failPeer(peer, CommError(ErrorCode::Peer, who(peer) + " closed its communicator"));
}

void P2pEngine::failAllPeers(const CommError& error, bool announce) {
  for (size_t q = 0; q < state_.size(); ++q)
    if (static_cast<int>(q) != rank_ && !state_[q].error) failPeer(static_cast<int>(q), error, announce, true);
}

void P2pEngine::sendAbort(Peer& p, const CommError& error, bool job) {
  // Only at a frame boundary; the peer otherwise sees the link end without a goodbye.
  if (!p.link || (!p.out.empty() && p.out.front().written > 0)) return;
  std::string text = std::string(error.what()).substr(0, p2p::kMaxAbortText);
  p2p::Frame f;
  f.type = p2p::FrameType::Abort;
  f.tag = job ? 1 : 0;
  f.id = static_cast<uint32_t>(error.code());
  f.bytes = text.size();
  uint8_t header[p2p::Frame::kSize];
  f.encode(header);
  iovec iov[2] = {{header, sizeof header}, {text.data(), text.size()}};
  int err = 0;
  (void)p.link->write(iov, 2, &err);  // small: fits the socket buffer unless the peer stopped reading
}

void P2pEngine::failPeer(int peer, const CommError& error, bool announce, bool job) {
  Peer& p = state_[static_cast<size_t>(peer)];
  if (!p.error) p.error = error;
  if (announce) sendAbort(p, error, job);
  p.link.reset();
  p.out.clear();
  p.sink = Sink::None;
  p.payloadOp = nullptr;
  for (P2pOp* op : p.matcher.drainPosted()) complete(op, &error);
  if (!p.closedCleanly) p.matcher.clearArrivals();
  for (auto& kv : p.rendezvous) complete(kv.second, &error);
  p.rendezvous.clear();
  for (auto& kv : p.receiving) complete(kv.second, &error);
  p.receiving.clear();
  p.eagerUnacked.clear();
  // Eager sends still queued complete with the error too (their frame was not written).
  for (auto& op : live_)
    if (!op->finished && op->peer == peer) complete(op.get(), &error);
}

void P2pEngine::checkDeadlines() {
  const int64_t now = nowMs();
  for (size_t i = 0; i < live_.size(); ++i) {
    P2pOp* op = live_[i].get();
    if (op->finished || now < op->deadlineMs) continue;
    // The link's state for this peer can no longer be trusted (a late message would meet the wrong
    // receive): the whole link fails.
    failPeer(op->peer,
             CommError(ErrorCode::Timeout, opText(*op) + ": no progress for " + seconds(timeoutMs_) + " (the link to that rank is unusable from now on)"),
             true);
  }
  live_.erase(std::remove_if(live_.begin(), live_.end(), [](const std::unique_ptr<P2pOp>& op) { return op->finished; }), live_.end());
}

int64_t P2pEngine::preparePoll(std::vector<pollfd>& fds, std::vector<int>& owner, bool withWake) {
  fds.clear();
  owner.clear();
  if (withWake) {
    fds.push_back({wakeFd_, POLLIN, 0});
    owner.push_back(-1);
  }
  for (size_t q = 0; q < state_.size(); ++q) {
    Peer& p = state_[q];
    if (!p.link) continue;
    fds.push_back({p.link->waitHandle(), static_cast<short>(POLLIN | (p.out.empty() ? 0 : POLLOUT)), 0});
    owner.push_back(static_cast<int>(q));
  }
  int64_t wait = kTickMs;
  const int64_t now = nowMs();
  for (auto& op : live_)
    if (!op->finished) wait = std::min<int64_t>(wait, std::max<int64_t>(0, op->deadlineMs - now));
  return wait;
}

void P2pEngine::afterPoll(const std::vector<pollfd>& fds, const std::vector<int>& owner) {
  for (size_t i = 0; i < fds.size(); ++i) {
    const int q = owner[i];
    if (q < 0 || !state_[static_cast<size_t>(q)].link) continue;  // the wake fd, or a link failed meanwhile
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) readFrom(q);
    if (fds[i].revents & POLLOUT) writeTo(q);
  }
  // Frames queued by what was just read (Cts, Credit, Fin, chunks) go out without another poll.
  for (size_t q = 0; q < state_.size(); ++q)
    if (state_[q].link && !state_[q].out.empty()) writeTo(static_cast<int>(q));
  checkDeadlines();
}

void P2pEngine::threadMain() {
  std::vector<pollfd> fds;
  std::vector<int> owner;
  int64_t lastActivityUs = 0;
  for (;;) {
    int64_t wait;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
    }
    {
      std::lock_guard<std::mutex> state(stateMu_);
      takeSubmissions();
      wait = preparePoll(fds, owner, true);
      // Shortly after activity the next message usually follows at once (a ping-pong, a ring step):
      // poll without sleeping for spinUs_ (RINGTRAIN_SPIN_US), yielding the core, since a wake-up from a sleeping
      // poll costs tens of microseconds on a busy machine.
      if (!live_.empty() && nowMicros() - lastActivityUs < spinUs_) wait = -1;
    }
    if (wait < 0) {
      sched_yield();
      wait = 0;
    }
    // Polled without the state lock, so a synchronous caller can drive the links itself meanwhile.
    int rc = ::poll(fds.data(), fds.size(), static_cast<int>(wait));
    if (rc > 0) lastActivityUs = nowMicros();
    if (rc < 0 && errno != EINTR) {
      log_(std::string("p2p poll: ") + std::strerror(errno));
      break;
    }
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      ssize_t ignored = ::read(wakeFd_, &v, sizeof v);
      (void)ignored;
    }
    std::unique_lock<std::mutex> state(stateMu_);
    // A synchronous caller driving the links reads whatever woke this poll: wait for it rather
    // than take its message (it would then sleep in its own poll, unaware its call completed).
    inlineDone_.wait(state, [&] { return inlineActive_ == 0; });
    afterPoll(fds, owner);
  }
  std::unique_lock<std::mutex> state(stateMu_);
  inlineDone_.wait(state, [&] { return inlineActive_ == 0; });
  shutdownLinks();
}

bool P2pEngine::runInline(std::vector<std::unique_ptr<P2pOp>>& ops, const std::function<bool()>& finished) {
  std::unique_lock<std::mutex> state(stateMu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
  }
  takeSubmissions();  // what was submitted earlier starts first: per-tag order
  for (auto& op : ops) start(std::move(op));
  ++inlineActive_;
  struct Leave {
    P2pEngine& e;
    ~Leave() {
      --e.inlineActive_;
      e.inlineDone_.notify_all();
    }
  } leave{*this};
  std::vector<pollfd> fds;
  std::vector<int> owner;
  const int64_t spinUntil = nowMicros() + spinUs_;
  while (!finished()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;  // the engine thread fails what is left
    }
    takeSubmissions();
    int64_t wait = preparePoll(fds, owner, false);
    state.unlock();
    if (nowMicros() < spinUntil) {
      sched_yield();
      wait = 0;
    }
    // The engine thread may poll the same links: whoever takes the lock first reads.
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait)) < 0 && errno != EINTR) {
      state.lock();
      break;
    }
    state.lock();
    afterPoll(fds, owner);
    if (fds.empty() && !finished()) {
      // No links left (all failed): the ops were completed with their errors by failPeer.
      break;
    }
  }
  return true;
}

void P2pEngine::shutdownLinks() {
  takeSubmissions();  // ops that raced the close fail below with the others
  CommError closed(ErrorCode::Closed, "the communicator was closed");
  for (auto& op : live_) complete(op.get(), &closed);
  // Goodbye lets each peer tell a clean close from a crash. A frame half-written (an eager send
  // the caller no longer guarantees) cannot be finished: that link just closes.
  for (Peer& p : state_) {
    if (!p.link || p.error) continue;
    bool midFrame = !p.out.empty() && p.out.front().written > 0;
    if (midFrame) {
      p.link.reset();
      continue;
    }
    p.out.clear();
    queueFrame(p, p2p::FrameType::Goodbye, 0, 0, 0, Dtype::Uint8, 0);
  }
  const int64_t until = nowMs() + kGoodbyeLingerMs;
  for (;;) {
    bool pending = false;
    for (size_t q = 0; q < state_.size(); ++q) {
      Peer& p = state_[q];
      if (!p.link || p.error || p.out.empty()) continue;
      writeTo(static_cast<int>(q));
      pending = pending || (p.link && !p.out.empty());
    }
    if (!pending || nowMs() >= until) break;
    ::usleep(1000);
  }
  // Then read (and drop) until each peer ends its stream too: closing a socket with unread bytes
  // makes the kernel reset the connection, and a reset discards what the peer has not read yet.
  std::vector<pollfd> fds;
  for (Peer& p : state_) {
    if (!p.link) continue;
    if (p.error || !p.out.empty()) {
      p.link.reset();
      continue;
    }
    p.link->shutdownWrite();
  }
  uint8_t sink[4096];
  while (nowMs() < until) {
    fds.clear();
    for (Peer& p : state_)
      if (p.link) fds.push_back({p.link->waitHandle(), POLLIN, 0});
    if (fds.empty()) break;
    if (::poll(fds.data(), fds.size(), msUntil(until, kGoodbyeLingerMs)) <= 0) break;
    for (Peer& p : state_) {
      if (!p.link) continue;
      int err = 0;
      for (;;) {
        long n = p.link->read(sink, sizeof sink, &err);
        if (n > 0) continue;
        if (n < 0) p.link.reset();  // the end of its stream (or an error): done with this one
        break;
      }
    }
  }
  for (Peer& p : state_) p.link.reset();
  live_.clear();
}

}  // namespace ringtrain
