#include "ring.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "clock.h"
#include "control_parser.h"
#include "reduce_kernels.h"

namespace ringtrain {
namespace {

// A rank that only sees a peer's data dry up waits this much longer than one that sees a peer fail
// to start the call at all, so the more precise diagnosis reaches every rank first.
constexpr int kDataGraceMs = 2000;
// How long a failing rank waits for a better explanation (an abort from the right) before blaming
// the neighbour whose connection broke, and lingers so its own abort overtakes the close.
constexpr int kAbortGraceMs = 1000;
constexpr size_t kMinSegmentBytes = 16 << 10;

std::string seconds(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

}  // namespace

Ring::Ring(RingOptions options, RingLinks links, int cancelFd)
    : o_(std::move(options)), links_(std::move(links)), cancelFd_(cancelFd) {
  left_ = (o_.rank + o_.size - 1) % o_.size;
  right_ = (o_.rank + 1) % o_.size;
  for (int r = 0; r < o_.size; ++r) {
    names_.push_back(r < static_cast<int>(o_.peers.size()) ? describePeer(r, o_.peers[r]) : "rank " + std::to_string(r));
  }
  size_t seg = std::max<size_t>(o_.segmentBytes, 64);
  o_.segmentBytes = seg - seg % 8;  // whole elements of every dtype
  if (o_.size > 1) scratch_.resize(o_.segmentBytes);
  heartbeatMs_ = std::clamp(o_.timeoutMs / 4, 20, 1000);
  announceAfterMs_ = std::clamp(std::min(o_.stallWarningMs, o_.timeoutMs) / 4, 1, 20);
  hasPartners_ = o_.size > 1;
  for (int q : doublingPartners(o_.rank, o_.size)) {
    if (static_cast<size_t>(q) >= links_.partners.size() || !links_.partners[static_cast<size_t>(q)].valid()) hasPartners_ = false;
  }
  lastHeardRight_ = nowMs();
  nextHeartbeat_ = 0;
}

std::string Ring::callName(const wire::CollectiveHeader& h) const {
  std::string s = std::string(wire::kindName(h.kind)) + " #" + std::to_string(h.seq);
  auto dt = static_cast<Dtype>(h.dtype);
  switch (h.kind) {
    case wire::CollectiveKind::Allreduce:
      s += " (" + std::to_string(h.count) + " x " + dtypeName(dt) + ", " + opName(static_cast<ReduceOp>(h.op)) + ")";
      break;
    case wire::CollectiveKind::Broadcast:
      s += " (" + std::to_string(h.count) + " x " + dtypeName(dt) + ", root " + std::to_string(h.root) + ")";
      break;
    case wire::CollectiveKind::Allgather:
      s += " (" + std::to_string(h.count) + " x " + dtypeName(dt) + " per rank)";
      break;
    case wire::CollectiveKind::Reducescatter:
      s += " (" + std::to_string(h.count) + " x " + dtypeName(dt) + ", " + opName(static_cast<ReduceOp>(h.op)) + ")";
      break;
    default: break;
  }
  return s;
}

void Ring::failPeerGone(int peer, const std::string& during) {
  throw CommError(ErrorCode::Peer, names_[peer] + " died or closed its connection " + during);
}

void Ring::sendControl(wire::ControlType type, uint32_t origin, const std::string& text) {
  if (!links_.left.valid() || leftSaidGoodbye_) return;
  encodeControl(ctlOut_, type, origin, text);
  flushControl();
}

void Ring::flushControl() {
  while (!ctlOut_.empty() && links_.left.valid()) {
    int err = 0;
    long n = sendSome(links_.left.fd(), ctlOut_.data(), ctlOut_.size(), &err);
    if (n < 0) {
      ctlOut_.clear();
      if (leftSaidGoodbye_) return;
      failPeerGone(left_, "(while this rank sent it a control message: " + std::string(std::strerror(err)) + ")");
    }
    if (n == 0) return;
    ctlOut_.erase(ctlOut_.begin(), ctlOut_.begin() + n);
  }
}

void Ring::maybeHeartbeat() {
  int64_t now = nowMs();
  if (now < nextHeartbeat_) return;
  nextHeartbeat_ = now + heartbeatMs_;
  if (ctlOut_.empty()) sendControl(wire::ControlType::Heartbeat, static_cast<uint32_t>(o_.rank), "");
}

void Ring::checkLiveness(const std::string& call) {
  if (rightSaidGoodbye_ || rightEof_ || !links_.right.valid()) return;
  int64_t silent = nowMs() - lastHeardRight_;
  if (silent > o_.timeoutMs) {
    const std::string during = call.rfind("between", 0) == 0 ? call : "during " + call;
    throw CommError(ErrorCode::Timeout, names_[right_] + " stopped responding: no heartbeat for " + seconds(silent) +
                                            " (process frozen, host down or network cut) " + during);
  }
}

void Ring::pollControl() {
  uint8_t buf[4096];
  std::vector<ControlMessage> messages;
  for (int spins = 0; spins < 64 && links_.right.valid() && !rightEof_; ++spins) {
    int err = 0;
    long n = recvSome(links_.right.fd(), buf, sizeof buf, &err);
    if (n < 0) {
      // Whether a vanished right neighbour is a failure depends on whether we still owe it data:
      // the callers decide (rightGone()).
      rightEof_ = true;
      rightAbrupt_ = !rightSaidGoodbye_;
      rightError_ = err;
      return;
    }
    if (n == 0) return;
    lastHeardRight_ = nowMs();
    if (!ctlParser_.feed(buf, static_cast<size_t>(n), messages)) {
      throw CommError(ErrorCode::Peer, names_[right_] + " sent a corrupt control message");
    }
    for (ControlMessage& m : messages) {
      if (m.type == wire::ControlType::Goodbye) {
        rightSaidGoodbye_ = true;
      } else if (m.type == wire::ControlType::Abort && !abortArrived_) {
        // Payload: the failed call's sequence number (8 bytes), then the reason.
        abortArrived_ = true;
        abortOrigin_ = m.origin;
        abortSeq_ = m.text.size() >= 8 ? wire::get64(reinterpret_cast<const uint8_t*>(m.text.data())) : 0;
        abortText_ = m.text.size() >= 8 ? m.text.substr(8) : m.text;
      }
    }
    messages.clear();
    if (abortArrived_) return;
  }
}

void Ring::throwIfAborted() {
  // An abort of a later call than the one running here (its origin finished this one) waits until
  // this call ends: it may still complete, and the next call fails with the abort at its start.
  if (abortArrived_ && (currentCall_.empty() || abortSeq_ <= lastSeq_)) throw CommError(ErrorCode::Peer, abortText_);
}

std::string Ring::beginCall(const wire::CollectiveHeader& h) {
  lastSeq_ = h.seq;
  std::string call = callName(h);
  currentCall_ = call;
  throwIfAborted();
  if (!links_.right.valid() || !links_.left.valid()) throw CommError(ErrorCode::Closed, "the ring is closed; cannot run " + call);
  if (rightSaidGoodbye_ || leftSaidGoodbye_) {
    int who = rightSaidGoodbye_ ? right_ : left_;
    throw CommError(ErrorCode::Mismatch, names_[who] + " has already closed its communicator, so " + call +
                                             " cannot run: the ranks issued different numbers of collectives");
  }
  return call;
}

void Ring::warnStall(const std::string& call, int64_t waitedMs) {
  o_.log("stall: rank " + std::to_string(o_.rank) + " has waited " + seconds(waitedMs) + " in " + call + " for " + names_[left_] +
         ", which has not started it (it is behind: busy, stalled, or it did not issue this call)");
}

void Ring::run(const wire::CollectiveHeader& header, std::vector<Step>& steps, Gate gate, Dtype dtype, ReduceOp op,
               PhaseTimes* times, size_t phaseBoundaryStep) {
  CallScope scope{currentCall_};
  const std::string call = beginCall(header);
  const size_t S = steps.size();
  const size_t elem = dtypeSize(dtype);
  // At least ~4 segments a chunk, so a rank forwards the first part of a chunk while the rest is
  // still arriving and the links never idle at step boundaries; capped by the configured segment.
  size_t largest = 0;
  for (const Step& st : steps) largest = std::max(largest, st.recvBytes);
  size_t seg = std::min(o_.segmentBytes, std::max<size_t>(kMinSegmentBytes, largest / 4));
  seg -= seg % 8;
  uint8_t hdrOut[wire::CollectiveHeader::kSize];
  header.encode(hdrOut);
  size_t hdrOutOff = 0;
  uint8_t hdrIn[wire::CollectiveHeader::kSize];
  size_t hdrInHave = 0;
  bool hdrOk = false;
  size_t sStep = 0, sOff = 0, rStep = 0, rOff = 0, rDone = 0;
  const int64_t start = nowMs();
  int64_t lastProgress = start;
  bool stallWarned = false;
  bool leftQuiet = false;  // left hung up after finishing its part: stop polling it

  auto sendLimit = [&]() -> size_t {
    if (sStep >= S) return 0;
    if (gate == Gate::SameStep) return rStep > sStep ? steps[sStep].sendBytes : rDone;
    if (sStep == 0 || sStep - 1 < rStep) return steps[sStep].sendBytes;
    if (sStep - 1 == rStep) return rDone;
    return 0;
  };
  auto advance = [&]() {
    while (sStep < S && sOff == steps[sStep].sendBytes) {
      ++sStep;
      sOff = 0;
    }
    while (hdrOk && rStep < S && rDone == steps[rStep].recvBytes) {
      ++rStep;
      rOff = 0;
      rDone = 0;
      if (times && rStep == phaseBoundaryStep) times->reduceScatterDoneUs = nowUs();
    }
  };

  for (;;) {
    advance();
    const bool hdrSent = hdrOutOff == sizeof hdrOut;
    if (hdrSent && hdrOk && sStep == S && rStep == S) break;
    const bool wantSend = !hdrSent || (sStep < S && sOff < sendLimit());
    const bool wantRecv = !hdrOk || rStep < S;

    pollfd fds[3];
    fds[0] = {rightEof_ ? -1 : links_.right.fd(), static_cast<short>(POLLIN | (wantSend ? POLLOUT : 0)), 0};
    short leftEvents = static_cast<short>((wantRecv ? POLLIN : 0) | (ctlOut_.empty() ? 0 : POLLOUT));
    fds[1] = {leftQuiet ? -1 : links_.left.fd(), leftEvents, 0};
    fds[2] = {cancelFd_, POLLIN, 0};
    int wait = std::max(1, msUntil(nextHeartbeat_, 1000));
    int rc = ::poll(fds, 3, wait);
    if (rc < 0 && errno != EINTR) throw CommError(ErrorCode::Internal, std::string("poll: ") + std::strerror(errno));
    if (fds[2].revents & POLLIN) throw CommError(ErrorCode::Cancelled, "communicator closed during " + call);

    const int64_t before = lastProgress;
    // Right link: control messages in, data out.
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      pollControl();
      throwIfAborted();
      // A neighbour whose connection ends without a goodbye crashed: the ring is broken even if we
      // owe it nothing more, so fail now and announce it (waiting for our own data would only let
      // ranks further on blame the echo). A neighbour that said goodbye after finishing this call
      // may close while we still receive; one that closes before taking all we must send never
      // issued this call.
      if (rightAbrupt_) failPeerGone(right_, "during " + call + (rightError_ ? std::string(" (") + std::strerror(rightError_) + ")" : std::string()));
      if (rightSaidGoodbye_ && (!hdrSent || sStep < S)) {
        throw CommError(ErrorCode::Mismatch, names_[right_] + " closed its communicator while rank " + std::to_string(o_.rank) +
                                                 " is in " + call + ": the ranks issued different numbers of collectives");
      }
    }
    if (wantSend && (fds[0].revents & POLLOUT) && !rightEof_) {
      int err = 0;
      long n;
      if (!hdrSent) {
        n = sendSome(links_.right.fd(), hdrOut + hdrOutOff, sizeof hdrOut - hdrOutOff, &err);
        if (n > 0) hdrOutOff += static_cast<size_t>(n);
        fwdMidFrame_ = hdrOutOff > 0 && hdrOutOff < sizeof hdrOut;
      } else {
        fwdMidFrame_ = true;  // until the whole call's data has gone out
        n = sendSome(links_.right.fd(), steps[sStep].sendPtr + sOff, sendLimit() - sOff, &err);
        if (n > 0) sOff += static_cast<size_t>(n);
      }
      if (n < 0) failPeerGone(right_, "during " + call + " (send: " + std::strerror(err) + ")");
      if (n > 0) lastProgress = nowMs();
    }
    // Left link: data in, control out.
    if (fds[1].revents & POLLOUT) flushControl();
    if (wantRecv && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      for (int spins = 0; spins < 16; ++spins) {
        int err = 0;
        long n;
        if (!hdrOk) {
          n = recvSome(links_.left.fd(), hdrIn + hdrInHave, sizeof hdrIn - hdrInHave, &err);
          if (n > 0) {
            hdrInHave += static_cast<size_t>(n);
            if (hdrInHave == sizeof hdrIn) {
              wire::CollectiveHeader theirs;
              if (!theirs.decode(hdrIn)) throw CommError(ErrorCode::Peer, names_[left_] + " sent a corrupt collective header during " + call);
              if (forwardPayloadIsEmpty(theirs) && theirs.seq < header.seq) {
                hdrInHave = 0;  // the announcement of a small call it was slow in, finished here
                continue;
              }
              if (theirs.kind == wire::CollectiveKind::Abort) readForwardAbort(theirs);
              if (theirs.kind == wire::CollectiveKind::Goodbye) {
                leftSaidGoodbye_ = true;
                throw CommError(ErrorCode::Mismatch, names_[left_] + " closed its communicator while rank " + std::to_string(o_.rank) +
                                                         " is in " + call + ": the ranks issued different numbers of collectives");
              }
              if (!(theirs == header)) {
                throw CommError(ErrorCode::Mismatch, "mismatched collectives: rank " + std::to_string(o_.rank) + " called " + call +
                                                         " but " + names_[left_] + " called " + callName(theirs));
              }
              hdrOk = true;
              if (times) times->headerDoneUs = nowUs();
              advance();
            }
          }
        } else if (rStep < S) {
          Step& st = steps[rStep];
          if (st.reduce) {
            size_t segEnd = std::min(rDone + seg, st.recvBytes);
            n = recvSome(links_.left.fd(), scratch_.data() + (rOff - rDone), segEnd - rOff, &err);
            if (n > 0) {
              rOff += static_cast<size_t>(n);
              if (rOff == segEnd) {
                reduceInto(dtype, op, st.recvPtr + rDone, scratch_.data(), (segEnd - rDone) / elem);
                if (st.finishAvg) finishAverage(dtype, st.recvPtr + rDone, (segEnd - rDone) / elem, o_.size);
                rDone = segEnd;
              }
            }
          } else {
            n = recvSome(links_.left.fd(), st.recvPtr + rOff, st.recvBytes - rOff, &err);
            if (n > 0) {
              rOff += static_cast<size_t>(n);
              rDone = rOff;
            }
          }
          if (n > 0) advance();
        } else {
          break;
        }
        // If the right neighbour already vanished abruptly, the left closing is most likely the
        // echo of that failure coming round the ring: name the first one.
        if (n < 0) failPeerGone(rightAbrupt_ ? right_ : left_, "during " + call + (err ? std::string(" (") + std::strerror(err) + ")" : std::string()));
        if (n == 0) break;
        lastProgress = nowMs();
        if (!(!hdrOk || rStep < S)) break;
      }
    } else if (!wantRecv && (fds[1].revents & (POLLHUP | POLLERR))) {
      leftQuiet = true;
    }

    maybeHeartbeat();
    const int64_t now = nowMs();
    if (lastProgress != before) continue;
    checkLiveness(call);
    const int64_t idleFor = now - lastProgress;
    if (!hdrOk && hdrSent) {
      if (!stallWarned && now - start >= o_.stallWarningMs) {
        stallWarned = true;
        warnStall(call, now - start);
      }
      if (idleFor > o_.timeoutMs) {
        throw CommError(ErrorCode::Timeout, names_[left_] + " did not start " + call + " within " + seconds(idleFor) +
                                                " of rank " + std::to_string(o_.rank) + ": it is stalled, or the ranks' calls diverge");
      }
    } else if (idleFor > o_.timeoutMs + kDataGraceMs) {
      if (wantRecv) {
        throw CommError(ErrorCode::Timeout, names_[left_] + " sent no data for " + seconds(idleFor) + " during " + call);
      }
      throw CommError(ErrorCode::Timeout, names_[right_] + " read no data for " + seconds(idleFor) + " during " + call);
    }
  }
  fwdMidFrame_ = false;
}

bool Ring::forwardPayloadIsEmpty(const wire::CollectiveHeader& h) const {
  if (!hasPartners_) return false;
  if (h.kind == wire::CollectiveKind::Barrier) return true;
  return h.kind == wire::CollectiveKind::Allreduce && Dtype(h.dtype) <= Dtype::BFloat16 &&
         h.count * dtypeSize(static_cast<Dtype>(h.dtype)) <= o_.smallBytes;
}

void Ring::readForwardAbort(const wire::CollectiveHeader& h) { readAbortFrame(links_.left.fd(), left_, h, std::string()); }

void Ring::readAbortFrame(int fd, int from, const wire::CollectiveHeader& h, std::string text) {
  recordAbortFrame(fd, from, h, std::move(text));
  throw CommError(ErrorCode::Peer, abortText_);
}

void Ring::recordAbortFrame(int fd, int from, const wire::CollectiveHeader& h, std::string text) {
  // A neighbour or partner failed at a frame boundary and says why; the text follows the header
  // (`text` holds what was already read of it).
  const size_t want = std::min<uint64_t>(h.count, wire::kMaxControlPayload);
  if (text.size() > want) text.resize(want);
  size_t have = text.size();
  text.resize(want);
  const int64_t until = nowMs() + 1000;
  while (have < text.size() && nowMs() < until) {
    int err = 0;
    long n = recvSome(fd, text.data() + have, text.size() - have, &err);
    if (n < 0) break;
    if (n == 0) {
      pollfd p = {fd, POLLIN, 0};
      ::poll(&p, 1, msUntil(until, 100));
    }
    have += static_cast<size_t>(std::max(0L, n));
  }
  text.resize(have);
  if (!abortArrived_) {
    abortArrived_ = true;
    abortOrigin_ = h.root;
    abortSeq_ = h.seq;
    abortText_ = text.empty() ? names_[from] + " failed" : text;
  }
}

void Ring::pumpAnnouncement(const wire::CollectiveHeader& h, const std::string& call) {
  if (!announced_ && nowMs() - callStartMs_ >= announceAfterMs_) {
    announced_ = true;
    announceOut_.resize(wire::CollectiveHeader::kSize);
    h.encode(announceOut_.data());
    announceOff_ = 0;
  }
  if (announceOff_ < announceOut_.size() && !rightEof_) {
    int err = 0;
    long n = sendSome(links_.right.fd(), announceOut_.data() + announceOff_, announceOut_.size() - announceOff_, &err);
    if (n < 0) failPeerGone(right_, "during " + call + " (send: " + std::strerror(err) + ")");
    announceOff_ += static_cast<size_t>(n);
    fwdMidFrame_ = announceOff_ > 0 && announceOff_ < announceOut_.size();
  }
}

void Ring::flushAnnouncement(const std::string& call) {
  // A started announcement must leave whole: the next ring collective's header follows it.
  const int64_t until = nowMs() + o_.timeoutMs;
  while (announceOff_ < announceOut_.size() && !rightEof_) {
    int err = 0;
    long n = sendSome(links_.right.fd(), announceOut_.data() + announceOff_, announceOut_.size() - announceOff_, &err);
    if (n < 0) failPeerGone(right_, "during " + call + " (send: " + std::strerror(err) + ")");
    announceOff_ += static_cast<size_t>(n);
    if (n > 0) continue;
    if (nowMs() > until) throw CommError(ErrorCode::Timeout, names_[right_] + " read nothing for " + seconds(o_.timeoutMs) + " after " + call);
    pollfd p = {links_.right.fd(), POLLOUT, 0};
    ::poll(&p, 1, 100);
  }
  fwdMidFrame_ = false;
}

int Ring::peekLeftFrame(uint64_t staleBelowSeq, wire::CollectiveHeader& out) {
  constexpr size_t H = wire::CollectiveHeader::kSize;
  uint8_t buf[H];
  for (;;) {
    ssize_t n = ::recv(links_.left.fd(), buf, H, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return -1;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    if (static_cast<size_t>(n) < H) return 0;
    if (!out.decode(buf)) throw CommError(ErrorCode::Peer, names_[left_] + " sent a corrupt collective header");
    if (!forwardPayloadIsEmpty(out) || out.seq >= staleBelowSeq) return 1;
    ssize_t got = ::recv(links_.left.fd(), buf, H, MSG_DONTWAIT);  // a stale announcement: drop it
    (void)got;
  }
}

void Ring::checkLeft(const wire::CollectiveHeader& h, const std::string& call) {
  wire::CollectiveHeader theirs;
  int rc = peekLeftFrame(h.seq, theirs);
  if (rc < 0) {
    if (leftSaidGoodbye_) {
      leftState_ = LeftState::Quiet;
      return;
    }
    failPeerGone(left_, "during " + call);
  }
  if (rc == 0) return;
  uint8_t buf[wire::CollectiveHeader::kSize];
  if (theirs.kind == wire::CollectiveKind::Abort) {
    ssize_t got = ::recv(links_.left.fd(), buf, sizeof buf, MSG_DONTWAIT);
    (void)got;
    recordAbortFrame(links_.left.fd(), left_, theirs, std::string());
    throwIfAborted();
    // It failed in a later call, so it finished this one: this call may still complete, and the
    // next one fails at its start.
    leftState_ = LeftState::Started;
    return;
  }
  if (theirs.kind == wire::CollectiveKind::Goodbye) {
    // It finished this call without needing to announce it, or never issued it: its partners
    // see which (its goodbye reaches them where they expect this call's data).
    leftSaidGoodbye_ = true;
    leftState_ = LeftState::Quiet;
    return;
  }
  if (theirs.seq > h.seq) {
    leftState_ = LeftState::Started;  // it is already in a later call; that frame is for then
    return;
  }
  if (!(theirs == h)) {
    throw CommError(ErrorCode::Mismatch, "mismatched collectives: rank " + std::to_string(o_.rank) + " called " + call + " but " +
                                             names_[left_] + " called " + callName(theirs));
  }
  ssize_t got = ::recv(links_.left.fd(), buf, sizeof buf, MSG_DONTWAIT);
  (void)got;
  leftState_ = LeftState::Started;
}

void Ring::waitSmall(const wire::CollectiveHeader& h, int partnerFd, short partnerEvents, const std::string& call) {
  // One sleep of the small path: the partner link (if any), the left link (announcements, aborts,
  // a neighbour in a different collective), the control stream, cancellation and heartbeats.
  pumpAnnouncement(h, call);
  const bool announcing = announceOff_ < announceOut_.size();
  pollfd fds[4];
  fds[0] = {partnerFd, partnerEvents, 0};
  fds[1] = {rightEof_ ? -1 : links_.right.fd(), static_cast<short>(POLLIN | (announcing ? POLLOUT : 0)), 0};
  fds[2] = {cancelFd_, POLLIN, 0};
  fds[3] = {leftState_ == LeftState::Unknown && links_.left.valid() ? links_.left.fd() : -1, static_cast<short>(POLLIN | POLLRDHUP), 0};
  int wait = msUntil(nextHeartbeat_, 1000);
  if (!announced_) wait = std::min(wait, msUntil(callStartMs_ + announceAfterMs_, 1000));
  int rc = ::poll(fds, 4, std::max(1, wait));
  if (rc < 0 && errno != EINTR) throw CommError(ErrorCode::Internal, std::string("poll: ") + std::strerror(errno));
  if (fds[2].revents & POLLIN) throw CommError(ErrorCode::Cancelled, "communicator closed during " + call);
  if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
    pollControl();
    throwIfAborted();
    if (rightAbrupt_) failPeerGone(right_, "during " + call);
  }
  if (fds[3].revents) checkLeft(h, call);
  maybeHeartbeat();
  checkLiveness(call);
}

void Ring::pairwise(int peer, const wire::CollectiveHeader& h, const std::string& call, const uint8_t* send, size_t sendLen,
                    uint8_t* recv, size_t recvLen, bool doSend, bool doRecv) {
  const int fd = links_.partners[static_cast<size_t>(peer)].fd();
  constexpr size_t H = wire::CollectiveHeader::kSize;
  // Header and payload leave in one send (one syscall, one segment for small messages).
  smallOut_.resize(doSend ? H + sendLen : 0);
  if (doSend) {
    h.encode(smallOut_.data());
    if (sendLen) std::memcpy(smallOut_.data() + H, send, sendLen);
  }
  smallIn_.resize(doRecv ? H + recvLen : 0);
  size_t outOff = 0, inHave = 0;
  bool headerChecked = !doRecv;
  partnerMidFrame_ = -1;
  const int64_t start = callStartMs_;
  int64_t lastProgress = start;
  const int64_t spinUntil = nowUs() + o_.spinUs;
  bool stallWarned = false;
  for (;;) {
    if (outOff < smallOut_.size()) {
      int err = 0;
      long n = sendSome(fd, smallOut_.data() + outOff, smallOut_.size() - outOff, &err);
      if (n < 0) failPeerGone(peer, "during " + call + " (send: " + std::strerror(err) + ")");
      if (n > 0) {
        outOff += static_cast<size_t>(n);
        lastProgress = nowMs();
      }
      partnerMidFrame_ = outOff > 0 && outOff < smallOut_.size() ? peer : -1;
    }
    while (inHave < smallIn_.size()) {
      int err = 0;
      long n = recvSome(fd, smallIn_.data() + inHave, smallIn_.size() - inHave, &err);
      if (n < 0) failPeerGone(peer, "during " + call + (err ? std::string(" (") + std::strerror(err) + ")" : std::string()));
      if (n == 0) break;
      inHave += static_cast<size_t>(n);
      lastProgress = nowMs();
      if (!headerChecked && inHave >= H) {
        wire::CollectiveHeader theirs;
        if (!theirs.decode(smallIn_.data())) throw CommError(ErrorCode::Peer, names_[peer] + " sent a corrupt collective header during " + call);
        if (theirs.kind == wire::CollectiveKind::Abort) {
          readAbortFrame(fd, peer, theirs, std::string(reinterpret_cast<const char*>(smallIn_.data()) + H, inHave - H));
        }
        if (theirs.kind == wire::CollectiveKind::Goodbye) {
          throw CommError(ErrorCode::Mismatch, names_[peer] + " closed its communicator while rank " + std::to_string(o_.rank) + " is in " +
                                                   call + ": the ranks issued different numbers of collectives");
        }
        if (!(theirs == h)) {
          throw CommError(ErrorCode::Mismatch, "mismatched collectives: rank " + std::to_string(o_.rank) + " called " + call + " but " +
                                                   names_[peer] + " called " + callName(theirs));
        }
        headerChecked = true;
        if (peer == left_) leftState_ = LeftState::Started;
      }
    }
    if (outOff == smallOut_.size() && inHave == smallIn_.size()) break;
    if (nowUs() < spinUntil) {
      // Small exchanges usually complete within microseconds: retry while yielding the core
      // instead of sleeping in poll(), whose wake-up costs more than the whole exchange.
      sched_yield();
      continue;
    }
    waitSmall(h, fd, static_cast<short>((inHave < smallIn_.size() ? POLLIN : 0) | (outOff < smallOut_.size() ? POLLOUT : 0)), call);
    const int64_t idleFor = nowMs() - lastProgress;
    // A silent partner may itself be waiting for someone else; only a left neighbour that has not
    // announced the call (which it does once it has waited announceAfterMs_) has surely not
    // started it, so stalls are blamed on the left neighbour.
    const bool leftStarted = leftState_ != LeftState::Unknown;
    if (!leftStarted && !stallWarned && nowMs() - start >= o_.stallWarningMs) {
      stallWarned = true;
      warnStall(call, nowMs() - start);
    }
    if (!leftStarted && idleFor > o_.timeoutMs) {
      throw CommError(ErrorCode::Timeout, names_[left_] + " did not start " + call + " within " + seconds(idleFor) + " of rank " +
                                              std::to_string(o_.rank) + ": it is stalled, or the ranks' calls diverge");
    }
    if (idleFor > o_.timeoutMs + kDataGraceMs) {
      throw CommError(ErrorCode::Timeout, names_[peer] + " exchanged no data for " + seconds(idleFor) + " during " + call);
    }
  }
  if (doRecv && recvLen) std::memcpy(recv, smallIn_.data() + H, recvLen);
}

void Ring::smallAllreduce(const wire::CollectiveHeader& h, void* data, size_t count, Dtype dtype, ReduceOp op) {
  CallScope scope{currentCall_};
  const std::string call = beginCall(h);
  announced_ = false;
  announceOff_ = announceOut_.size();
  leftState_ = leftSaidGoodbye_ ? LeftState::Quiet : LeftState::Unknown;
  callStartMs_ = nowMs();
  const int n = o_.size, r = o_.rank;
  int p = 1;
  while (p * 2 <= n) p *= 2;
  const size_t bytes = count * dtypeSize(dtype);
  auto* mine = static_cast<uint8_t*>(data);
  if (scratch_.size() < bytes) scratch_.resize(bytes);
  uint8_t* theirs = scratch_.data();
  if (r >= p) {
    // Folded rank: hand the data to rank r - p, get the finished result back.
    pairwise(r - p, h, call, mine, bytes, nullptr, 0, true, false);
    pairwise(r - p, h, call, nullptr, 0, mine, bytes, false, true);
    flushAnnouncement(call);
    return;
  }
  if (r + p < n) {
    pairwise(r + p, h, call, nullptr, 0, theirs, bytes, false, true);
    reduceInto(dtype, op, mine, theirs, count);
  }
  // Partners reduce the same two vectors; the ops are commutative, so both get identical bits.
  for (int k = 1; k < p; k *= 2) {
    pairwise(r ^ k, h, call, mine, bytes, theirs, bytes, true, true);
    reduceInto(dtype, op, mine, theirs, count);
  }
  if (op == ReduceOp::Avg) finishAverage(dtype, mine, count, n);
  if (r + p < n) pairwise(r + p, h, call, mine, bytes, nullptr, 0, true, false);
  flushAnnouncement(call);
}

void Ring::allreduce(void* data, size_t count, Dtype dtype, ReduceOp op, uint64_t seq, PhaseTimes* times) {
  wire::CollectiveHeader h;
  h.kind = wire::CollectiveKind::Allreduce;
  h.dtype = static_cast<uint8_t>(dtype);
  h.op = static_cast<uint8_t>(op);
  h.seq = seq;
  h.count = count;
  if (o_.size == 1) return;  // avg over one rank is the identity
  const int n = o_.size, r = o_.rank;
  const size_t elem = dtypeSize(dtype);
  if (count * elem <= o_.smallBytes && hasPartners_) {
    smallAllreduce(h, data, count, dtype, op);
    return;
  }
  if (o_.pieceBytes > 0 && count * elem > o_.pieceBytes) {
    // Large buffers go round the ring in consecutive pieces, each small enough that what a rank
    // touches stays in cache; every rank cuts at the same places, so piece k meets piece k.
    const size_t per = std::max<size_t>(1, o_.pieceBytes / elem);
    for (size_t first = 0; first < count; first += per) {
      allreduce(static_cast<uint8_t*>(data) + first * elem, std::min(per, count - first), dtype, op, seq, first == 0 ? times : nullptr);
    }
    return;
  }
  const size_t base = count / static_cast<size_t>(n), rem = count % static_cast<size_t>(n);
  auto* bytes = static_cast<uint8_t*>(data);
  auto off = [&](int c) { return (static_cast<size_t>(c) * base + std::min(static_cast<size_t>(c), rem)) * elem; };
  auto len = [&](int c) { return (base + (static_cast<size_t>(c) < rem ? 1 : 0)) * elem; };
  std::vector<Step> steps;
  steps.reserve(2 * (n - 1));
  for (int s = 0; s < n - 1; ++s) {  // reduce-scatter
    int sc = ((r - s) % n + n) % n, rc = ((r - s - 1) % n + n) % n;
    steps.push_back({bytes + off(sc), len(sc), bytes + off(rc), len(rc), true, op == ReduceOp::Avg && s == n - 2});
  }
  for (int s = 0; s < n - 1; ++s) {  // all-gather
    int sc = ((r + 1 - s) % n + n) % n, rc = ((r - s) % n + n) % n;
    steps.push_back({bytes + off(sc), len(sc), bytes + off(rc), len(rc), false, false});
  }
  run(h, steps, Gate::PreviousStep, dtype, op, times, static_cast<size_t>(n - 1));
}

void Ring::broadcast(void* data, size_t count, Dtype dtype, int root, uint64_t seq) {
  wire::CollectiveHeader h;
  h.kind = wire::CollectiveKind::Broadcast;
  h.dtype = static_cast<uint8_t>(dtype);
  h.root = static_cast<uint32_t>(root);
  h.seq = seq;
  h.count = count;
  if (o_.size == 1) return;
  const int pos = (o_.rank - root + o_.size) % o_.size;
  const size_t bytes = count * dtypeSize(dtype);
  auto* p = static_cast<uint8_t*>(data);
  std::vector<Step> steps(1);
  steps[0].sendPtr = p;
  steps[0].sendBytes = pos == o_.size - 1 ? 0 : bytes;
  steps[0].recvPtr = p;
  steps[0].recvBytes = pos == 0 ? 0 : bytes;
  run(h, steps, Gate::SameStep, dtype, ReduceOp::Sum, nullptr, 0);
}

void Ring::allgather(const void* src, void* dst, size_t count, Dtype dtype, uint64_t seq) {
  wire::CollectiveHeader h;
  h.kind = wire::CollectiveKind::Allgather;
  h.dtype = static_cast<uint8_t>(dtype);
  h.seq = seq;
  h.count = count;
  const int n = o_.size, r = o_.rank;
  const size_t block = count * dtypeSize(dtype);
  auto* out = static_cast<uint8_t*>(dst);
  if (block) std::memmove(out + static_cast<size_t>(r) * block, src, block);
  if (n == 1) return;
  std::vector<Step> steps = allgatherSteps(out, block);
  run(h, steps, Gate::PreviousStep, dtype, ReduceOp::Sum, nullptr, 0);
}

void Ring::reducescatter(const void* src, void* dst, size_t count, Dtype dtype, ReduceOp op, uint64_t seq) {
  wire::CollectiveHeader h;
  h.kind = wire::CollectiveKind::Reducescatter;
  h.dtype = static_cast<uint8_t>(dtype);
  h.op = static_cast<uint8_t>(op);
  h.seq = seq;
  h.count = count;
  const int n = o_.size, r = o_.rank;
  const size_t elem = dtypeSize(dtype);
  auto off = [&](int c) { return shareOffset(count, n, c) * elem; };
  auto len = [&](int c) { return shareCount(count, n, c) * elem; };
  if (n == 1) {
    if (count) std::memmove(dst, src, count * elem);
    return;
  }
  std::vector<uint8_t> work(static_cast<const uint8_t*>(src), static_cast<const uint8_t*>(src) + count * elem);
  // The all-reduce's reduce-scatter phase shifted by one share, so that rank r ends holding share r:
  // step s sends share r-s-1 (its own data first, then what it reduced in step s-1) and reduces share
  // r-s-2 into its copy; after n-1 steps share r has passed every rank.
  std::vector<Step> steps;
  steps.reserve(static_cast<size_t>(n - 1));
  for (int s = 0; s < n - 1; ++s) {
    int sc = ((r - s - 1) % n + n) % n, rc = ((r - s - 2) % n + n) % n;
    steps.push_back({work.data() + off(sc), len(sc), work.data() + off(rc), len(rc), true, op == ReduceOp::Avg && s == n - 2});
  }
  run(h, steps, Gate::PreviousStep, dtype, op, nullptr, 0);
  if (len(r)) std::memcpy(dst, work.data() + off(r), len(r));
}

std::vector<Ring::Step> Ring::allgatherSteps(uint8_t* out, size_t block) const {
  // Step s forwards the block that arrived in step s - 1 (this rank's own block first).
  const int n = o_.size, r = o_.rank;
  std::vector<Step> steps;
  for (int s = 0; s < n - 1; ++s) {
    int sc = ((r - s) % n + n) % n, rc = ((r - s - 1) % n + n) % n;
    steps.push_back({out + static_cast<size_t>(sc) * block, block, out + static_cast<size_t>(rc) * block, block, false, false});
  }
  return steps;
}

void Ring::barrier(uint64_t seq) {
  wire::CollectiveHeader h;
  h.kind = wire::CollectiveKind::Barrier;
  h.seq = seq;
  if (o_.size == 1) return;
  if (hasPartners_) {
    // Recursive doubling of empty messages: log2(n) rounds, and each rank has heard, directly or
    // through partners, from every rank before it leaves.
    smallAllreduce(h, nullptr, 0, Dtype::Uint8, ReduceOp::Sum);
    return;
  }
  // An all-gather of one byte a rank: a rank finishes only after every rank's byte reached it,
  // and each rank sends its byte only once it has entered the barrier.
  std::vector<uint8_t> tokens(static_cast<size_t>(o_.size), 1);
  std::vector<Step> steps = allgatherSteps(tokens.data(), 1);
  run(h, steps, Gate::PreviousStep, Dtype::Uint8, ReduceOp::Sum, nullptr, 0);
}

bool Ring::idle(int wakeFd, int ms) {
  const int64_t deadline = nowMs() + ms;
  const std::string during = "between collectives (after #" + std::to_string(lastSeq_) + ")";
  for (;;) {
    if (o_.size == 1 || closed()) {
      if (ms == 0) return false;
      pollfd w[2] = {{wakeFd, POLLIN, 0}, {cancelFd_, POLLIN, 0}};
      int rc = ::poll(w, 2, msUntil(deadline, 1000));
      if (rc > 0 && (w[0].revents & POLLIN)) return true;
      if (rc > 0 && (w[1].revents & POLLIN)) return false;
      if (nowMs() >= deadline) return false;
      continue;
    }
    if (!leftSaidGoodbye_ && links_.left.valid()) {
      wire::CollectiveHeader stale;
      peekLeftFrame(lastSeq_ + 1, stale);  // announcements of calls finished here
    }
    pollfd fds[4];
    fds[0] = {wakeFd, POLLIN, 0};
    fds[1] = {cancelFd_, POLLIN, 0};
    fds[2] = {rightEof_ ? -1 : links_.right.fd(), POLLIN, 0};
    fds[3] = {leftSaidGoodbye_ ? -1 : links_.left.fd(), static_cast<short>(POLLRDHUP | (ctlOut_.empty() ? 0 : POLLOUT)), 0};
    int wait = ms == 0 ? 0 : std::max(1, std::min(msUntil(deadline, 1000), msUntil(nextHeartbeat_, 1000)));
    int rc = ::poll(fds, 4, wait);
    if (rc < 0 && errno != EINTR) throw CommError(ErrorCode::Internal, std::string("poll: ") + std::strerror(errno));
    if (fds[1].revents & POLLIN) return false;
    if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      pollControl();
      throwIfAborted();
      if (rightAbrupt_) failPeerGone(right_, during);
    }
    if (fds[3].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
      // The left neighbour hung up. Clean if what it sent last is its goodbye; if it failed, its
      // abort frame may follow the header of a call it started (whose forward payload is empty
      // when that call runs on the direct links).
      constexpr size_t H = wire::CollectiveHeader::kSize;
      uint8_t peek[2 * H];
      ssize_t n = ::recv(links_.left.fd(), peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
      wire::CollectiveHeader h;
      size_t at = 0;
      if (n >= static_cast<ssize_t>(2 * H) && h.decode(peek) && forwardPayloadIsEmpty(h)) at = H;
      if (n >= static_cast<ssize_t>(at + H) && h.decode(peek + at) && h.kind == wire::CollectiveKind::Goodbye) {
        leftSaidGoodbye_ = true;
        ctlOut_.clear();
      } else if (n >= static_cast<ssize_t>(at + H) && h.decode(peek + at) && h.kind == wire::CollectiveKind::Abort) {
        ssize_t got = ::recv(links_.left.fd(), peek, at + H, MSG_DONTWAIT);
        (void)got;
        readForwardAbort(h);
      } else {
        failPeerGone(left_, during);
      }
    }
    if (fds[3].revents & POLLOUT) flushControl();
    maybeHeartbeat();
    checkLiveness(during);
    if (fds[0].revents & POLLIN) return true;
    if (ms == 0 || nowMs() >= deadline) return false;
  }
}

CommError Ring::abortAndClose(const CommError& error, bool receivedFromRight) {
  if (o_.size == 1 || closed()) return error;
  std::string text = error.what();
  uint32_t origin = static_cast<uint32_t>(o_.rank);
  ErrorCode code = error.code();
  if (abortArrived_) receivedFromRight = true;
  if (!receivedFromRight && code == ErrorCode::Peer) {
    // A broken connection may be the echo of a failure elsewhere that is being announced round
    // the ring right now: give that announcement a moment to arrive and prefer it.
    const int64_t until = nowMs() + std::min(kAbortGraceMs, o_.timeoutMs);
    while (!abortArrived_ && !rightEof_ && links_.right.valid() && nowMs() < until) {
      pollfd p = {links_.right.fd(), POLLIN, 0};
      if (::poll(&p, 1, msUntil(until, 100)) <= 0) continue;
      try {
        pollControl();
      } catch (const CommError&) {
        break;
      }
    }
    if (abortArrived_) receivedFromRight = true;
  }
  uint64_t seq = lastSeq_;
  if (receivedFromRight) {
    text = abortText_;
    origin = abortOrigin_;
    seq = abortSeq_;
  } else {
    text += " [detected by " + names_[o_.rank] + "]";
  }
  if (origin != static_cast<uint32_t>(o_.rank) || !receivedFromRight) {
    try {
      std::string payload(8, '\0');
      wire::put64(reinterpret_cast<uint8_t*>(payload.data()), seq);
      sendControl(wire::ControlType::Abort, origin, payload + text);
      const int64_t until = nowMs() + 500;
      while (!ctlOut_.empty() && nowMs() < until) {
        pollfd p = {links_.left.fd(), POLLOUT, 0};
        ::poll(&p, 1, msUntil(until, 100));
        flushControl();
      }
    } catch (const CommError&) {
      // The left neighbour is gone too; the ranks beyond it learn through their own links.
    }
  }
  // Rightwards too, and to the direct partners, on every stream that sits at a frame boundary: the
  // ranks the leftward chain cannot reach (past a rank that is already gone), or that wait on a
  // partner rather than a neighbour, learn the reason this way.
  {
    wire::CollectiveHeader ah;
    ah.kind = wire::CollectiveKind::Abort;
    ah.root = origin;
    ah.seq = seq;
    ah.count = std::min(text.size(), wire::kMaxControlPayload);
    std::vector<uint8_t> frame(wire::CollectiveHeader::kSize + ah.count);
    ah.encode(frame.data());
    std::memcpy(frame.data() + wire::CollectiveHeader::kSize, text.data(), ah.count);
    int err = 0;
    if (!fwdMidFrame_ && links_.right.valid() && !rightEof_) sendSome(links_.right.fd(), frame.data(), frame.size(), &err);
    for (size_t q = 0; q < links_.partners.size(); ++q) {
      if (links_.partners[q].valid() && static_cast<int>(q) != partnerMidFrame_) sendSome(links_.partners[q].fd(), frame.data(), frame.size(), &err);
    }
  }
  drainAndClose(nowMs() + (receivedFromRight ? 200 : kAbortGraceMs), !receivedFromRight);
  return CommError(receivedFromRight ? ErrorCode::Peer : code, text);
}

void Ring::drainAndClose(int64_t until, bool waitForOwnAbort) {
  // Reading what neighbours still send keeps our close a FIN rather than a reset, so control
  // messages we wrote are not thrown away at their end.
  abortArrived_ = false;
  uint8_t sink[16384];
  while (nowMs() < until) {
    pollfd fds[2] = {{rightEof_ ? -1 : links_.right.fd(), POLLIN, 0}, {links_.left.fd(), POLLIN, 0}};
    if (::poll(fds, 2, msUntil(until, 100)) <= 0) continue;
    if (fds[0].revents) {
      try {
        pollControl();
      } catch (const CommError&) {
        rightEof_ = true;
      }
      if (abortArrived_ && abortOrigin_ == static_cast<uint32_t>(o_.rank) && waitForOwnAbort) break;
      abortArrived_ = false;
    }
    if (fds[1].revents) {
      int err = 0;
      if (recvSome(links_.left.fd(), sink, sizeof sink, &err) < 0) break;
    }
    if (rightEof_ && !waitForOwnAbort) break;
  }
  // Partners: a FIN after whatever they sent is read, rather than a reset that could destroy an
  // abort frame on its way to them.
  for (Socket& p : links_.partners) {
    if (!p.valid()) continue;
    ::shutdown(p.fd(), SHUT_WR);
    int err = 0;
    for (int i = 0; i < 64 && recvSome(p.fd(), sink, sizeof sink, &err) > 0; ++i) {
    }
  }
  links_.right.reset();
  links_.left.reset();
  links_.partners.clear();
}

void Ring::goodbyeAndClose() {
  if (o_.size == 1 || closed()) {
    links_.right.reset();
    links_.left.reset();
    return;
  }
  try {
    wire::CollectiveHeader h;
    h.kind = wire::CollectiveKind::Goodbye;
    h.seq = lastSeq_ + 1;
    uint8_t buf[wire::CollectiveHeader::kSize];
    h.encode(buf);
    size_t off = 0;
    const int64_t until = nowMs() + 1000;
    while (off < sizeof buf && !rightEof_ && nowMs() < until) {
      int err = 0;
      long n = sendSome(links_.right.fd(), buf + off, sizeof buf - off, &err);
      if (n < 0) break;
      off += static_cast<size_t>(n);
      if (n == 0) {
        pollfd p = {links_.right.fd(), POLLOUT, 0};
        ::poll(&p, 1, msUntil(until, 100));
      }
    }
    sendControl(wire::ControlType::Goodbye, static_cast<uint32_t>(o_.rank), "");
    // Partners learn it from a goodbye header where they would expect the next exchange.
    for (Socket& s : links_.partners) {
      if (!s.valid()) continue;
      int err = 0;
      sendSome(s.fd(), buf, sizeof buf, &err);
    }
  } catch (const CommError&) {
    // Neighbours that are already gone need no goodbye.
  }
  ::shutdown(links_.right.fd(), SHUT_WR);
  if (links_.left.valid()) ::shutdown(links_.left.fd(), SHUT_WR);
  uint8_t sink[4096];
  int err = 0;
  while (links_.left.valid() && recvSome(links_.left.fd(), sink, sizeof sink, &err) > 0) {
  }
  while (!rightEof_ && recvSome(links_.right.fd(), sink, sizeof sink, &err) > 0) {
  }
  links_.right.reset();
  links_.left.reset();
  links_.partners.clear();
}

}  // namespace ringtrain
