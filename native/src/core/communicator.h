// A rank's communicator: owns the listener, the ring and one worker thread that runs operations
// strictly in submission order (so every rank runs the same sequence of collectives).
//
// Lifetime: operations reference caller memory; the caller keeps it alive until `done` runs.
// `done` runs on the worker thread (or on the submitting thread when the communicator is already
// closed). The destructor cancels whatever is in flight and joins the worker.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "comm_error.h"
#include "device_reducer.h"
#include "dtype.h"
#include "group_collectives.h"
#include "p2p_engine.h"
#include "ring.h"
#include "ring_connector.h"
#include "socket.h"

namespace ringtrain {

struct CommunicatorOptions {
  int rank = 0;
  int size = 1;
  std::string token;
  // Tuning, as RingOptions (no defaults here: the binding passes the settings table's values).
  int timeoutMs = 0;
  int stallWarningMs = 0;
  size_t segmentBytes = 0;
  size_t smallBytes = 0;
  size_t pieceBytes = 0;
  int64_t spinUs = 0;
  std::string bindHost;  // numeric address to listen on; "" = all interfaces
  int portMin = 0;
  int portMax = 0;
  Logger log;  // default: stderr
  DeviceReducerFactory deviceReducer;  // empty: device all-reduce is refused (the core has no GPU code)
};

// What a sub-communicator (split) takes from its parent: the job's point-to-point engine, its ids
// there, and who its members are.
struct SubCommunicatorSetup {
  std::shared_ptr<P2pEngine> engine;
  uint16_t userComm = 0;      // its users' send/recv
  uint16_t internalComm = 0;  // its collectives' messages
  std::vector<int> topRanks;  // member i's rank in the top-level communicator
  std::vector<PeerAddress> topPeers;
};

enum class OpKind { Connect, Allreduce, AllreduceDevice, Broadcast, Allgather, Barrier, Reducescatter, Close };

struct Operation {
  OpKind kind = OpKind::Barrier;
  void* data = nullptr;       // in place (allreduce, broadcast) or all-gather destination
  const void* src = nullptr;  // all-gather / reduce-scatter source
  size_t count = 0;           // elements (per rank for all-gather; of the whole input for reduce-scatter)
  Dtype dtype = Dtype::Float32;
  ReduceOp op = ReduceOp::Sum;
  int root = 0;
  uint64_t devicePtr = 0;          // AllreduceDevice: GPU memory
  std::vector<PeerAddress> peers;  // connect
  // Filled by the worker, for timelines (microseconds on the steady clock).
  uint64_t seq = 0;
  int64_t submittedUs = 0;
  int64_t startUs = 0;
  PhaseTimes phases;
  std::function<void(Operation& op, const CommError* error)> done;
};

class Communicator {
 public:
  explicit Communicator(CommunicatorOptions options);
  // A sub-communicator: no sockets of its own; collectives run as messages on the parent's engine.
  Communicator(CommunicatorOptions options, SubCommunicatorSetup sub);
  // MPI_Comm_split's last step, once every rank knows the groups: `members` are this communicator's
  // ranks in the new one's order, this rank is members[index]; `commId` (1..0x7fff) is unused by
  // every communicator any member belongs to. Thread-safe.
  std::unique_ptr<Communicator> split(uint16_t commId, const std::vector<int>& members, int index);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int port() const { return port_; }
  int rank() const { return o_.rank; }
  int size() const { return o_.size; }

  // Thread-safe. Operations after a Close, or after a failure, complete at once with an error.
  void submit(std::unique_ptr<Operation> op);
  // Runs `op` on the calling thread when nothing submitted earlier is pending and the worker is
  // not using the ring; returns false (op untouched) otherwise. For synchronous calls.
  bool tryRunInline(Operation& op);
  // Point-to-point: runs on the P2pEngine's thread, concurrently with collectives and with every
  // other pending send/recv. Thread-safe; before connect or after close it fails at once.
  void submitP2p(std::unique_ptr<P2pOp> op);
  // A synchronous call's ops: driven on the calling thread when the engine lets it (see
  // P2pEngine::runInline), else submitted. `finished` turns true once every op's done ran.
  void runP2pSync(std::vector<std::unique_ptr<P2pOp>> ops, const std::function<bool()>& finished);
  // Stops now: the running operation and all queued ones fail; joins the worker. Idempotent.
  void cancel();
  // Joins the worker after a Close operation completed. Idempotent.
  void join();

 private:
  void workerMain();
  void execute(Operation& op);
  void failWith(const CommError& error);
  void wake();
  void stopP2p();
  void runOnGroup(Operation& op);

  CommunicatorOptions o_;
  Socket listener_;
  int port_ = 0;
  int wakeFd_ = -1;
  int cancelFd_ = -1;
  std::unique_ptr<Ring> ring_;
  std::unique_ptr<DeviceReducer> device_;  // worker thread only; made at the first device all-reduce
  std::shared_ptr<P2pEngine> p2p_;  // guarded by mu_ (the pointer; the engine locks itself)
  bool ownsEngine_ = true;           // false in a sub-communicator: the top-level one closes it
  std::vector<int> topRanks_;        // guarded by mu_: rank i's top-level rank (identity at top level)
  std::vector<PeerAddress> topPeers_;  // guarded by mu_: the top-level peer table
  uint16_t userComm_ = 0;
  std::unique_ptr<GroupCollectives> group_;  // a sub-communicator's collectives (worker thread)
  std::atomic<bool> groupBusy_{false};       // a sub-communicator's call is running
  uint64_t seq_ = 0;

  std::mutex ringMu_;  // whoever runs an operation or a health pass holds it: the ring has one user at a time
  std::mutex mu_;
  std::deque<std::unique_ptr<Operation>> queue_;
  bool closeRequested_ = false;  // guarded by mu_
  bool workerDone_ = false;      // guarded by mu_
  std::optional<CommError> failure_;  // worker thread only
  bool failureReported_ = false;      // worker thread only
  std::atomic<bool> cancelled_{false};
  std::thread worker_;
  std::mutex joinMu_;
};

}  // namespace ringtrain
