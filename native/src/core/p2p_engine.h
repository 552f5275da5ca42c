// Point-to-point messages between any two ranks: send / recv matched per (peer, tag) in order.
//
// One engine per (top-level) communicator, with one thread of its own that polls every mesh link.
// It keeps any number of sends and receives pending at once, so a receive that waits never holds
// back a later send (the communicator's worker runs collectives strictly in order and could not).
// Cost: that one thread and one link per peer, made at set-up by the connector; sub-communicators
// share both (their messages carry their own communicator id).
//
// Protocol and bounds: see p2p_frame.h. Unexpected eager messages from one sender are held up to
// kEagerBudgetBytes; everything larger waits for the receiver (rendezvous), so the memory an engine
// holds for others is bounded by (size - 1) x kEagerBudgetBytes.
//
// Failures: a length or dtype mismatch fails the receive and the send (or, for an eager send that
// already completed, the next operation with that peer) with ERR_RINGTRAIN_MISMATCH naming both
// sides; the message is consumed and the link stays usable. A lost link (dead peer), a protocol
// error or a timeout fails every pending operation with that peer and every later one.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <poll.h>
#include <string>
#include <thread>
#include <vector>

#include "comm_error.h"
#include "dtype.h"
#include "link.h"
#include "p2p_frame.h"
#include "ring_connector.h"
#include "tag_matcher.h"

namespace ringtrain {

struct P2pOp {
  enum class Kind { Send, Recv };
  Kind kind = Kind::Send;
  int peer = 0;
  uint32_t tag = 0;
  uint16_t comm = 0;  // communicator id within the job (0 = the top-level one)
  Dtype dtype = Dtype::Float32;
  void* data = nullptr;  // send: read; recv: filled. The caller keeps it alive until `done`.
  size_t count = 0;      // elements
  // Runs once, on the engine's thread (or the submitting one when the engine is closed).
  std::function<void(const CommError* error)> done;

  // Engine bookkeeping.
  size_t bytes() const { return count * dtypeSize(dtype); }
  uint32_t id = 0;
  size_t offset = 0;
  int64_t deadlineMs = 0;
  bool finished = false;
};

class P2pEngine {
 public:
  // `links[q]` is the mesh link to rank q (null for this rank). `spinUs`: how long waits poll
  // without sleeping after activity (the communicator's RINGTRAIN_SPIN_US setting).
  P2pEngine(int rank, std::vector<PeerAddress> peers, std::vector<std::unique_ptr<Link>> links, int timeoutMs, int64_t spinUs, Logger log);
  ~P2pEngine();
  P2pEngine(const P2pEngine&) = delete;
  P2pEngine& operator=(const P2pEngine&) = delete;

  // Thread-safe.
  void submit(std::unique_ptr<P2pOp> op);
  // Says goodbye to every peer, fails whatever is pending with ERR_RINGTRAIN_CLOSED, joins.
  void close();
  // Fails pending and later operations with `error` (e.g. the communicator failed). Thread-safe.
  void fail(const CommError& error);
  // Starts `ops` and drives the links on the calling thread until `finished()` (the ops' done
  // callbacks make it true): a synchronous call then pays no hand-off to the engine's thread and
  // back. Returns false (ops untouched) when the engine is closing.
  bool runInline(std::vector<std::unique_ptr<P2pOp>>& ops, const std::function<bool()>& finished);

 private:
  struct Arrival {
    p2p::FrameType type = p2p::FrameType::Eager;
    Dtype dtype = Dtype::Float32;
    uint64_t bytes = 0;
    uint32_t id = 0;
    std::vector<uint8_t> payload;  // eager only
  };
  struct OutItem {
    uint8_t header[p2p::Frame::kSize] = {};
    const uint8_t* payload = nullptr;
    size_t payloadLen = 0;
    size_t written = 0;
    P2pOp* eagerSend = nullptr;  // completes when the frame is written
    P2pOp* stream = nullptr;     // rendezvous send: next chunk follows when this one is written
  };
  // Where the payload of the frame being read goes.
  enum class Sink { None, RecvOp, Held, Discard, Chunk, AbortText };
  struct EagerRecord {
    uint32_t tag;
    Dtype dtype;
    uint64_t bytes;
    uint16_t comm;
  };
  using Key = uint64_t;  // (comm << 32) | tag
  struct Peer {
    std::unique_ptr<Link> link;
    std::optional<CommError> error;  // the link is unusable: every operation with this peer fails so
    bool saidGoodbye = false;
    bool closedCleanly = false;  // goodbye, then the end of the stream: held eager messages stay receivable
    // Reading.
    uint8_t header[p2p::Frame::kSize] = {};
    size_t headerHave = 0;
    p2p::Frame frame;
    Sink sink = Sink::None;
    uint8_t* payloadDst = nullptr;
    size_t payloadLeft = 0;
    P2pOp* payloadOp = nullptr;
    Arrival held;
    std::vector<uint8_t> discard;
    // Writing.
    std::deque<OutItem> out;
    // As sender.
    uint32_t nextId = 1;
    size_t eagerOutstanding = 0;
    std::map<uint32_t, EagerRecord> eagerUnacked;
    std::map<uint32_t, P2pOp*> rendezvous;  // Rts sent: waiting for Cts, streaming, waiting for Fin
    std::optional<CommError> notice;          // a refused eager send: fails the next operation
    // As receiver.
    TagMatcher<Arrival, P2pOp*> matcher;
    std::map<uint32_t, P2pOp*> receiving;  // Cts sent: chunks go here
  };

  void threadMain();
  // One poll round, in two halves around an unlocked poll(): the fds to wait on (and how long),
  // then what their events mean.
  int64_t preparePoll(std::vector<pollfd>& fds, std::vector<int>& owner, bool withWake);
  void afterPoll(const std::vector<pollfd>& fds, const std::vector<int>& owner);
  void takeSubmissions();
  void start(std::unique_ptr<P2pOp> op);
  void startSend(Peer& p, P2pOp* op);
  void startRecv(Peer& p, P2pOp* op);
  void matchArrival(Peer& p, P2pOp* op, Arrival& a);
  void readFrom(int peer);
  void onFrame(int peer);
  void onPayloadDone(int peer);
  void writeTo(int peer);
  void queueFrame(Peer& p, p2p::FrameType type, uint32_t tag, uint32_t id, uint64_t bytes, Dtype dtype, uint16_t comm);
  void queueChunk(Peer& p, P2pOp* op);
  void complete(P2pOp* op, const CommError* error);
  // `announce`: tell the peer why first (an Abort frame, best effort); `job`: the whole job failed.
  void failPeer(int peer, const CommError& error, bool announce = false, bool job = false);
  void failAllPeers(const CommError& error, bool announce);
  void sendAbort(Peer& p, const CommError& error, bool job);
  void peerClosed(int peer);
  void checkDeadlines();
  void shutdownLinks();
  std::string who(int peer) const { return describePeer(peer, peers_.at(static_cast<size_t>(peer))); }
  std::string opText(const P2pOp& op) const;
  std::string mismatchText(bool atReceiver, const P2pOp& mine, Dtype theirDtype, uint64_t theirBytes) const;

  int rank_;
  std::vector<PeerAddress> peers_;
  std::vector<Peer> state_;  // by rank; guarded by stateMu_ (below), like live_
  int timeoutMs_;
  int64_t spinUs_;
  Logger log_;
  int wakeFd_ = -1;

  std::mutex mu_;  // guards incoming_, stopping_, failure_
  std::vector<std::unique_ptr<P2pOp>> incoming_;
  bool stopping_ = false;
  std::optional<CommError> failure_;

  // Everything below is guarded by stateMu_: the engine thread holds it except while in poll(), and
  // a synchronous caller (runInline) holds it the same way.
  std::mutex stateMu_;
  int inlineActive_ = 0;                 // synchronous callers in runInline
  std::condition_variable inlineDone_;   // inlineActive_ fell
  std::vector<std::unique_ptr<P2pOp>> live_;  // every started, unfinished op
  std::thread thread_;
};

}  // namespace ringtrain
