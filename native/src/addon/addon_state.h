// Per-environment state: the live communicators, so the environment's cleanup hook can stop their
// worker threads before Node tears the environment down (process exit must never hang on them).
#pragma once
#include <set>

namespace ringtrain {

class CommunicatorBinding;

struct AddonState {
  std::set<CommunicatorBinding*> live;
};

}  // namespace ringtrain
