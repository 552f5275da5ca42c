// Runs the CUDA kernels' per-thread code (kernel_logic.h) on the CPU, thread by thread, block by
// block, and checks the results against test/reference.h. Needs no GPU and no CUDA toolkit, so
// it runs in every build: it is what checks the kernels' index arithmetic, alignment paths and
// head/tail handling on machines without a GPU.
#include <algorithm>
#include <cinttypes>
#include <cstdlib>

#include "../batched_copy.h"
#include "../kernel_logic.h"
#include "reference.h"

using namespace ringtrain::cuda;
using namespace ringtrain::cuda::testing;
namespace L = ringtrain::cuda::logic;

namespace {

// --- conversions ---------------------------------------------------------------------------------

/** Nearest bf16 to x by search over the two neighbours (ties to even); independent of the trick. */
uint16_t bf16_nearest(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint32_t lo = bits & 0xffff0000u;
  const uint32_t hi = lo + 0x10000u;
  if ((bits & 0xffffu) == 0) return static_cast<uint16_t>(lo >> 16);
  float flo, fhi;
  std::memcpy(&flo, &lo, 4);
  const uint32_t hi_abs = hi & 0x7fffffffu;
  double dhi;
  if (hi_abs == 0x7f800000u) {
    dhi = std::ldexp(1.0, 128) * (x < 0 ? -1 : 1);  // the value "one ulp past max" rounds to inf
  } else {
    std::memcpy(&fhi, &hi, 4);
    dhi = fhi;
  }
  const double dx = x, dlo = flo;
  const double el = std::fabs(dx - dlo), eh = std::fabs(dhi - dx);
  if (el < eh) return static_cast<uint16_t>(lo >> 16);
  if (eh < el) return static_cast<uint16_t>(hi >> 16);
  return static_cast<uint16_t>(((lo >> 16) & 1u) ? hi >> 16 : lo >> 16);
}

void test_conversions() {
  std::mt19937_64 rng(7);
#if defined(__FLT16_MAX__)
  int half_checked = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    _Float16 g;
    const uint16_t hb = static_cast<uint16_t>(h);
    std::memcpy(&g, &hb, 2);
    const float want = static_cast<float>(g);
    const float got = L::soft_half_to_float(hb);
    RT_CHECK((std::isnan(want) && std::isnan(got)) || std::memcmp(&want, &got, 4) == 0,
             "half_to_float(0x%04x)", h);
    // float → half on every half value, and on the midpoints just below / at / above them
    if (!std::isnan(want)) {
      uint32_t fb;
      std::memcpy(&fb, &want, 4);
      for (int d = -2; d <= 2; ++d) {
        const uint32_t b2 = fb + static_cast<uint32_t>(d * 0x1000);
        float f;
        std::memcpy(&f, &b2, 4);
        if (std::isnan(f)) continue;
        const _Float16 r = static_cast<_Float16>(f);
        uint16_t rb;
        std::memcpy(&rb, &r, 2);
        const uint16_t mine = L::soft_float_to_half_rne(f);
        RT_CHECK(mine == rb || (std::isnan(static_cast<float>(r)) && std::isnan(L::soft_half_to_float(mine))),
                 "float_to_half(%a): mine 0x%04x gcc 0x%04x", f, mine, rb);
        ++half_checked;
      }
    }
  }
  for (int i = 0; i < 2000000; ++i) {
    const uint32_t b = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &b, 4);
    const uint16_t mine = L::soft_float_to_half_rne(f);
    const _Float16 r = static_cast<_Float16>(f);
    uint16_t rb;
    std::memcpy(&rb, &r, 2);
    if (std::isnan(f)) {
      RT_CHECK(std::isnan(L::soft_half_to_float(mine)), "NaN → half must stay NaN");
    } else {
      RT_CHECK(mine == rb, "float_to_half(%a) random: mine 0x%04x gcc 0x%04x", f, mine, rb);
    }
  }
  std::printf("  float16 conversions match GCC _Float16 (%d structured + 2M random)\n", half_checked);
#else
  std::printf("  (this compiler has no _Float16: float16 conversions checked by properties only)\n");
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = L::soft_half_to_float(static_cast<uint16_t>(h));
    if (!std::isnan(f)) RT_CHECK(L::soft_float_to_half_rne(f) == h, "half round trip 0x%04x", h);
  }
#endif
  for (int i = 0; i < 2000000; ++i) {
    const uint32_t b = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &b, 4);
    const uint16_t mine = L::soft_float_to_bf16_rne(f);
    if (std::isnan(f)) {
      RT_CHECK(std::isnan(L::soft_bf16_to_float(mine)), "NaN → bf16 must stay NaN");
    } else {
      RT_CHECK(mine == bf16_nearest(f), "float_to_bf16(%a): 0x%04x vs 0x%04x", f, mine, bf16_nearest(f));
    }
  }
  for (uint32_t v = 0; v < 65536; ++v) {  // ties: exactly halfway between bf16 neighbours
    const uint32_t b = (v << 16) | 0x8000u;
    float f;
    std::memcpy(&f, &b, 4);
    if (!std::isnan(f)) RT_CHECK(L::soft_float_to_bf16_rne(f) == bf16_nearest(f), "bf16 tie %08x", b);
  }
  RT_CHECK(L::soft_float_to_half_rne(65504.f) == 0x7bff, "max half");
  RT_CHECK(L::soft_float_to_half_rne(65520.f) == 0x7c00, "65520 rounds to inf");
  RT_CHECK(L::soft_float_to_half_rne(std::ldexp(1.f, -24)) == 0x0001, "min subnormal half");
  RT_CHECK(L::soft_float_to_half_rne(std::ldexp(1.f, -25)) == 0x0000, "2^-25 ties to even zero");
  RT_CHECK(L::soft_float_to_half_rne(std::ldexp(1.5f, -25)) == 0x0001, "1.5*2^-25 rounds up");
  RT_CHECK(L::soft_float_to_bf16_rne(3.4028235e38f) == 0x7f80, "float max rounds to bf16 inf");
  std::printf("  bfloat16 conversions match nearest-value search (2M random + 65536 ties)\n");
}

// --- batched copy ---------------------------------------------------------------------------------

struct HostArena {  // one allocation with canary bytes; pointers into it stand for device pointers
  std::vector<uint8_t> bytes;
  explicit HostArena(size_t n) : bytes(n + 64, 0xA5) {}
  uint64_t at(size_t off) { return reinterpret_cast<uint64_t>(bytes.data() + 16 + off); }
};

void run_copy_emulation(const std::vector<CopySegment>& segs, uint64_t grid_cap) {
  std::vector<L::CopyDesc> descs(segs.size());
  uint64_t chunks = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    descs[i] = L::CopyDesc{segs[i].src, segs[i].dst, segs[i].bytes, chunks};
    chunks += L::copy_chunks(segs[i].dst, segs[i].bytes);
  }
  if (segs.empty()) return;
  const uint64_t grid = std::min<uint64_t>(grid_cap, chunks);
  for (uint64_t b = 0; b < grid; ++b) {
    for (unsigned t = 0; t < L::kCopyThreads; ++t) {
      L::copy_block(descs.data(), static_cast<uint32_t>(descs.size()), chunks, b, grid, t);
    }
  }
}

void test_batched_copy() {
  std::mt19937_64 rng(11);
  const uint64_t sizes_fixed[] = {0, 1, 2, 3, 15, 16, 17, 31, 33, 4095, 4096, 4097,
                                  16383, 16384, 16385, 65537, 100003};
  int cases = 0;
  for (int round = 0; round < 60; ++round) {
    const size_t n = round < 20 ? 1 + round : 1 + rng() % 40;
    std::vector<uint64_t> sizes(n);
    for (size_t i = 0; i < n; ++i) {
      sizes[i] = round % 3 == 0 ? sizes_fixed[rng() % std::size(sizes_fixed)] : rng() % 70000;
    }
    size_t total = 0;
    for (uint64_t s : sizes) total += s + 32;
    HostArena src(total), dst(total);
    for (auto& b : src.bytes) b = static_cast<uint8_t>(rng());
    const std::vector<uint8_t> dst_before = dst.bytes;
    std::vector<CopySegment> segs(n);
    size_t so = 0, d_o = 0;
    for (size_t i = 0; i < n; ++i) {
      so += rng() % 16;  // every relative alignment of src vs dst shows up
      d_o += rng() % 16;
      segs[i] = CopySegment{src.at(so), dst.at(d_o), sizes[i]};
      so += sizes[i];
      d_o += sizes[i];
    }
    const uint64_t grid_caps[] = {1, 3, 7, 132 * 8};
    const uint64_t cap = grid_caps[round % 4];
    run_copy_emulation(segs, cap);
    std::vector<bool> written(dst.bytes.size(), false);
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* s = reinterpret_cast<const uint8_t*>(segs[i].src);
      const uint8_t* d = reinterpret_cast<const uint8_t*>(segs[i].dst);
      RT_CHECK(std::memcmp(s, d, sizes[i]) == 0, "copy round %d segment %zu (%" PRIu64
               " bytes, src%%16=%" PRIu64 " dst%%16=%" PRIu64 ") differs",
               round, i, sizes[i], segs[i].src % 16, segs[i].dst % 16);
      const size_t off = d - dst.bytes.data();
      for (size_t k = 0; k < sizes[i]; ++k) written[off + k] = true;
    }
    bool untouched = true;
    for (size_t k = 0; k < dst.bytes.size(); ++k) {
      if (!written[k] && dst.bytes[k] != dst_before[k]) untouched = false;
    }
    RT_CHECK(untouched, "copy round %d wrote outside its segments", round);
    ++cases;
  }
  // Chunk arithmetic itself.
  RT_CHECK(L::copy_chunks(0, 0) == 1, "an empty segment still has one chunk");
  RT_CHECK(L::copy_chunks(0, L::kCopyChunkBytes) == 1, "exactly one chunk");
  RT_CHECK(L::copy_chunks(0, L::kCopyChunkBytes + 16) == 2, "one vector spills into chunk 2");
  RT_CHECK(L::copy_chunks(1, L::kCopyChunkBytes + 15) == 1, "head 15 + one chunk");
  RT_CHECK(L::copy_head(3, 5) == 5, "head clipped to size");
  std::printf("  batched copy: %d random segment lists, every src/dst alignment, grids 1..1056\n", cases);
}

// --- element-wise kernels -----------------------------------------------------------------------

template <class Fn>
void with_num(Dtype t, Fn&& fn) {
  switch (t) {
    case Dtype::Float32: return fn(L::Num<float>{});
    case Dtype::Float64: return fn(L::Num<double>{});
    case Dtype::Int32: return fn(L::Num<int32_t>{});
    case Dtype::Int8: return fn(L::Num<int8_t>{});
    case Dtype::Uint8: return fn(L::Num<uint8_t>{});
    case Dtype::Int64: return fn(L::Num<int64_t>{});
    case Dtype::Float16: return fn(L::Num<L::F16>{});
    case Dtype::BFloat16: return fn(L::Num<L::BF16>{});
  }
}

template <L::Mode M, class DN, class SN, class F>
void emulate(uint64_t dst, uint64_t src, uint64_t count, F f, uint64_t nthreads_cap) {
  const L::ElemPlan plan = L::plan_elementwise<sizeof(typename DN::S), sizeof(typename SN::S)>(
      dst, src, count, M != L::Mode::Unary);
  uint64_t items = L::elementwise_work_items(plan, count);
  uint64_t blocks = (items + L::kElemThreads - 1) / L::kElemThreads;
  blocks = std::max<uint64_t>(1, std::min<uint64_t>(blocks, nthreads_cap / L::kElemThreads));
  const uint64_t nthreads = blocks * L::kElemThreads;
  for (uint64_t t = 0; t < nthreads; ++t) {
    L::elementwise_thread<M, DN, SN>(dst, src, count, plan, t, nthreads, f);
  }
}

/** Buffers at a chosen element offset from a 16-byte-aligned base, so every path is exercised. */
struct Buf {
  std::vector<uint8_t> raw;
  uint8_t* p;
  Buf(size_t bytes, size_t offset_bytes) : raw(bytes + offset_bytes + 64) {
    uintptr_t a = reinterpret_cast<uintptr_t>(raw.data());
    p = reinterpret_cast<uint8_t*>((a + 15) & ~uintptr_t{15}) + offset_bytes;
  }
  uint64_t addr() const { return reinterpret_cast<uint64_t>(p); }
};

void test_elementwise() {
  std::mt19937_64 rng(3);
  const size_t counts[] = {0, 1, 2, 3, 7, 13, 16, 17, 31, 32, 33, 257, 1009, 4099, 70001};
  const size_t offsets[][2] = {{0, 0}, {1, 1}, {1, 0}, {0, 3}, {2, 2}};
  const uint64_t caps[] = {256, 768, 1u << 20};
  int cases = 0;
  for (Dtype t : kAllDtypes) {
    const size_t es = dtype_size(t);
    for (ReduceOp op : kAllOps) {
      for (size_t ci = 0; ci < std::size(counts); ++ci) {
        const size_t n = counts[ci];
        const auto& off = offsets[(ci + static_cast<size_t>(op)) % std::size(offsets)];
        Buf a(n * es, off[0] * es), b(n * es, off[1] * es);
        fill_random(a.p, t, n, rng);
        fill_random(b.p, t, n, rng);
        std::vector<uint8_t> want(n * es);
        for (size_t i = 0; i < n; ++i) reduce_one(want.data(), a.p, b.p, t, op, i);
        with_num(t, [&](auto num) {
          using N = decltype(num);
          auto run = [&](auto f) {
            emulate<L::Mode::Binary, N, N>(a.addr(), b.addr(), n, f, caps[ci % 3]);
          };
          switch (op) {
            case ReduceOp::Sum:
            case ReduceOp::Avg: run(L::ReduceF<L::Op::Sum>{}); break;
            case ReduceOp::Min: run(L::ReduceF<L::Op::Min>{}); break;
            case ReduceOp::Max: run(L::ReduceF<L::Op::Max>{}); break;
            case ReduceOp::Prod: run(L::ReduceF<L::Op::Prod>{}); break;
          }
        });
        const long bad = first_mismatch(a.p, want.data(), t, n);
        RT_CHECK(bad < 0, "reduce %s %s n=%zu offsets (%zu,%zu): element %ld got %g want %g",
                 dtype_name(t), op_name(op), n, off[0], off[1], bad,
                 bad < 0 ? 0.0 : get(a.p, t, bad), bad < 0 ? 0.0 : get(want.data(), t, bad));
        ++cases;
      }
    }
    for (int divisor : {1, 3, 7, 200}) {
      const size_t n = 1009;
      Buf a(n * es, (divisor % 2) * es);
      fill_random(a.p, t, n, rng);
      std::vector<uint8_t> want(n * es);
      for (size_t i = 0; i < n; ++i) divide_one(want.data(), a.p, t, divisor, i);
      with_num(t, [&](auto num) {
        using N = decltype(num);
        emulate<L::Mode::Unary, N, N>(a.addr(), a.addr(), n, L::DivideF{divisor}, 512);
      });
      const long bad = first_mismatch(a.p, want.data(), t, n);
      RT_CHECK(bad < 0, "finalize_avg %s /%d: element %ld", dtype_name(t), divisor, bad);
      ++cases;
    }
  }
  // Conversions and the mixed reduce, both directions, aligned and not.
  for (size_t n : {size_t{0}, size_t{1}, size_t{9}, size_t{4099}}) {
    for (size_t o : {size_t{0}, size_t{1}, size_t{4}}) {
      for (Dtype w : {Dtype::Float16, Dtype::BFloat16}) {
        const bool h = w == Dtype::Float16;
        Buf f(n * 4, o * 4), x(n * 2, (o % 2) * 2), back(n * 4, 0);
        fill_random(f.p, Dtype::Float32, n, rng);
        if (h) emulate<L::Mode::Convert, L::Num<L::F16>, L::Num<float>>(x.addr(), f.addr(), n, L::IdentityF{}, 512);
        else emulate<L::Mode::Convert, L::Num<L::BF16>, L::Num<float>>(x.addr(), f.addr(), n, L::IdentityF{}, 512);
        const float* fp = reinterpret_cast<const float*>(f.p);
        const uint16_t* xp = reinterpret_cast<const uint16_t*>(x.p);
        bool ok = true;
        for (size_t i = 0; i < n; ++i) {
          const uint16_t want = h ? to_half(fp[i]) : to_bf16(fp[i]);
          if (xp[i] != want && !(std::isnan(fp[i]) && std::isnan(get(x.p, w, i)))) ok = false;
        }
        RT_CHECK(ok, "convert float32→%s n=%zu offset %zu", dtype_name(w), n, o);
        if (h) emulate<L::Mode::Convert, L::Num<float>, L::Num<L::F16>>(back.addr(), x.addr(), n, L::IdentityF{}, 512);
        else emulate<L::Mode::Convert, L::Num<float>, L::Num<L::BF16>>(back.addr(), x.addr(), n, L::IdentityF{}, 512);
        const float* bp = reinterpret_cast<const float*>(back.p);
        ok = true;
        for (size_t i = 0; i < n; ++i) {
          const double want = get(x.p, w, i);
          if (!(bp[i] == want || (std::isnan(want) && std::isnan(bp[i])))) ok = false;
        }
        RT_CHECK(ok, "convert %s→float32 n=%zu offset %zu", dtype_name(w), n, o);
        // mixed reduce: float32 dst (offset o) op= wire values
        Buf d(n * 4, o * 4);
        fill_random(d.p, Dtype::Float32, n, rng, false);
        std::vector<float> want(n);
        const float* dp0 = reinterpret_cast<const float*>(d.p);
        for (size_t i = 0; i < n; ++i) want[i] = dp0[i] + static_cast<float>(get(x.p, w, i));
        if (h) emulate<L::Mode::Binary, L::Num<float>, L::Num<L::F16>>(d.addr(), x.addr(), n, L::ReduceF<L::Op::Sum>{}, 512);
        else emulate<L::Mode::Binary, L::Num<float>, L::Num<L::BF16>>(d.addr(), x.addr(), n, L::ReduceF<L::Op::Sum>{}, 512);
        const long bad = first_mismatch(d.p, want.data(), Dtype::Float32, n);
        RT_CHECK(bad < 0, "reduce_mixed float32+=%s n=%zu offset %zu: element %ld", dtype_name(w), n, o, bad);
        cases += 3;
      }
    }
  }
  // The plan picks the vector path whenever both sides can be aligned together.
  RT_CHECK((L::plan_elementwise<4, 4>(0x1000, 0x2000, 100, true).vec), "aligned float32 vectorises");
  RT_CHECK((L::plan_elementwise<4, 4>(0x1004, 0x2004, 100, true).head == 3), "co-misaligned: 3 head elements");
  RT_CHECK((!L::plan_elementwise<4, 4>(0x1004, 0x2000, 100, true).vec), "never co-aligned: scalar");
  RT_CHECK((L::plan_elementwise<4, 2>(0x1000, 0x2000, 100, true).vec), "float32 ← float16 vectorises");
  std::printf("  element-wise kernels: %d cases (8 dtypes x 5 ops x 15 sizes, avg, convert, mixed)\n", cases);
}

void test_common() {
  uint64_t total = 0;
  const uint64_t sizes[] = {3, 16, 1, 0, 40};
  const auto offs = fusion_offsets(sizes, 5, 16, &total);
  RT_CHECK(offs == (std::vector<uint64_t>{0, 16, 32, 48, 48}), "fusion_offsets aligned to 16");
  RT_CHECK(total == 88, "fusion total %" PRIu64, total);
  bool threw = false;
  try {
    fusion_offsets(sizes, 5, 12, &total);
  } catch (const CudaError& e) {
    threw = e.kind() == CudaError::Kind::InvalidArgument;
  }
  RT_CHECK(threw, "fusion_offsets rejects a non-power-of-two alignment");
  RT_CHECK(dtype_size(Dtype::BFloat16) == 2 && dtype_size(Dtype::Int64) == 8, "dtype sizes");
  RT_CHECK(std::string(dtype_name(Dtype::Float16)) == "float16", "dtype names");
}

}  // namespace

int main() {
  std::printf("ringtrain CUDA kernel logic on the CPU\n");
  test_common();
  test_conversions();
  test_batched_copy();
  test_elementwise();
  if (g_failures > 0) {
    std::printf("FAILED: %d of %ld checks\n", g_failures, g_checks);
    return 1;
  }
  std::printf("PASS: %ld checks\n", g_checks);
  return 0;
}
