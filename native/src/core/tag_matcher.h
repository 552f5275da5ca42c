// Matches the messages arriving from one peer with the receives posted for them, per tag, in
// order (MPI's non-overtaking rule for one (source, tag) pair). Pure bookkeeping, no I/O: the
// p2p engine owns one per peer and decides what an arrival or a posted receive holds.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ringtrain {

template <class Arrival, class Posted>
class TagMatcher {
 public:
  // The oldest receive posted for `tag`, removed; none when nothing waits (then hold the arrival).
  std::optional<Posted> takePosted(uint64_t tag) { return takeFront(posted_, posteds_, tag); }
  // The oldest unmatched arrival for `tag`, removed; none when nothing arrived (then hold the receive).
  std::optional<Arrival> takeArrival(uint64_t tag) { return takeFront(arrived_, arrivals_, tag); }
  void holdArrival(uint64_t tag, Arrival a) {
    arrived_[tag].push_back(std::move(a));
    ++arrivals_;
  }
  void holdPosted(uint64_t tag, Posted p) {
    posted_[tag].push_back(std::move(p));
    ++posteds_;
  }
  size_t heldArrivals() const { return arrivals_; }
  size_t heldPosted() const { return posteds_; }
  // Everything still waiting, for failing it (the matcher is empty afterwards).
  std::vector<Posted> drainPosted() {
    std::vector<Posted> out;
    for (auto& kv : posted_)
      for (auto& p : kv.second) out.push_back(std::move(p));
    posted_.clear();
    posteds_ = 0;
    return out;
  }
  template <class Pred>
  void dropArrivalsIf(Pred drop) {
    for (auto it = arrived_.begin(); it != arrived_.end();) {
      auto& q = it->second;
      for (auto a = q.begin(); a != q.end();) {
        if (drop(*a)) {
          a = q.erase(a);
          --arrivals_;
        } else {
          ++a;
        }
      }
      it = q.empty() ? arrived_.erase(it) : std::next(it);
    }
  }
  void clearArrivals() {
    arrived_.clear();
    arrivals_ = 0;
  }

 private:
  template <class T>
  std::optional<T> takeFront(std::unordered_map<uint64_t, std::deque<T>>& m, size_t& held, uint64_t tag) {
    auto it = m.find(tag);
    if (it == m.end()) return std::nullopt;
    std::optional<T> out(std::move(it->second.front()));
    it->second.pop_front();
    if (it->second.empty()) m.erase(it);  // idle tags cost nothing
    --held;
    return out;
  }

  std::unordered_map<uint64_t, std::deque<Arrival>> arrived_;
  std::unordered_map<uint64_t, std::deque<Posted>> posted_;
  size_t arrivals_ = 0;
  size_t posteds_ = 0;
};

}  // namespace ringtrain
