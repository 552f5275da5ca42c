// Element-wise GPU kernels: reduce, reduce_mixed, finalize_avg, convert.
//
// The per-thread work lives in kernel_logic.h (shared with the CPU emulation test); this file holds
// the __global__ wrappers, the dtype/op dispatch and the launch geometry: 256 threads per block,
// a grid-stride loop over 16-byte-vector groups with 4 groups in flight per thread, and a grid
// capped at 8 blocks per SM (enough to fill every SM; more only adds scheduling).
#include "cuda_internal.h"

namespace ringtrain::cuda {
namespace detail {
namespace {

using namespace logic;

template <Mode M, class DN, class SN, class F>
__global__ void __launch_bounds__(kElemThreads)
    elementwise_kernel(uint64_t dst, uint64_t src, uint64_t count, ElemPlan plan, F f) {
  const uint64_t tid = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  const uint64_t nthreads = uint64_t{gridDim.x} * blockDim.x;
  elementwise_thread<M, DN, SN>(dst, src, count, plan, tid, nthreads, f);
}

template <Mode M, class DN, class SN, class F>
void launch(uint64_t dst, uint64_t src, uint64_t count, F f, int device, cudaStream_t st,
            const char* what) {
  const ElemPlan plan = plan_elementwise<sizeof(typename DN::S), sizeof(typename SN::S)>(
      dst, src, count, M != Mode::Unary);
  const uint64_t items = elementwise_work_items(plan, count);
  const uint64_t cap = uint64_t{8} * static_cast<uint64_t>(sm_count(device));
  uint64_t blocks = (items + kElemThreads - 1) / kElemThreads;
  if (blocks > cap) blocks = cap;
  if (blocks == 0) blocks = 1;
  elementwise_kernel<M, DN, SN, F>
      <<<static_cast<unsigned>(blocks), kElemThreads, 0, st>>>(dst, src, count, plan, f);
  check(cudaGetLastError(), what);
}

/** Calls fn(Num<T>{}) with the storage type of dtype. */
template <class Fn>
void with_num(Dtype dtype, Fn&& fn) {
  switch (dtype) {
    case Dtype::Float32: return fn(Num<float>{});
    case Dtype::Float64: return fn(Num<double>{});
    case Dtype::Int32: return fn(Num<int32_t>{});
    case Dtype::Int8: return fn(Num<int8_t>{});
    case Dtype::Uint8: return fn(Num<uint8_t>{});
    case Dtype::Int64: return fn(Num<int64_t>{});
    case Dtype::Float16: return fn(Num<F16>{});
    case Dtype::BFloat16: return fn(Num<BF16>{});
  }
  throw CudaError(CudaError::Kind::InvalidArgument, "unknown dtype");
}

/** Calls fn(ReduceF<op>{}); Avg adds like Sum (finalize_avg divides later). */
template <class Fn>
void with_op(ReduceOp op, Fn&& fn) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: return fn(ReduceF<Op::Sum>{});
    case ReduceOp::Min: return fn(ReduceF<Op::Min>{});
    case ReduceOp::Max: return fn(ReduceF<Op::Max>{});
    case ReduceOp::Prod: return fn(ReduceF<Op::Prod>{});
  }
  throw CudaError(CudaError::Kind::InvalidArgument, "unknown reduce op");
}

void check_wire(Dtype dtype, const char* what) {
  if (dtype != Dtype::Float16 && dtype != Dtype::BFloat16) {
    throw CudaError(CudaError::Kind::InvalidArgument,
                    std::string(what) + ": the compressed type must be float16 or bfloat16, got " +
                        dtype_name(dtype));
  }
}

}  // namespace

void launch_reduce(uint64_t dst, uint64_t src, size_t count, Dtype dtype, ReduceOp op, int device,
                   cudaStream_t st) {
  if (count == 0) return;
  check_not_null(dst, "reduce dst");
  check_not_null(src, "reduce src");
  with_num(dtype, [&](auto num) {
    using N = decltype(num);
    with_op(op, [&](auto f) { launch<Mode::Binary, N, N>(dst, src, count, f, device, st, "reduce kernel launch"); });
  });
}

void launch_reduce_mixed(uint64_t dst_f32, uint64_t src, Dtype src_dtype, size_t count,
                         ReduceOp op, int device, cudaStream_t st) {
  check_wire(src_dtype, "reduce_mixed");
  if (count == 0) return;
  check_not_null(dst_f32, "reduce_mixed dst");
  check_not_null(src, "reduce_mixed src");
  with_op(op, [&](auto f) {
    if (src_dtype == Dtype::Float16) {
      launch<Mode::Binary, Num<float>, Num<F16>>(dst_f32, src, count, f, device, st, "reduce_mixed kernel launch");
    } else {
      launch<Mode::Binary, Num<float>, Num<BF16>>(dst_f32, src, count, f, device, st, "reduce_mixed kernel launch");
    }
  });
}

void launch_finalize_avg(uint64_t data, size_t count, Dtype dtype, int divisor, int device,
                         cudaStream_t st) {
  if (divisor < 1) {
    throw CudaError(CudaError::Kind::InvalidArgument,
                    "finalize_avg: divisor must be >= 1, got " + std::to_string(divisor));
  }
  if (count == 0 || divisor == 1) return;
  check_not_null(data, "finalize_avg data");
  with_num(dtype, [&](auto num) {
    using N = decltype(num);
    launch<Mode::Unary, N, N>(data, data, count, DivideF{divisor}, device, st, "finalize_avg kernel launch");
  });
}

void launch_convert(uint64_t dst, Dtype dst_dtype, uint64_t src, Dtype src_dtype, size_t count,
                    int device, cudaStream_t st) {
  const bool narrow = src_dtype == Dtype::Float32 &&
                      (dst_dtype == Dtype::Float16 || dst_dtype == Dtype::BFloat16);
  const bool widen = dst_dtype == Dtype::Float32 &&
                     (src_dtype == Dtype::Float16 || src_dtype == Dtype::BFloat16);
  if (!narrow && !widen) {
    throw CudaError(CudaError::Kind::InvalidArgument,
                    std::string("convert: unsupported conversion ") + dtype_name(src_dtype) +
                        " -> " + dtype_name(dst_dtype) +
                        " (supported: float32 <-> float16, float32 <-> bfloat16)");
  }
  if (count == 0) return;
  check_not_null(dst, "convert dst");
  check_not_null(src, "convert src");
  const uint64_t src_end = src + count * dtype_size(src_dtype);
  const uint64_t dst_end = dst + count * dtype_size(dst_dtype);
  if (dst < src_end && src < dst_end) {
    throw CudaError(CudaError::Kind::InvalidArgument, "convert: dst and src overlap");
  }
  const char* what = "convert kernel launch";
  if (narrow && dst_dtype == Dtype::Float16) {
    launch<Mode::Convert, Num<F16>, Num<float>>(dst, src, count, IdentityF{}, device, st, what);
  } else if (narrow) {
    launch<Mode::Convert, Num<BF16>, Num<float>>(dst, src, count, IdentityF{}, device, st, what);
  } else if (src_dtype == Dtype::Float16) {
    launch<Mode::Convert, Num<float>, Num<F16>>(dst, src, count, IdentityF{}, device, st, what);
  } else {
    launch<Mode::Convert, Num<float>, Num<BF16>>(dst, src, count, IdentityF{}, device, st, what);
  }
}

}  // namespace detail

// Public entry points: enter the device of the stream (or the current one), enqueue, maybe wait.

namespace {
int device_for(Stream* stream) {
  return detail::enter_device(stream != nullptr ? stream->device() : -1);
}
}  // namespace

void reduce(uint64_t dst, uint64_t src, size_t count, Dtype dtype, ReduceOp op, Stream* stream) {
  const int device = device_for(stream);
  detail::launch_reduce(dst, src, count, dtype, op, device, detail::stream_of(stream));
  detail::finish(stream, "reduce");
}

void reduce_mixed(uint64_t dst_f32, uint64_t src, Dtype src_dtype, size_t count, ReduceOp op,
                  Stream* stream) {
  const int device = device_for(stream);
  detail::launch_reduce_mixed(dst_f32, src, src_dtype, count, op, device, detail::stream_of(stream));
  detail::finish(stream, "reduce_mixed");
}

void finalize_avg(uint64_t data, size_t count, Dtype dtype, int divisor, Stream* stream) {
  const int device = device_for(stream);
  detail::launch_finalize_avg(data, count, dtype, divisor, device, detail::stream_of(stream));
  detail::finish(stream, "finalize_avg");
}

void convert(uint64_t dst, Dtype dst_dtype, uint64_t src, Dtype src_dtype, size_t count,
             Stream* stream) {
  const int device = device_for(stream);
  detail::launch_convert(dst, dst_dtype, src, src_dtype, count, device, detail::stream_of(stream));
  detail::finish(stream, "convert");
}

}  // namespace ringtrain::cuda
