// A minimal test harness for the native core tests: TEST(name) registers a case, CHECK* record
// failures without stopping the case, and main() (check_main.cpp) runs every case and ends with
// the line "N passed, N failed" that CI runners read.
#pragma once
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace check {

struct Case {
  const char* name;
  std::function<void()> body;
};

std::vector<Case>& registry();
// Failures recorded in the case now running.
int& failures();

struct Register {
  Register(const char* name, std::function<void()> body) { registry().push_back({name, std::move(body)}); }
};

inline void fail(const char* file, int line, const std::string& what) {
  // Only the first few failures of a case are printed: a broken kernel fails thousands of elements.
  if (failures()++ < 8) std::fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, what.c_str());
}

// Small integer types print as numbers, not characters.
template <typename T>
auto printable(const T& v) {
  if constexpr (std::is_arithmetic_v<T>) {
    return +v;
  } else {
    return v;
  }
}

template <typename A, typename B>
std::string describe(const char* ea, const char* eb, const A& a, const B& b) {
  std::ostringstream s;
  s << ea << " == " << eb << " (" << printable(a) << " vs " << printable(b) << ")";
  return s.str();
}

}  // namespace check

#define CHECK_CONCAT2(a, b) a##b
#define CHECK_CONCAT(a, b) CHECK_CONCAT2(a, b)
#define TEST(name)                                                                             \
  static void CHECK_CONCAT(test_, name)();                                                     \
  static check::Register CHECK_CONCAT(register_, name)(#name, CHECK_CONCAT(test_, name));      \
  static void CHECK_CONCAT(test_, name)()

#define CHECK(cond)                                           \
  do {                                                        \
    if (!(cond)) check::fail(__FILE__, __LINE__, #cond);      \
  } while (0)

#define CHECK_MSG(cond, msg)                                                        \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::ostringstream check_s_;                                                  \
      check_s_ << #cond << ": " << msg;                                             \
      check::fail(__FILE__, __LINE__, check_s_.str());                              \
    }                                                                               \
  } while (0)

#define CHECK_EQ(a, b)                                                              \
  do {                                                                              \
    const auto& check_a_ = (a);                                                     \
    const auto& check_b_ = (b);                                                     \
    if (!(check_a_ == check_b_)) check::fail(__FILE__, __LINE__, check::describe(#a, #b, check_a_, check_b_)); \
  } while (0)
