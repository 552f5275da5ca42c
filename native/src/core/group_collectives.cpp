#include "group_collectives.h"

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>

#include "reduce_kernels.h"
#include "shares.h"

namespace ringtrain {

namespace {

struct Waiter {
  std::mutex m;
  std::condition_variable cv;
  int left = 0;
  std::optional<CommError> error;
};

int mod(int a, int n) { return ((a % n) + n) % n; }

}  // namespace

GroupCollectives::GroupCollectives(std::shared_ptr<P2pEngine> engine, uint16_t internalComm, std::vector<int> members, int index,
                                   std::vector<PeerAddress> topPeers)
    : engine_(std::move(engine)),
      comm_(internalComm),
      members_(std::move(members)),
      index_(index),
      n_(static_cast<int>(members_.size())),
      topPeers_(std::move(topPeers)) {}

std::string GroupCollectives::callName(const wire::CollectiveHeader& h) const {
  std::string s = std::string(wire::kindName(h.kind)) + " #" + std::to_string(h.seq);
  if (h.kind != wire::CollectiveKind::Barrier) s += " (" + std::to_string(h.count) + " x " + dtypeName(static_cast<Dtype>(h.dtype));
  if (h.kind == wire::CollectiveKind::Allreduce || h.kind == wire::CollectiveKind::Reducescatter) s += std::string(", ") + opName(static_cast<ReduceOp>(h.op));
  if (h.kind == wire::CollectiveKind::Broadcast) s += ", root " + std::to_string(h.root);
  if (h.kind != wire::CollectiveKind::Barrier) s += ")";
  return s;
}

void GroupCollectives::exchange(const std::vector<Transfer>& transfers, Dtype dtype, uint64_t seq) {
  auto wait = std::make_shared<Waiter>();
  std::vector<std::unique_ptr<P2pOp>> ops;
  const size_t elem = dtypeSize(dtype);
  auto make = [&](P2pOp::Kind kind, int member, void* data, size_t bytes) {
    auto op = std::make_unique<P2pOp>();
    op->kind = kind;
    op->peer = members_.at(static_cast<size_t>(member));
    op->comm = comm_;
    op->tag = static_cast<uint32_t>(seq & p2p::kMaxTag);
    op->dtype = dtype;
    op->data = data;
    op->count = bytes / elem;
    op->done = [wait](const CommError* error) {
      std::lock_guard<std::mutex> lock(wait->m);
      if (error && !wait->error) wait->error = *error;
      if (--wait->left == 0) wait->cv.notify_all();
    };
    ops.push_back(std::move(op));
  };
  for (const Transfer& t : transfers) {
    if (t.dst >= 0) make(P2pOp::Kind::Send, t.dst, const_cast<void*>(t.send), t.sendBytes);
    if (t.src >= 0) make(P2pOp::Kind::Recv, t.src, t.recv, t.recvBytes);
  }
  wait->left = static_cast<int>(ops.size());
  if (ops.empty()) return;
  for (auto& op : ops) engine_->submit(std::move(op));
  std::unique_lock<std::mutex> lock(wait->m);
  wait->cv.wait(lock, [&] { return wait->left == 0; });
  if (wait->error) throw *wait->error;
}

void GroupCollectives::checkHeaders(const wire::CollectiveHeader& h) {
  if (n_ == 1) return;
  const int right = mod(index_ + 1, n_), left = mod(index_ - 1, n_);
  uint8_t mine[wire::CollectiveHeader::kSize];
  h.encode(mine);
  uint8_t fromLeft[wire::CollectiveHeader::kSize] = {}, fromRight[wire::CollectiveHeader::kSize] = {};
  const size_t H = wire::CollectiveHeader::kSize;
  exchange({{mine, H, right, fromLeft, H, left}, {mine, H, left, fromRight, H, right}}, Dtype::Uint8, h.seq);
  for (auto [bytes, member] : {std::pair<uint8_t*, int>{fromLeft, left}, std::pair<uint8_t*, int>{fromRight, right}}) {
    wire::CollectiveHeader theirs;
    if (!theirs.decode(bytes) || !(theirs == h)) {
      const int top = members_.at(static_cast<size_t>(member));
      throw CommError(ErrorCode::Mismatch, "mismatched collectives on a sub-communicator: rank " + std::to_string(index_) + " called " + callName(h) +
                                               " but its rank " + std::to_string(member) + " (" + describePeer(top, topPeers_.at(static_cast<size_t>(top))) +
                                               ") called " + (theirs.decode(bytes) ? callName(theirs) : std::string("something else")));
    }
  }
}

void GroupCollectives::ringReduceScatter(uint8_t* work, size_t count, Dtype dtype, ReduceOp op, uint64_t seq) {
  // As Ring::reducescatter: step s sends share i-s-1 and reduces share i-s-2; share i ends complete here.
  const size_t elem = dtypeSize(dtype);
  const int right = mod(index_ + 1, n_), left = mod(index_ - 1, n_);
  for (int s = 0; s < n_ - 1; ++s) {
    const int sc = mod(index_ - s - 1, n_), rc = mod(index_ - s - 2, n_);
    const size_t rcBytes = shareCount(count, n_, rc) * elem;
    scratch_.resize(std::max(scratch_.size(), rcBytes));
    exchange({{work + shareOffset(count, n_, sc) * elem, shareCount(count, n_, sc) * elem, right, scratch_.data(), rcBytes, left}}, dtype, seq);
    uint8_t* dst = work + shareOffset(count, n_, rc) * elem;
    reduceInto(dtype, op, dst, scratch_.data(), rcBytes / elem);
    if (op == ReduceOp::Avg && s == n_ - 2) finishAverage(dtype, dst, rcBytes / elem, n_);
  }
}

void GroupCollectives::ringAllgather(uint8_t* out, size_t count, Dtype dtype, uint64_t seq, bool byShares) {
  // Member i starts with block i (a share of `count`, or `count` elements per member) and forwards
  // what it received the step before.
  const size_t elem = dtypeSize(dtype);
  auto off = [&](int c) { return (byShares ? shareOffset(count, n_, c) : static_cast<size_t>(c) * count) * elem; };
  auto len = [&](int c) { return (byShares ? shareCount(count, n_, c) : count) * elem; };
  const int right = mod(index_ + 1, n_), left = mod(index_ - 1, n_);
  for (int s = 0; s < n_ - 1; ++s) {
    const int sc = mod(index_ - s, n_), rc = mod(index_ - s - 1, n_);
    exchange({{out + off(sc), len(sc), right, out + off(rc), len(rc), left}}, dtype, seq);
  }
}

void GroupCollectives::allreduce(void* data, size_t count, Dtype dtype, ReduceOp op, uint64_t seq) {
  wire::CollectiveHeader h;
  h.kind = wire::CollectiveKind::Allreduce;
  h.dtype = static_cast<uint8_t>(dtype);
  h.op = static_cast<uint8_t>(op);
  h.seq = seq;
  h.count = count;
  checkHeaders(h);
  if (n_ == 1) return;
  ringReduceScatter(static_cast<uint8_t*>(data), count, dtype, op, seq);
  ringAllgather(static_cast<uint8_t*>(data), count, dtype, seq, true);
}

void GroupCollectives::reducescatter(const void* src, void* dst, size_t count, Dtype dtype, ReduceOp op, uint64_t seq) {
  wire::CollectiveHeader h;
  h.kind = wire::CollectiveKind::Reducescatter;
  h.dtype = static_cast<uint8_t>(dtype);
  h.op = static_cast<uint8_t>(op);
  h.seq = seq;
  h.count = count;
  checkHeaders(h);
  const size_t elem = dtypeSize(dtype);
  std::vector<uint8_t> work(static_cast<const uint8_t*>(src), static_cast<const uint8_t*>(src) + count * elem);
  if (n_ > 1) ringReduceScatter(work.data(), count, dtype, op, seq);
  const size_t mine = shareCount(count, n_, index_) * elem;
  if (mine) std::memcpy(dst, work.data() + shareOffset(count, n_, index_) * elem, mine);
}

void GroupCollectives::broadcast(void* data, size_t count, Dtype dtype, int root, uint64_t seq) {
  wire::CollectiveHeader h;
  h.kind = wire::CollectiveKind::Broadcast;
  h.dtype = static_cast<uint8_t>(dtype);
  h.root = static_cast<uint32_t>(root);
  h.seq = seq;
  h.count = count;
  checkHeaders(h);
  const size_t bytes = count * dtypeSize(dtype);
  // The root sends to every member at once (sub-communicators are usually small groups; a tree
  // would cut the root's bytes for large ones).
  std::vector<Transfer> t;
  if (index_ == root) {
    for (int m = 0; m < n_; ++m)
      if (m != root) t.push_back({data, bytes, m, nullptr, 0, -1});
  } else {
    t.push_back({nullptr, 0, -1, data, bytes, root});
  }
  exchange(t, dtype, seq);
}

void GroupCollectives::allgather(const void* src, void* dst, size_t count, Dtype dtype, uint64_t seq) {
  wire::CollectiveHeader h;
  h.kind = wire::CollectiveKind::Allgather;
  h.dtype = static_cast<uint8_t>(dtype);
  h.seq = seq;
  h.count = count;
  checkHeaders(h);
  const size_t block = count * dtypeSize(dtype);
  auto* out = static_cast<uint8_t*>(dst);
  if (block) std::memmove(out + static_cast<size_t>(index_) * block, src, block);
  ringAllgather(out, count, dtype, seq, false);
}

void GroupCollectives::barrier(uint64_t seq) {
  wire::CollectiveHeader h;
  h.kind = wire::CollectiveKind::Barrier;
  h.seq = seq;
  checkHeaders(h);
  // One byte per member round the ring: a member leaves only after hearing (transitively) from all.
  std::vector<uint8_t> marks(static_cast<size_t>(n_), 1);
  ringAllgather(marks.data(), 1, Dtype::Uint8, seq, false);
}

}  // namespace ringtrain
