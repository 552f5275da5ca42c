// The ring: collectives over the two links of one rank, with failure handling.
//
// Data flows left -> this rank -> right. The reverse direction of each link carries only small
// control messages (heartbeats, aborts, goodbyes), so a failure can always be announced to every
// rank without corrupting a data stream: an abort travels leftwards all the way round.
// A Ring is used by one thread only (the communicator's worker).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "comm_error.h"
#include "control_parser.h"
#include "dtype.h"
#include "ring_connector.h"
#include "shares.h"
#include "wire_format.h"

namespace ringtrain {

struct RingOptions {
  int rank = 0;
  int size = 1;
  std::vector<PeerAddress> peers;
  // Tuning: the values, their defaults and which must agree across ranks come from the settings
  // table (src/settings.ts) through CommunicatorOptions; the core keeps no defaults of its own.
  int timeoutMs = 0;
  int stallWarningMs = 0;
  size_t segmentBytes = 0;  // job-wide
  // All-reduces of at most this many bytes use recursive doubling over direct links (fewer hops
  // than the ring's 2(n-1), but log2(n) whole copies of the message per rank instead of 2(n-1)/n).
  size_t smallBytes = 0;  // job-wide
  // Larger all-reduces go round the ring in pieces of this size; 0: one pass.
  size_t pieceBytes = 0;  // job-wide
  // How long a small exchange retries (yielding) before it sleeps in poll().
  int64_t spinUs = 0;
  Logger log;
};

// What a phase of a collective records for the timeline; all optional.
struct PhaseTimes {
  int64_t headerDoneUs = 0;
  int64_t reduceScatterDoneUs = 0;
};

class Ring {
 public:
  // `cancelFd` is an eventfd: readable once the owner wants every blocking wait to stop.
  Ring(RingOptions options, RingLinks links, int cancelFd);

  void allreduce(void* data, size_t count, Dtype dtype, ReduceOp op, uint64_t seq, PhaseTimes* times = nullptr);
  void broadcast(void* data, size_t count, Dtype dtype, int root, uint64_t seq);
  void allgather(const void* src, void* dst, size_t count, Dtype dtype, uint64_t seq);
  // `src` holds `count` elements on every rank; `dst` gets this rank's share of their reduction
  // (shareOffset/shareCount). `src` is left as it was (the ring works on a copy).
  void reducescatter(const void* src, void* dst, size_t count, Dtype dtype, ReduceOp op, uint64_t seq);
  void barrier(uint64_t seq);

  // Between collectives: waits up to `ms` for `wakeFd` (returns true when readable) while keeping
  // heartbeats going and watching for a dead or departed neighbour (throws CommError). With
  // ms == 0 it makes one pass without blocking (wakeFd may then be -1).
  bool idle(int wakeFd, int ms);

  // Announces a failure leftwards round the ring (unless it arrived that way) and lingers briefly so
  // the announcement overtakes the connection closing. Leaves the ring closed.
  // Returns the error every rank should report (an announcement from elsewhere may explain better).
  CommError abortAndClose(const CommError& error, bool receivedFromRight);
  // Clean shutdown after the last collective.
  void goodbyeAndClose();

  bool closed() const { return !links_.right.valid() && !links_.left.valid(); }
  const std::string& describe(int rank) const { return names_.at(rank); }

 private:
  struct Step {
    uint8_t* sendPtr = nullptr;
    size_t sendBytes = 0;
    uint8_t* recvPtr = nullptr;
    size_t recvBytes = 0;
    bool reduce = false;
    bool finishAvg = false;
  };
  enum class Gate { PreviousStep, SameStep };
  // The ring all-gather of one `block` per rank in `out` (rank-major), as steps for run().
  std::vector<Step> allgatherSteps(uint8_t* out, size_t block) const;

  void run(const wire::CollectiveHeader& header, std::vector<Step>& steps, Gate gate, Dtype dtype, ReduceOp op,
           PhaseTimes* times, size_t phaseBoundaryStep);
  std::string callName(const wire::CollectiveHeader& h) const;
  // Starts a collective: records it for messages, and refuses when a neighbour has left.
  std::string beginCall(const wire::CollectiveHeader& h);
  // Clears the current call's name when the collective ends, however it ends.
  struct CallScope {
    std::string& name;
    ~CallScope() { name.clear(); }
  };
  void warnStall(const std::string& call, int64_t waitedMs);
  bool forwardPayloadIsEmpty(const wire::CollectiveHeader& h) const;
  [[noreturn]] void readForwardAbort(const wire::CollectiveHeader& h);
  [[noreturn]] void readAbortFrame(int fd, int from, const wire::CollectiveHeader& h, std::string text);
  // Reads an abort frame's text and keeps the first abort that arrived (see throwIfAborted).
  void recordAbortFrame(int fd, int from, const wire::CollectiveHeader& h, std::string text);
  // Small calls and the ring links: see announceOut_.
  void pumpAnnouncement(const wire::CollectiveHeader& h, const std::string& call);
  void flushAnnouncement(const std::string& call);
  // 1: `out` is the first frame on the left link that is not a stale announcement (left unread);
  // 0: no whole frame yet; -1: the left link ended.
  int peekLeftFrame(uint64_t staleBelowSeq, wire::CollectiveHeader& out);
  void checkLeft(const wire::CollectiveHeader& h, const std::string& call);
  void waitSmall(const wire::CollectiveHeader& h, int partnerFd, short partnerEvents, const std::string& call);
  void smallAllreduce(const wire::CollectiveHeader& h, void* data, size_t count, Dtype dtype, ReduceOp op);
  void pairwise(int peer, const wire::CollectiveHeader& h, const std::string& call, const uint8_t* send, size_t sendLen,
                uint8_t* recv, size_t recvLen, bool doSend, bool doRecv);
  void pollControl();
  void throwIfAborted();
  void sendControl(wire::ControlType type, uint32_t origin, const std::string& text);
  void flushControl();
  void maybeHeartbeat();
  [[noreturn]] void failPeerGone(int peer, const std::string& during);
  void checkLiveness(const std::string& call);  // `call`, or a "between collectives ..." phrase
  void drainAndClose(int64_t until, bool waitForOwnAbort);

  RingOptions o_;
  RingLinks links_;
  int cancelFd_;
  int left_;
  int right_;
  std::vector<std::string> names_;
  std::vector<uint8_t> scratch_;
  std::vector<uint8_t> smallOut_;  // header + payload of one pairwise message
  std::vector<uint8_t> smallIn_;
  bool hasPartners_ = false;
  // A small call (recursive doubling over the direct links) writes nothing on the ring links while it
  // is quick. Once it has waited announceAfterMs_, it sends its header to the right neighbour: that
  // neighbour can then tell "started, waiting for others" from "never started" when it has to name
  // a straggler, and a neighbour in a ring collective sees the mismatch. The receiver drops
  // announcements of calls it has already finished.
  std::vector<uint8_t> announceOut_;
  size_t announceOff_ = 0;  // == announceOut_.size(): nothing (more) to send
  bool announced_ = false;  // this call's announcement is queued or sent
  // What this small call knows of the left neighbour: Started once it announced this call (or a
  // later one), or sent this call's data as a partner; Quiet once it said goodbye (the partners
  // tell whether it finished this call or never issued it).
  enum class LeftState { Unknown, Started, Quiet };
  LeftState leftState_ = LeftState::Unknown;
  int announceAfterMs_ = 20;
  int64_t callStartMs_ = 0;
  bool fwdMidFrame_ = false;     // the forward stream is inside a frame: nothing else may be written
  int partnerMidFrame_ = -1;     // partner whose link is inside a message we are sending

  ControlParser ctlParser_;  // bytes from the right neighbour
  int64_t lastHeardRight_ = 0;
  int64_t nextHeartbeat_ = 0;
  int heartbeatMs_ = 1000;

  std::vector<uint8_t> ctlOut_;  // control bytes queued for the left neighbour
  bool rightEof_ = false;
  bool rightAbrupt_ = false;  // the right neighbour's connection ended without a goodbye
  int rightError_ = 0;
  bool rightSaidGoodbye_ = false;
  bool leftSaidGoodbye_ = false;
  uint64_t lastSeq_ = 0;
  std::string currentCall_;  // set while a collective runs, for messages
  // Set when an abort arrives from the right; carried by the CommError thrown.
  std::string abortText_;
  bool abortArrived_ = false;
  uint32_t abortOrigin_ = 0;
  uint64_t abortSeq_ = 0;  // the call the abort is about
};

}  // namespace ringtrain
