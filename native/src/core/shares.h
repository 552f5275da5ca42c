// How `count` elements split into `n` contiguous shares, in rank order, as even as possible: the
// first count mod n ranks hold one element more. reducescatter's result layout (and its docs) rest on it.
#pragma once
#include <algorithm>
#include <cstddef>

namespace ringtrain {

inline size_t shareCount(size_t count, int n, int rank) {
  const size_t un = static_cast<size_t>(n), ur = static_cast<size_t>(rank);
  return count / un + (ur < count % un ? 1 : 0);
}
inline size_t shareOffset(size_t count, int n, int rank) {
  const size_t un = static_cast<size_t>(n), ur = static_cast<size_t>(rank);
  return ur * (count / un) + std::min(ur, count % un);
}

}  // namespace ringtrain
