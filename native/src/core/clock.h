// Monotonic milliseconds, for deadlines that survive wall-clock jumps.
#pragma once
#include <chrono>
#include <cstdint>

namespace ringtrain {

inline int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Milliseconds from now until `deadline`, clamped to [0, cap] for poll().
inline int msUntil(int64_t deadline, int cap) {
  int64_t left = deadline - nowMs();
  if (left < 0) return 0;
  return left > cap ? cap : static_cast<int>(left);
}

}  // namespace ringtrain
