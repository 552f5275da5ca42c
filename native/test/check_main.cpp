// Runs every registered native test case; exit status 0 only when all passed.
// Usage: ringtrain_native_tests [substring]   (runs only the cases whose name contains it)
#include <chrono>
#include <cstring>

#include "check.h"

namespace check {
std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}
int& failures() {
  static int n = 0;
  return n;
}
}  // namespace check

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  for (const check::Case& c : check::registry()) {
    if (filter && !std::strstr(c.name, filter)) continue;
    check::failures() = 0;
    auto t0 = std::chrono::steady_clock::now();
    try {
      c.body();
    } catch (const std::exception& e) {
      check::fail(__FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (check::failures() == 0) {
      ++passed;
      std::printf("ok   %s (%.0f ms)\n", c.name, ms);
    } else {
      ++failed;
      std::printf("FAIL %s: %d check(s) failed\n", c.name, check::failures());
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
