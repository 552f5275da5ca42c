// ringtrain_cuda_test: the CUDA kernels and staging on a real GPU, against the CPU reference.
//
// Without a GPU it checks what it can (the stub's or the runtime's error reporting) and exits 0
// printing "SKIP: no CUDA device (<reason>)". With one, it checks every dtype x op on odd sizes
// and alignments, conversions over all 16-bit patterns, the batched copy on random segment lists,
// and an in-process ring all-reduce of device buffers driven through DeviceStager exactly as the
// TCP ring drives it (the transport replaced by memcpy between the ranks' pinned slots).
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdlib>
#include <functional>
#include <memory>

#include "../batched_copy.h"
#include "../device_api.h"
#include "reference.h"

using namespace ringtrain::cuda;
using namespace ringtrain::cuda::testing;

namespace {

bool throws_kind(const std::function<void()>& fn, CudaError::Kind kind, const char* needle,
                 std::string* message = nullptr) {
  try {
    fn();
  } catch (const CudaError& e) {
    if (message) *message = e.what();
    return e.kind() == kind && (needle == nullptr || std::string(e.what()).find(needle) != std::string::npos);
  } catch (...) {
    return false;
  }
  return false;
}

// --- without a GPU ------------------------------------------------------------------------------

int run_without_gpu() {
  const RuntimeInfo info = probe();
  if (!built_with_cuda()) {
    RT_CHECK(!info.built_with_cuda && !available(), "stub reports no CUDA");
    RT_CHECK(describe().find("without CUDA") != std::string::npos, "describe() says why");
    RT_CHECK(throws_kind([] { DeviceBuffer b(16); }, CudaError::Kind::NotBuilt, "built without CUDA"),
             "DeviceBuffer throws NotBuilt");
    RT_CHECK(throws_kind([] { reduce(1, 2, 3, Dtype::Float32, ReduceOp::Sum); }, CudaError::Kind::NotBuilt, nullptr),
             "reduce throws NotBuilt");
    RT_CHECK(throws_kind([] { DeviceStager s(DeviceStager::Options{}); }, CudaError::Kind::NotBuilt, nullptr),
             "DeviceStager throws NotBuilt");
  } else {
    RT_CHECK(!available() && !info.unavailable_reason.empty(), "a reason is given");
    std::string msg;
    RT_CHECK(throws_kind([] { DeviceBuffer b(16); }, CudaError::Kind::NoDevice, "no GPU", &msg) ||
                 throws_kind([] { DeviceBuffer b(16); }, CudaError::Kind::NoDevice, "driver", &msg),
             "DeviceBuffer throws NoDevice with a clear message (got: %s)", msg.c_str());
    RT_CHECK(throws_kind([] { DeviceStager s(DeviceStager::Options{}); }, CudaError::Kind::NoDevice, nullptr),
             "DeviceStager throws NoDevice");
    RT_CHECK(throws_kind([] { convert(1, Dtype::Float16, 2, Dtype::Float32, 4); }, CudaError::Kind::NoDevice, nullptr),
             "convert throws NoDevice");
  }
  if (g_failures > 0) {
    std::printf("FAILED: %d of %ld checks (no-GPU error reporting)\n", g_failures, g_checks);
    return 1;
  }
  std::printf("SKIP: no CUDA device (%s)\n", info.unavailable_reason.c_str());
  return 0;
}

// --- helpers with a GPU -------------------------------------------------------------------------

struct Dev {  // a DeviceBuffer with an element offset, so unaligned views get tested
  DeviceBuffer buf;
  uint64_t ptr;
  Dev(size_t bytes, size_t offset_bytes) : buf(bytes + offset_bytes + 64), ptr(buf.ptr() + offset_bytes) {}
};

void test_memory() {
  std::vector<uint8_t> host(1000), back(1000);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<uint8_t>(i * 7);
  DeviceBuffer b(1000);
  RT_CHECK(b.ptr() % 256 == 0, "cudaMalloc alignment");
  b.upload(host.data(), 1000);
  b.download(back.data(), 1000);
  RT_CHECK(host == back, "DeviceBuffer round trip");
  std::vector<uint8_t> part(10);
  b.download(part.data(), 10, 990);
  RT_CHECK(std::equal(part.begin(), part.end(), host.begin() + 990), "download at offset");
  RT_CHECK(throws_kind([&] { b.upload(host.data(), 11, 990); }, CudaError::Kind::InvalidArgument, "outside"),
           "upload past the end is refused");
  RT_CHECK(pointer_device(b.ptr()) == b.device(), "pointer_device");
  RT_CHECK(throws_kind([&] { pointer_device(reinterpret_cast<uint64_t>(host.data())); },
                       CudaError::Kind::InvalidArgument, nullptr),
           "pointer_device refuses host memory");
  DeviceBuffer moved = std::move(b);
  RT_CHECK(b.ptr() == 0 && moved.ptr() != 0, "DeviceBuffer moves");
}

void test_reduce() {
  std::mt19937_64 rng(5);
  const size_t counts[] = {0, 1, 2, 3, 7, 13, 31, 127, 1021, 65537, (size_t{1} << 20) + 3};
  const size_t offsets[][2] = {{0, 0}, {1, 1}, {0, 1}, {3, 0}};
  int cases = 0;
  for (Dtype t : kAllDtypes) {
    const size_t es = dtype_size(t);
    for (ReduceOp op : kAllOps) {
      for (size_t ci = 0; ci < std::size(counts); ++ci) {
        const size_t n = counts[ci];
        const auto& off = offsets[(ci + static_cast<size_t>(op)) % std::size(offsets)];
        std::vector<uint8_t> a(n * es + 1), b(n * es + 1), want(n * es + 1), got(n * es + 1);
        fill_random(a.data(), t, n, rng);
        fill_random(b.data(), t, n, rng);
        for (size_t i = 0; i < n; ++i) reduce_one(want.data(), a.data(), b.data(), t, op, i);
        Dev da(n * es, off[0] * es), db(n * es, off[1] * es);
        upload(da.ptr, a.data(), n * es);
        upload(db.ptr, b.data(), n * es);
        reduce(da.ptr, db.ptr, n, t, op);
        download(got.data(), da.ptr, n * es);
        const long bad = first_mismatch(got.data(), want.data(), t, n);
        RT_CHECK(bad < 0, "GPU reduce %s %s n=%zu offsets(%zu,%zu): element %ld got %g want %g",
                 dtype_name(t), op_name(op), n, off[0], off[1], bad,
                 bad < 0 ? 0.0 : get(got.data(), t, bad), bad < 0 ? 0.0 : get(want.data(), t, bad));
        ++cases;
      }
    }
    for (int divisor : {2, 3, 7, 200}) {
      const size_t n = 100003;
      std::vector<uint8_t> a(n * es), want(n * es), got(n * es);
      fill_random(a.data(), t, n, rng);
      for (size_t i = 0; i < n; ++i) divide_one(want.data(), a.data(), t, divisor, i);
      Dev da(n * es, (divisor % 2) * es);
      upload(da.ptr, a.data(), n * es);
      finalize_avg(da.ptr, n, t, divisor);
      download(got.data(), da.ptr, n * es);
      const long bad = first_mismatch(got.data(), want.data(), t, n);
      RT_CHECK(bad < 0, "GPU finalize_avg %s /%d: element %ld", dtype_name(t), divisor, bad);
      ++cases;
    }
  }
  RT_CHECK(throws_kind([] { finalize_avg(1, 1, Dtype::Float32, 0); }, CudaError::Kind::InvalidArgument, "divisor"),
           "finalize_avg refuses divisor 0");
  RT_CHECK(throws_kind([] { reduce(0, 8, 1, Dtype::Float32, ReduceOp::Sum); }, CudaError::Kind::InvalidArgument, "null"),
           "reduce refuses a null pointer");
  std::printf("  reduce / finalize_avg: %d cases (8 dtypes x 5 ops x 11 sizes up to 2^20+3)\n", cases);
}

void test_convert() {
  std::mt19937_64 rng(9);
  for (Dtype w : {Dtype::Float16, Dtype::BFloat16}) {
    const bool h = w == Dtype::Float16;
    // every 16-bit pattern widens exactly
    std::vector<uint16_t> all(65536);
    for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
    std::vector<float> wide(65536);
    Dev dn(65536 * 2, 0), dw(65536 * 4, 4);
    upload(dn.ptr, all.data(), 65536 * 2);
    convert(dw.ptr, Dtype::Float32, dn.ptr, w, 65536);
    download(wide.data(), dw.ptr, 65536 * 4);
    long bad = -1;
    for (uint32_t i = 0; i < 65536 && bad < 0; ++i) {
      const double want = h ? half_value(all[i]) : bf16_value(all[i]);
      if (!(wide[i] == want || (std::isnan(want) && std::isnan(wide[i])))) bad = i;
      if (wide[i] == 0 && want == 0 && std::signbit(wide[i]) != std::signbit(want)) bad = i;
    }
    RT_CHECK(bad < 0, "widen %s pattern 0x%04lx", dtype_name(w), bad);
    // narrowing: random bit patterns (every exponent, NaN, inf, subnormals), ties, plus those widened values
    const size_t n = 1 << 21;
    std::vector<float> f(n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t bits = static_cast<uint32_t>(rng());
      if (i % 4 == 1) bits = (bits & 0xffff0000u) | 0x8000u;  // bf16 ties
      if (i % 4 == 2) bits = (bits & 0xffffe000u) | 0x1000u;  // f16 ties
      std::memcpy(&f[i], &bits, 4);
    }
    std::copy(wide.begin(), wide.end(), f.begin());
    std::vector<uint16_t> narrow(n);
    Dev df(n * 4, 0), dn2(n * 2, 2);
    upload(df.ptr, f.data(), n * 4);
    convert(dn2.ptr, w, df.ptr, Dtype::Float32, n);
    download(narrow.data(), dn2.ptr, n * 2);
    bad = -1;
    for (size_t i = 0; i < n && bad < 0; ++i) {
      const uint16_t want = h ? to_half(f[i]) : to_bf16(f[i]);
      if (std::isnan(f[i])) {
        if (!std::isnan(h ? half_value(narrow[i]) : bf16_value(narrow[i]))) bad = static_cast<long>(i);
      } else if (narrow[i] != want) {
        bad = static_cast<long>(i);
      }
    }
    RT_CHECK(bad < 0, "narrow float32→%s at %ld (%a)", dtype_name(w), bad, bad < 0 ? 0.f : f[bad]);
    // mixed reduce on the device
    for (ReduceOp op : kAllOps) {
      const size_t m = 70001;
      std::vector<float> d(m), want(m), got(m), widened(m);
      std::vector<uint16_t> s(m);
      fill_random(d.data(), Dtype::Float32, m, rng);
      fill_random(s.data(), w, m, rng);
      for (size_t i = 0; i < m; ++i) {
        widened[i] = static_cast<float>(h ? half_value(s[i]) : bf16_value(s[i]));
        reduce_one(want.data(), d.data(), widened.data(), Dtype::Float32, op, i);
      }
      Dev dd(m * 4, (static_cast<size_t>(op) % 2) * 4), ds(m * 2, 0);
      upload(dd.ptr, d.data(), m * 4);
      upload(ds.ptr, s.data(), m * 2);
      reduce_mixed(dd.ptr, ds.ptr, w, m, op);
      download(got.data(), dd.ptr, m * 4);
      const long b2 = first_mismatch(got.data(), want.data(), Dtype::Float32, m);
      RT_CHECK(b2 < 0, "reduce_mixed float32 %s= %s at %ld", op_name(op), dtype_name(w), b2);
    }
  }
  RT_CHECK(throws_kind([] { convert(1, Dtype::Int32, 64, Dtype::Float32, 4); }, CudaError::Kind::InvalidArgument, "unsupported"),
           "convert refuses int32");
  std::printf("  convert: all 65536 patterns widened, 2M floats narrowed, mixed reduce x 5 ops\n");
}

void test_batched_copy() {
  std::mt19937_64 rng(13);
  BatchedCopier copier(16);  // small on purpose: growth is exercised
  Stream stream;
  for (int round = 0; round < 12; ++round) {
    const size_t n = round == 0 ? 1 : (round < 4 ? 7 : 1000);
    std::vector<uint64_t> sizes(n);
    for (size_t i = 0; i < n; ++i) {
      sizes[i] = round % 2 ? 4096 + rng() % (1 << 20) - 4096 * (rng() % 2) : rng() % 70000;
    }
    const bool aligned = round % 3 == 0;
    uint64_t total = 0;
    std::vector<uint64_t> src_off(n), fus_off(n);
    uint64_t at = 0;
    for (size_t i = 0; i < n; ++i) {
      at = aligned ? (at + 255) & ~uint64_t{255} : at + rng() % 16;
      src_off[i] = at;
      at += sizes[i];
    }
    const uint64_t src_total = at + 64;
    fus_off = aligned ? fusion_offsets(sizes.data(), n, 16, &total)
                      : fusion_offsets(sizes.data(), n, 1, &total);
    std::vector<uint8_t> host(src_total);
    for (auto& b : host) b = static_cast<uint8_t>(rng());
    DeviceBuffer src(src_total), fusion(total + 64), back(src_total);
    src.upload(host.data(), src_total);
    memset_device(back.ptr(), 0x5a, src_total);
    std::vector<uint64_t> srcs(n), dsts(n);
    for (size_t i = 0; i < n; ++i) {
      srcs[i] = src.ptr() + src_off[i];
      dsts[i] = back.ptr() + src_off[i];
    }
    const uint64_t fbase = fusion.ptr() + (aligned ? 0 : 3);
    copier.gather(srcs.data(), sizes.data(), fus_off.data(), n, fbase, &stream);
    copier.scatter(fbase, fus_off.data(), sizes.data(), dsts.data(), n, &stream);
    stream.synchronize();
    std::vector<uint8_t> fused(total), out(src_total);
    download(fused.data(), fbase, total);
    back.download(out.data(), src_total);
    long bad = -1;
    for (size_t i = 0; i < n && bad < 0; ++i) {
      if (std::memcmp(fused.data() + fus_off[i], host.data() + src_off[i], sizes[i]) != 0) bad = static_cast<long>(i);
      if (std::memcmp(out.data() + src_off[i], host.data() + src_off[i], sizes[i]) != 0) bad = static_cast<long>(i);
    }
    RT_CHECK(bad < 0, "batched copy round %d (%zu segments, %s): segment %ld", round, n,
             aligned ? "aligned" : "unaligned", bad);
    size_t untouched_bad = 0;  // bytes between segments must keep the 0x5a fill
    std::vector<bool> covered(src_total, false);
    for (size_t i = 0; i < n; ++i) std::fill_n(covered.begin() + src_off[i], sizes[i], true);
    for (size_t k = 0; k < src_total; ++k) untouched_bad += !covered[k] && out[k] != 0x5a;
    RT_CHECK(untouched_bad == 0, "batched copy round %d wrote %zu bytes outside its segments", round, untouched_bad);
  }
  copier.copy(nullptr, 0);  // no-op
  std::printf("  batched copy: 12 random lists (1..1000 segments, 0 B..1 MiB, aligned and not)\n");
}

// --- ring all-reduce through DeviceStager, ranks in one process ---------------------------------

struct Rank {
  std::unique_ptr<DeviceStager> stager;
  DeviceBuffer buf;
};

/** Element range of chunk c of count over n ranks. */
size_t chunk_begin(size_t count, int n, int c) { return count * static_cast<size_t>(c) / n; }

/**
 * The same schedule the TCP ring runs, segment by segment: D2H of segment k+1 is in flight while
 * segment k is "sent" (memcpy into the next rank's receive slot) and H2D + reduce of segment k
 * runs; 2 send slots and 2 receive slots alternate. For a compressed wire the owner rounds its own
 * chunk through the wire type before the allgather so that every rank ends bitwise equal.
 */
void staged_ring_allreduce(std::vector<Rank>& ranks, size_t count, Dtype dtype, ReduceOp op,
                           Dtype wire) {
  const int n = static_cast<int>(ranks.size());
  const size_t ws = dtype_size(wire), es = dtype_size(dtype);
  const size_t seg = ranks[0].stager->slot_bytes() / ws;
  auto mod = [n](int x) { return ((x % n) + n) % n; };
  // One ring step: every rank r sends chunk send_of(r) to r+1, which applies `apply` to it.
  auto step = [&](auto send_of, bool reduce_into) {
    const size_t max_len = count / n + 1;
    const size_t segs = (max_len + seg - 1) / seg;
    for (size_t k = 0; k < segs; ++k) {
      for (int r = 0; r < n; ++r) {  // issue D2H of segment k (k+1 is issued before k is consumed)
        const int c = send_of(r);
        const size_t b = chunk_begin(count, n, c), e = chunk_begin(count, n, c + 1);
        const size_t lo = std::min(b + k * seg, e), len = std::min(seg, e - lo);
        if (k == 0) ranks[r].stager->start_download(0, ranks[r].buf.ptr() + lo * es, len, dtype, wire);
        const size_t lo2 = std::min(b + (k + 1) * seg, e), len2 = std::min(seg, e - lo2);
        if (k + 1 < segs) {
          ranks[r].stager->wait((k + 1) % 2);  // slot used by segment k-1: already sent
          ranks[r].stager->start_download((k + 1) % 2, ranks[r].buf.ptr() + lo2 * es, len2, dtype, wire);
        }
      }
      for (int r = 0; r < n; ++r) {
        const int to = mod(r + 1);
        const int c = send_of(r);
        const size_t b = chunk_begin(count, n, c), e = chunk_begin(count, n, c + 1);
        const size_t lo = std::min(b + k * seg, e), len = std::min(seg, e - lo);
        const int sslot = static_cast<int>(k % 2), rslot = 2 + static_cast<int>(k % 2);
        ranks[r].stager->wait(sslot);
        ranks[to].stager->wait(rslot);
        std::memcpy(ranks[to].stager->host_slot(rslot), ranks[r].stager->host_slot(sslot), len * ws);
        if (reduce_into) {
          ranks[to].stager->start_upload_reduce(rslot, ranks[to].buf.ptr() + lo * es, len, dtype, op, wire);
        } else {
          ranks[to].stager->start_upload(rslot, ranks[to].buf.ptr() + lo * es, len, dtype, wire);
        }
      }
    }
  };
  for (int s = 0; s < n - 1; ++s) step([&](int r) { return mod(r - s); }, true);
  for (int r = 0; r < n; ++r) {  // owner of chunk r+1: finalize and (compressed) round
    const int c = mod(r + 1);
    const size_t b = chunk_begin(count, n, c), e = chunk_begin(count, n, c + 1);
    if (op == ReduceOp::Avg) ranks[r].stager->start_finalize_avg(ranks[r].buf.ptr() + b * es, e - b, dtype, n);
    if (wire != dtype) {
      for (size_t lo = b; lo < e; lo += seg) {
        const size_t len = std::min(seg, e - lo);
        ranks[r].stager->wait(0);
        ranks[r].stager->start_download(0, ranks[r].buf.ptr() + lo * es, len, dtype, wire);
        ranks[r].stager->wait(0);
        ranks[r].stager->start_upload(0, ranks[r].buf.ptr() + lo * es, len, dtype, wire);
      }
    }
  }
  for (int s = 0; s < n - 1; ++s) step([&](int r) { return mod(r + 1 - s); }, false);
  for (auto& rk : ranks) rk.stager->synchronize();
}

/** The same ring on host arrays with the reference semantics (bitwise identical results expected). */
void host_ring_allreduce(std::vector<std::vector<uint8_t>>& data, size_t count, Dtype dtype,
                         ReduceOp op, Dtype wire) {
  const int n = static_cast<int>(data.size());
  const size_t es = dtype_size(dtype);
  auto mod = [n](int x) { return ((x % n) + n) % n; };
  auto through_wire = [&](float v) -> float {
    if (wire == Dtype::Float16) return static_cast<float>(half_value(to_half(v)));
    if (wire == Dtype::BFloat16) return static_cast<float>(bf16_value(to_bf16(v)));
    return v;
  };
  for (int s = 0; s < n - 1; ++s) {
    std::vector<std::vector<uint8_t>> sent(n);
    for (int r = 0; r < n; ++r) {  // values as of the start of the step, as they travel
      sent[r] = data[r];
      if (wire != dtype) {
        float* f = reinterpret_cast<float*>(sent[r].data());
        for (size_t i = 0; i < count; ++i) f[i] = through_wire(f[i]);
      }
    }
    for (int r = 0; r < n; ++r) {
      const int to = mod(r + 1), c = mod(r - s);
      for (size_t i = chunk_begin(count, n, c); i < chunk_begin(count, n, c + 1); ++i) {
        reduce_one(data[to].data(), data[to].data(), sent[r].data(), dtype, op, i);
      }
    }
  }
  for (int r = 0; r < n; ++r) {
    const int c = mod(r + 1);
    for (size_t i = chunk_begin(count, n, c); i < chunk_begin(count, n, c + 1); ++i) {
      if (op == ReduceOp::Avg) divide_one(data[r].data(), data[r].data(), dtype, n, i);
      if (wire != dtype) {
        float* p = reinterpret_cast<float*>(data[r].data()) + i;
        *p = through_wire(*p);
      }
    }
  }
  for (int r = 0; r < n; ++r) {  // allgather: the owner's chunk everywhere
    const int c = mod(r + 1);
    const size_t b = chunk_begin(count, n, c), e = chunk_begin(count, n, c + 1);
    for (int q = 0; q < n; ++q) {
      if (q != r) std::memcpy(data[q].data() + b * es, data[r].data() + b * es, (e - b) * es);
    }
  }
}

void test_staged_ring() {
  std::mt19937_64 rng(21);
  struct Case {
    int ranks;
    size_t count;
    Dtype dtype;
    ReduceOp op;
    Dtype wire;
    size_t slot_bytes;
  };
  std::vector<Case> cases;
  for (Dtype t : kAllDtypes) {
    for (ReduceOp op : kAllOps) {
      cases.push_back({2 + static_cast<int>(cases.size() % 3), 10007 + cases.size(), t, op, t, 4096});
    }
  }
  cases.push_back({2, 1 << 20, Dtype::Float32, ReduceOp::Sum, Dtype::Float32, 1 << 18});
  cases.push_back({3, 5, Dtype::Float32, ReduceOp::Sum, Dtype::Float32, 4096});  // chunks of 1-2 elements
  cases.push_back({2, 1, Dtype::Float32, ReduceOp::Sum, Dtype::Float32, 4096});  // an empty chunk
  cases.push_back({2, 100003, Dtype::Float32, ReduceOp::Sum, Dtype::Float16, 8192});
  cases.push_back({3, 100003, Dtype::Float32, ReduceOp::Avg, Dtype::BFloat16, 8192});
  cases.push_back({4, 65536, Dtype::Float32, ReduceOp::Max, Dtype::Float16, 4096});
  for (const Case& k : cases) {
    const size_t es = dtype_size(k.dtype);
    std::vector<Rank> ranks(k.ranks);
    std::vector<std::vector<uint8_t>> want(k.ranks);
    for (int r = 0; r < k.ranks; ++r) {
      DeviceStager::Options o;
      o.slot_bytes = k.slot_bytes;
      o.slots = 4;
      o.timeout = std::chrono::milliseconds(20000);
      ranks[r].stager = std::make_unique<DeviceStager>(o);
      ranks[r].buf = DeviceBuffer(k.count * es);
      want[r].resize(k.count * es);
      fill_random(want[r].data(), k.dtype, k.count, rng, /*specials=*/false);
      ranks[r].buf.upload(want[r].data(), k.count * es);
    }
    staged_ring_allreduce(ranks, k.count, k.dtype, k.op, k.wire);
    host_ring_allreduce(want, k.count, k.dtype, k.op, k.wire);
    long bad = -1;
    int bad_rank = -1;
    std::vector<uint8_t> got(k.count * es);
    for (int r = 0; r < k.ranks && bad < 0; ++r) {
      ranks[r].buf.download(got.data(), k.count * es);
      bad = first_mismatch(got.data(), want[r].data(), k.dtype, k.count);
      bad_rank = r;
    }
    RT_CHECK(bad < 0, "staged ring %d ranks %zu x %s %s wire %s: rank %d element %ld got %g want %g",
             k.ranks, k.count, dtype_name(k.dtype), op_name(k.op), dtype_name(k.wire), bad_rank, bad,
             bad < 0 ? 0.0 : get(got.data(), k.dtype, bad),
             bad < 0 ? 0.0 : get(want[bad_rank].data(), k.dtype, bad));
  }
  // Misuse is refused clearly.
  DeviceStager::Options o;
  o.slot_bytes = 1024;
  o.slots = 2;
  DeviceStager s(o);
  DeviceBuffer big(1 << 20);
  RT_CHECK(throws_kind([&] { s.start_download(0, big.ptr(), 257, Dtype::Float32); }, CudaError::Kind::InvalidArgument, "fit"),
           "a segment larger than a slot is refused");
  RT_CHECK(throws_kind([&] { s.start_download(2, big.ptr(), 1, Dtype::Float32); }, CudaError::Kind::InvalidArgument, "out of range"),
           "a slot index out of range is refused");
  RT_CHECK(throws_kind([&] { s.start_download(0, big.ptr(), 1, Dtype::Int32, Dtype::Float16); }, CudaError::Kind::InvalidArgument, "compression"),
           "compressing int32 is refused");
  std::printf("  staged ring all-reduce: %zu cases (2-4 ranks, every dtype/op, float16/bfloat16 wire)\n", cases.size());
}

}  // namespace

int main() {
  std::printf("ringtrain CUDA tests\n%s", describe().c_str());
  if (!available()) return run_without_gpu();
  try {
    test_memory();
    test_reduce();
    test_convert();
    test_batched_copy();
    test_staged_ring();
  } catch (const std::exception& e) {
    std::printf("FAILED: unexpected exception: %s\n", e.what());
    return 1;
  }
  if (g_failures > 0) {
    std::printf("FAILED: %d of %ld checks\n", g_failures, g_checks);
    return 1;
  }
  std::printf("PASS: %ld checks\n", g_checks);
  return 0;
}
