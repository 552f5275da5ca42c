// The core's one clock: the steady clock, in milliseconds for deadlines that survive wall-clock
// jumps and in microseconds for timelines and spin budgets.
#pragma once
#include <chrono>
#include <cstdint>

namespace ringtrain {

inline int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Milliseconds from now until `deadline`, clamped to [0, cap] for poll().
inline int msUntil(int64_t deadline, int cap) {
  int64_t left = deadline - nowMs();
  if (left < 0) return 0;
  return left > cap ? cap : static_cast<int>(left);
}

inline int64_t nowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace ringtrain
