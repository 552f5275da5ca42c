// The per-thread bodies of ringtrain's CUDA kernels, written once for two compilers.
//
// nvcc compiles these as __device__ code inside the kernels (batched_copy.cu, elementwise.cu);
// g++ compiles them as ordinary functions so that cuda_logic_test can run every thread of every
// block on the CPU and check the index arithmetic, alignment handling, head/tail splitting and
// element semantics on a machine with no GPU. Nothing here allocates, synchronises or uses shared
// memory: a kernel's threads are independent, so running them one after another is equivalent.
//
// On the device, float16/bfloat16 conversions use CUDA's round-to-nearest-even intrinsics; on the
// host the bit-level implementations below (checked against GCC's _Float16 in the logic test).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define RT_HD __host__ __device__ __forceinline__
#else
#define RT_HD inline
#endif
#if defined(__CUDA_ARCH__)  // the device pass only: the host compiler would warn about the pragma
#define RT_UNROLL _Pragma("unroll")
#else
#define RT_UNROLL
#endif

namespace ringtrain::cuda::logic {

// ---------------------------------------------------------------------------------------------
// 16-byte vector and the few intrinsics the kernels need
// ---------------------------------------------------------------------------------------------

#if defined(__CUDACC__)
using V16 = uint4;  // 16-byte aligned; plain loads/stores of it compile to LDG.128 / STG.128
#else
struct alignas(16) V16 {
  unsigned int x, y, z, w;
};
#endif

RT_HD uint32_t funnel_shift_right(uint32_t lo, uint32_t hi, uint32_t shift) {
#if defined(__CUDA_ARCH__)
  return __funnelshift_r(lo, hi, shift);
#else
  return static_cast<uint32_t>(((static_cast<uint64_t>(hi) << 32) | lo) >> (shift & 31));
#endif
}

RT_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

RT_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// Global-memory accessors. Addresses arrive as uint64 (descriptors, kernel arguments), so nvcc
// cannot infer the global state space and would emit generic loads; these name it. Sources use the
// read-only (non-coherent) path: a source is never written during the kernel that reads it.
RT_HD V16 ld_src16(const void* p) {
#if defined(__CUDA_ARCH__)
  return __ldg(static_cast<const uint4*>(p));
#else
  V16 r;
  std::memcpy(&r, p, 16);
  return r;
#endif
}
RT_HD V16 ld_dst16(const void* p) {  // data this kernel will overwrite: coherent L2 path
#if defined(__CUDA_ARCH__)
  return __ldcg(static_cast<const uint4*>(p));
#else
  V16 r;
  std::memcpy(&r, p, 16);
  return r;
#endif
}
RT_HD void st16(void* p, const V16& v) {
#if defined(__CUDA_ARCH__)
  __stwb(static_cast<uint4*>(p), v);
#else
  std::memcpy(p, &v, 16);
#endif
}
RT_HD uint64_t ld_src8(const void* p) {  // 8-byte aligned
#if defined(__CUDA_ARCH__)
  return __ldg(static_cast<const unsigned long long*>(p));
#else
  uint64_t r;
  std::memcpy(&r, p, 8);
  return r;
#endif
}
RT_HD uint32_t ld_src4(const void* p) {  // 4-byte aligned
#if defined(__CUDA_ARCH__)
  return __ldg(static_cast<const unsigned int*>(p));
#else
  uint32_t r;
  std::memcpy(&r, p, 4);
  return r;
#endif
}

// ---------------------------------------------------------------------------------------------
// float16 / bfloat16 bit-level conversions (host path; reference for the device intrinsics)
// ---------------------------------------------------------------------------------------------

RT_HD float soft_half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0) {
    if (man == 0) return bits_float(sign);
    int e = -14;  // subnormal: normalise
    while ((man & 0x400u) == 0) {
      man <<= 1;
      --e;
    }
    man &= 0x3ffu;
    return bits_float(sign | (static_cast<uint32_t>(e + 127) << 23) | (man << 13));
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (man << 13));  // inf, NaN (payload kept)
  return bits_float(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

RT_HD uint16_t soft_float_to_half_rne(float f) {
  const uint32_t x = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN → quiet NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // ≥ 65520 rounds to inf
  if (a < 0x38800000u) {                                                // below 2^-14: subnormal
    if (a <= 0x33000000u) return sign;  // ≤ 2^-25 (the tie rounds to even zero)
    const uint32_t e = a >> 23;
    const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    const uint32_t s = 126u - e;  // value / 2^-24 = mant >> s, s in [14, 24]
    uint32_t r = mant >> s;
    const uint32_t rem = mant & ((1u << s) - 1u);
    const uint32_t half = 1u << (s - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t h = (((a >> 23) - 112u) << 10) | ((a >> 13) & 0x3ffu);
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // carry may bump the exponent: correct
  return static_cast<uint16_t>(sign | h);
}

RT_HD float soft_bf16_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }

RT_HD uint16_t soft_float_to_bf16_rne(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet
  const uint32_t lsb = (x >> 16) & 1u;
  return static_cast<uint16_t>((x + 0x7fffu + lsb) >> 16);
}

// ---------------------------------------------------------------------------------------------
// Element types: storage S, compute type C
// ---------------------------------------------------------------------------------------------

struct F16 {
  uint16_t bits;
};
struct BF16 {
  uint16_t bits;
};

template <class T>
struct Num {  // float, double and the integers compute in their own type
  using S = T;
  using C = T;
  RT_HD static C load(S s) { return s; }
  RT_HD static S store(C c) { return c; }
};

template <>
struct Num<F16> {
  using S = F16;
  using C = float;
  RT_HD static C load(S s) {
#if defined(__CUDA_ARCH__)
    return __half2float(__ushort_as_half(s.bits));
#else
    return soft_half_to_float(s.bits);
#endif
  }
  RT_HD static S store(C c) {
#if defined(__CUDA_ARCH__)
    return S{__half_as_ushort(__float2half_rn(c))};
#else
    return S{soft_float_to_half_rne(c)};
#endif
  }
};

template <>
struct Num<BF16> {
  using S = BF16;
  using C = float;
  RT_HD static C load(S s) {
#if defined(__CUDA_ARCH__)
    return __bfloat162float(__ushort_as_bfloat16(s.bits));
#else
    return soft_bf16_to_float(s.bits);
#endif
  }
  RT_HD static S store(C c) {
#if defined(__CUDA_ARCH__)
    return S{__bfloat16_as_ushort(__float2bfloat16_rn(c))};
#else
    return S{soft_float_to_bf16_rne(c)};
#endif
  }
};

// ---------------------------------------------------------------------------------------------
// Reduction operators (on compute values). Same semantics as documented in device_api.h.
// ---------------------------------------------------------------------------------------------

enum class Op : int { Sum = 0, Min = 1, Max = 2, Prod = 3 };

template <class C>
RT_HD bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) {
    return v != v;
  } else {
    (void)v;
    return false;
  }
}

template <Op OP, class C>
RT_HD C apply_op(C a, C b) {
  if constexpr (OP == Op::Sum || OP == Op::Prod) {
    if constexpr (std::is_integral_v<C>) {  // wrap around, without signed-overflow UB
      using U = std::make_unsigned_t<C>;
      const U r = OP == Op::Sum ? static_cast<U>(static_cast<U>(a) + static_cast<U>(b))
                                : static_cast<U>(static_cast<U>(a) * static_cast<U>(b));
      return static_cast<C>(r);
    } else {
      return OP == Op::Sum ? a + b : a * b;
    }
  } else if constexpr (OP == Op::Min) {
    if (is_nan(a)) return a;
    if (is_nan(b)) return b;
    return b < a ? b : a;
  } else {
    if (is_nan(a)) return a;
    if (is_nan(b)) return b;
    return b > a ? b : a;
  }
}

template <class C>
RT_HD C divide(C a, int divisor) {
  if constexpr (std::is_integral_v<C>) {
    using W = std::common_type_t<C, int>;  // int8 / uint8 promote; divisor may exceed their range
    return static_cast<C>(static_cast<W>(a) / static_cast<W>(divisor));  // truncates toward zero
  } else {
    return a / static_cast<C>(divisor);
  }
}

// ---------------------------------------------------------------------------------------------
// Batched copy
// ---------------------------------------------------------------------------------------------

constexpr unsigned kCopyThreads = 256;
constexpr unsigned kCopyUnroll = 4;
constexpr uint64_t kCopyChunkBytes = uint64_t{kCopyThreads} * 16u * kCopyUnroll;  // 16 KiB

/** Device-side descriptor: first_chunk is the exclusive prefix sum of copy_chunks() over segments. */
struct CopyDesc {
  uint64_t src;
  uint64_t dst;
  uint64_t bytes;
  uint64_t first_chunk;
};

/** Bytes before dst reaches a 16-byte boundary (copied one per thread, by chunk 0). */
RT_HD uint64_t copy_head(uint64_t dst, uint64_t bytes) {
  const uint64_t h = (16u - (dst & 15u)) & 15u;
  return h < bytes ? h : bytes;
}
/** The 16-byte-aligned (on the dst side) middle, copied in 16-byte vectors, split in chunks. */
RT_HD uint64_t copy_body(uint64_t dst, uint64_t bytes) {
  return (bytes - copy_head(dst, bytes)) & ~uint64_t{15};
}
/** Every segment has at least one chunk (chunk 0 also copies head and tail). */
RT_HD uint64_t copy_chunks(uint64_t dst, uint64_t bytes) {
  const uint64_t body = copy_body(dst, bytes);
  return body == 0 ? 1 : (body + kCopyChunkBytes - 1) / kCopyChunkBytes;
}

/** Block b of grid g owns chunks [first(b), first(b+1)): contiguous, balanced to ±1 chunk. */
RT_HD uint64_t block_first_chunk(uint64_t block, uint64_t grid, uint64_t total_chunks) {
  // total_chunks < 2^40 (16 PiB of data) and grid < 2^22, so the product fits in 64 bits.
  return total_chunks * block / grid;
}

/** Index of the segment holding `chunk`: the last i with first_chunk <= chunk. n >= 1. */
RT_HD uint32_t find_segment(const CopyDesc* descs, uint32_t n, uint64_t chunk) {
  uint32_t lo = 0, hi = n;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (descs[mid].first_chunk <= chunk) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/** 16 bytes from a source that is 8-byte aligned. */
RT_HD V16 load16_a8(const uint8_t* p) {
  const uint64_t a = ld_src8(p), b = ld_src8(p + 8);
  V16 r;
  r.x = static_cast<uint32_t>(a);
  r.y = static_cast<uint32_t>(a >> 32);
  r.z = static_cast<uint32_t>(b);
  r.w = static_cast<uint32_t>(b >> 32);
  return r;
}
/** 16 bytes from a source that is 4-byte aligned. */
RT_HD V16 load16_a4(const uint8_t* p) {
  V16 r;
  r.x = ld_src4(p);
  r.y = ld_src4(p + 4);
  r.z = ld_src4(p + 8);
  r.w = ld_src4(p + 12);
  return r;
}
/**
 * 16 bytes from any address: five aligned 4-byte words merged with funnel shifts. Every word read
 * holds at least one of the 16 wanted bytes, so no read crosses into a page (or a 4-byte granule)
 * that the segment does not touch.
 */
RT_HD V16 load16_any(const uint8_t* p) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  const uint8_t* q = reinterpret_cast<const uint8_t*>(addr & ~uintptr_t{3});
  const uint32_t shift = static_cast<uint32_t>(addr & 3u) * 8u;  // 8, 16 or 24 here
  const uint32_t w0 = ld_src4(q), w1 = ld_src4(q + 4), w2 = ld_src4(q + 8), w3 = ld_src4(q + 12),
                 w4 = ld_src4(q + 16);
  V16 r;
  r.x = funnel_shift_right(w0, w1, shift);
  r.y = funnel_shift_right(w1, w2, shift);
  r.z = funnel_shift_right(w2, w3, shift);
  r.w = funnel_shift_right(w3, w4, shift);
  return r;
}

enum class SrcAlign { A16, A8, A4, Any };

template <SrcAlign A>
RT_HD V16 load16(const uint8_t* p) {
  if constexpr (A == SrcAlign::A16) return ld_src16(p);
  if constexpr (A == SrcAlign::A8) return load16_a8(p);
  if constexpr (A == SrcAlign::A4) return load16_a4(p);
  if constexpr (A == SrcAlign::Any) return load16_any(p);
}

/** One thread's share of copying nvec 16-byte vectors (dst aligned); all loads before stores. */
template <SrcAlign A>
RT_HD void copy_vectors(uint8_t* dst, const uint8_t* src, uint32_t nvec, unsigned tid) {
#if defined(__CUDA_ARCH__)
  V16 r[kCopyUnroll];
#else  // zeroed on the host only, for g++'s -Wmaybe-uninitialized
  V16 r[kCopyUnroll] = {};
#endif
  RT_UNROLL
  for (unsigned k = 0; k < kCopyUnroll; ++k) {
    const uint32_t v = tid + k * kCopyThreads;
    if (v < nvec) r[k] = load16<A>(src + uint64_t{v} * 16u);
  }
  RT_UNROLL
  for (unsigned k = 0; k < kCopyUnroll; ++k) {
    const uint32_t v = tid + k * kCopyThreads;
    if (v < nvec) st16(dst + uint64_t{v} * 16u, r[k]);
  }
}

/** Thread tid's part of chunk `chunk` (0-based within the segment) of segment d. */
RT_HD void copy_chunk(const CopyDesc& d, uint64_t chunk, unsigned tid) {
  uint8_t* dst = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(d.dst));
  const uint8_t* src = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(d.src));
  const uint64_t head = copy_head(d.dst, d.bytes);
  const uint64_t body = copy_body(d.dst, d.bytes);
  if (chunk == 0) {
    const uint64_t tail = d.bytes - head - body;
    if (tid < head) {
      dst[tid] = src[tid];
    } else if (tid >= 16 && tid - 16 < tail) {
      const uint64_t off = head + body + (tid - 16);
      dst[off] = src[off];
    }
  }
  const uint64_t begin = chunk * kCopyChunkBytes;
  if (begin >= body) return;
  const uint64_t left = body - begin;
  const uint32_t nvec = static_cast<uint32_t>((left < kCopyChunkBytes ? left : kCopyChunkBytes) / 16u);
  uint8_t* vd = dst + head + begin;
  const uint8_t* vs = src + head + begin;
  const uintptr_t mis = reinterpret_cast<uintptr_t>(vs) & 15u;
  if (mis == 0) {
    copy_vectors<SrcAlign::A16>(vd, vs, nvec, tid);
  } else if ((mis & 7u) == 0) {
    copy_vectors<SrcAlign::A8>(vd, vs, nvec, tid);
  } else if ((mis & 3u) == 0) {
    copy_vectors<SrcAlign::A4>(vd, vs, nvec, tid);
  } else {
    copy_vectors<SrcAlign::Any>(vd, vs, nvec, tid);
  }
}

/** The whole kernel body for one thread of block `block` in a grid of `grid` blocks. */
RT_HD void copy_block(const CopyDesc* descs, uint32_t n, uint64_t total_chunks, uint64_t block,
                      uint64_t grid, unsigned tid) {
  uint64_t c = block_first_chunk(block, grid, total_chunks);
  const uint64_t end = block_first_chunk(block + 1, grid, total_chunks);
  if (c >= end) return;
  uint32_t i = find_segment(descs, n, c);
  for (; c < end; ++c) {
    while (i + 1 < n && descs[i + 1].first_chunk <= c) ++i;
    copy_chunk(descs[i], c - descs[i].first_chunk, tid);
  }
}

// ---------------------------------------------------------------------------------------------
// Element-wise kernels: reduce, reduce_mixed, finalize_avg, convert
// ---------------------------------------------------------------------------------------------

constexpr unsigned kElemThreads = 256;
constexpr unsigned kElemUnroll = 4;

/** Binary: dst = f(dst, src). Unary: dst = f(dst). Convert: dst = f(src), dst not read. */
enum class Mode { Binary, Unary, Convert };

/**
 * How count elements split: `head` scalar elements, then `groups` groups of G elements where both
 * pointers are 16-byte aligned, then the rest scalar. vec == false: all scalar (the pointers can
 * never be aligned together).
 */
struct ElemPlan {
  uint64_t head;
  uint64_t groups;
  uint64_t tail_begin;
  bool vec;
};

template <unsigned DSIZE, unsigned SSIZE>
struct Group {
  static constexpr unsigned G = (16 / DSIZE > 16 / SSIZE) ? 16 / DSIZE : 16 / SSIZE;
  static constexpr unsigned DV = G * DSIZE / 16;  // 16-byte vectors per group on each side
  static constexpr unsigned SV = G * SSIZE / 16;
};

template <unsigned DSIZE, unsigned SSIZE>
RT_HD ElemPlan plan_elementwise(uint64_t dst, uint64_t src, uint64_t count, bool uses_src) {
  constexpr unsigned G = Group<DSIZE, SSIZE>::G;
  for (uint64_t h = 0; h < G && h <= count; ++h) {
    const bool d_ok = ((dst + h * DSIZE) & 15u) == 0;
    const bool s_ok = !uses_src || ((src + h * SSIZE) & 15u) == 0;
    if (d_ok && s_ok) {
      const uint64_t groups = (count - h) / G;
      return ElemPlan{h, groups, h + groups * G, groups > 0};
    }
  }
  return ElemPlan{0, 0, 0, false};
}

/**
 * One thread (tid of nthreads) of an element-wise kernel. DN/SN: Num<> of dst and src storage.
 * F: functor with C_d operator()(C_d d, C_s s) (Binary), (C_d d) (Unary) or (C_s s) (Convert).
 */
template <Mode M, class DN, class SN, class F>
RT_HD void elementwise_thread(uint64_t dst_addr, uint64_t src_addr, uint64_t count,
                              const ElemPlan& plan, uint64_t tid, uint64_t nthreads, F f) {
  using DS = typename DN::S;
  using SS = typename SN::S;
  DS* dst = reinterpret_cast<DS*>(static_cast<uintptr_t>(dst_addr));
  const SS* src = reinterpret_cast<const SS*>(static_cast<uintptr_t>(src_addr));

  auto one = [&](uint64_t i) {
    if constexpr (M == Mode::Binary) {
      dst[i] = DN::store(f(DN::load(dst[i]), SN::load(src[i])));
    } else if constexpr (M == Mode::Unary) {
      dst[i] = DN::store(f(DN::load(dst[i])));
    } else {
      dst[i] = DN::store(f(SN::load(src[i])));
    }
  };

  if (!plan.vec) {  // scalar, coalesced, kElemUnroll independent elements in flight per thread
    for (uint64_t i = tid; i < count; i += nthreads * kElemUnroll) {
      RT_UNROLL
      for (unsigned u = 0; u < kElemUnroll; ++u) {
        const uint64_t j = i + u * nthreads;
        if (j < count) one(j);
      }
    }
    return;
  }

  for (uint64_t i = tid; i < plan.head; i += nthreads) one(i);
  for (uint64_t i = plan.tail_begin + tid; i < count; i += nthreads) one(i);

  using Gr = Group<sizeof(DS), sizeof(SS)>;
  constexpr unsigned G = Gr::G;
  union DVec {
    V16 v[Gr::DV];
    DS e[G];
  };
  union SVec {
    V16 v[Gr::SV];
    SS e[G];
  };
  DVec* dv = reinterpret_cast<DVec*>(dst + plan.head);
  const SVec* sv = reinterpret_cast<const SVec*>(src + plan.head);
  for (uint64_t g = tid; g < plan.groups; g += nthreads * kElemUnroll) {
#if defined(__CUDA_ARCH__)
    DVec d[kElemUnroll];
    SVec s[kElemUnroll];
#else  // the host emulation zeroes them only to keep g++'s -Wmaybe-uninitialized quiet
    DVec d[kElemUnroll] = {};
    SVec s[kElemUnroll] = {};
#endif
    RT_UNROLL
    for (unsigned u = 0; u < kElemUnroll; ++u) {  // issue every load before the first use
      const uint64_t gg = g + u * nthreads;
      if (gg < plan.groups) {
        if constexpr (M != Mode::Convert) {
          RT_UNROLL
          for (unsigned k = 0; k < Gr::DV; ++k) d[u].v[k] = ld_dst16(&dv[gg].v[k]);
        }
        if constexpr (M != Mode::Unary) {
          RT_UNROLL
          for (unsigned k = 0; k < Gr::SV; ++k) s[u].v[k] = ld_src16(&sv[gg].v[k]);
        }
      }
    }
    RT_UNROLL
    for (unsigned u = 0; u < kElemUnroll; ++u) {
      const uint64_t gg = g + u * nthreads;
      if (gg < plan.groups) {
        RT_UNROLL
        for (unsigned e = 0; e < G; ++e) {
          if constexpr (M == Mode::Binary) {
            d[u].e[e] = DN::store(f(DN::load(d[u].e[e]), SN::load(s[u].e[e])));
          } else if constexpr (M == Mode::Unary) {
            d[u].e[e] = DN::store(f(DN::load(d[u].e[e])));
          } else {
            d[u].e[e] = DN::store(f(SN::load(s[u].e[e])));
          }
        }
        RT_UNROLL
        for (unsigned k = 0; k < Gr::DV; ++k) st16(&dv[gg].v[k], d[u].v[k]);
      }
    }
  }
}

/** Threads the element-wise launch wants for a plan (before capping the grid). */
RT_HD uint64_t elementwise_work_items(const ElemPlan& plan, uint64_t count) {
  if (!plan.vec) return (count + kElemUnroll - 1) / kElemUnroll;
  uint64_t items = (plan.groups + kElemUnroll - 1) / kElemUnroll;
  const uint64_t edge = plan.head > count - plan.tail_begin ? plan.head : count - plan.tail_begin;
  return items > edge ? items : edge;
}

// Functors --------------------------------------------------------------------------------------

template <Op OP>
struct ReduceF {
  template <class C>
  RT_HD C operator()(C a, C b) const {
    return apply_op<OP>(a, b);
  }
};

struct DivideF {
  int divisor;
  template <class C>
  RT_HD C operator()(C a) const {
    return divide(a, divisor);
  }
};

struct IdentityF {
  RT_HD float operator()(float a) const { return a; }
};

}  // namespace ringtrain::cuda::logic
