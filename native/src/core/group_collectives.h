// Collectives of a sub-communicator (split), run as point-to-point messages on the parent's
// P2pEngine, so a sub-communicator costs no sockets: only its worker thread (which runs its calls
// in order, concurrently with the parent's and every other communicator's) and its bookkeeping.
//
// Each call begins by exchanging its header (kind, seq, dtype, op, count, root) with both ring
// neighbours, so two neighbours that issued different calls fail with ERR_RINGTRAIN_MISMATCH
// naming both before any data is used; the data messages carry the call's dtype and length, which
// the engine checks too. Messages of a call use tag = seq within the sub-communicator's internal
// id (user messages on the sub-communicator use another id, so they never meet).
// A dead member: the parent's health protocol fails the engine, which fails every pending message.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"
#include "p2p_engine.h"
#include "wire_format.h"

namespace ringtrain {

class GroupCollectives {
 public:
  // `members[i]` is the top-level rank of member i; this rank is member `index`.
  GroupCollectives(std::shared_ptr<P2pEngine> engine, uint16_t internalComm, std::vector<int> members, int index,
                   std::vector<PeerAddress> topPeers);

  void allreduce(void* data, size_t count, Dtype dtype, ReduceOp op, uint64_t seq);
  void reducescatter(const void* src, void* dst, size_t count, Dtype dtype, ReduceOp op, uint64_t seq);
  void broadcast(void* data, size_t count, Dtype dtype, int root, uint64_t seq);
  void allgather(const void* src, void* dst, size_t count, Dtype dtype, uint64_t seq);
  void barrier(uint64_t seq);

 private:
  struct Transfer {
    const void* send = nullptr;  // to member `dst` (nothing when null and sendBytes == 0 and dst < 0)
    size_t sendBytes = 0;
    int dst = -1;
    void* recv = nullptr;
    size_t recvBytes = 0;
    int src = -1;
  };
  // Posts every send and receive of `transfers` at once and waits for all (the engine bounds each
  // by the timeout); throws the first error.
  void exchange(const std::vector<Transfer>& transfers, Dtype dtype, uint64_t seq);
  void checkHeaders(const wire::CollectiveHeader& h);
  // The ring reduce-scatter on `work` (count elements): member i ends with share i reduced.
  void ringReduceScatter(uint8_t* work, size_t count, Dtype dtype, ReduceOp op, uint64_t seq);
  void ringAllgather(uint8_t* out, size_t count, Dtype dtype, uint64_t seq, bool byShares);
  std::string callName(const wire::CollectiveHeader& h) const;

  std::shared_ptr<P2pEngine> engine_;
  uint16_t comm_;
  std::vector<int> members_;
  int index_;
  int n_;
  std::vector<PeerAddress> topPeers_;
  std::vector<uint8_t> scratch_;
};

}  // namespace ringtrain
