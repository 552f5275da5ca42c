// Element types and reduction operations shared by the wire protocol, the kernels and the bindings.
// The numeric values travel in collective headers: never renumber them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ringtrain {

enum class Dtype : uint8_t {
  Float32 = 0,
  Float64 = 1,
  Int32 = 2,
  Int8 = 3,
  Uint8 = 4,
  Int64 = 5,
  Float16 = 6,
  BFloat16 = 7,
};
constexpr int kDtypeCount = 8;

enum class ReduceOp : uint8_t { Sum = 0, Avg = 1, Min = 2, Max = 3, Prod = 4 };
constexpr int kReduceOpCount = 5;

inline bool validDtype(int v) { return v >= 0 && v < kDtypeCount; }
inline bool validOp(int v) { return v >= 0 && v < kReduceOpCount; }

inline size_t dtypeSize(Dtype d) {
  switch (d) {
    case Dtype::Float64:
    case Dtype::Int64: return 8;
    case Dtype::Float32:
    case Dtype::Int32: return 4;
    case Dtype::Float16:
    case Dtype::BFloat16: return 2;
    case Dtype::Int8:
    case Dtype::Uint8: return 1;
  }
  return 1;
}

inline const char* dtypeName(Dtype d) {
  static const char* names[] = {"float32", "float64", "int32", "int8", "uint8", "int64", "float16", "bfloat16"};
  int i = static_cast<int>(d);
  return validDtype(i) ? names[i] : "unknown-dtype";
}

inline const char* opName(ReduceOp o) {
  static const char* names[] = {"sum", "avg", "min", "max", "prod"};
  int i = static_cast<int>(o);
  return validOp(i) ? names[i] : "unknown-op";
}

}  // namespace ringtrain
