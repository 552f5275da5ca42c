// ringtrain_cuda_bench: the GPU data path against the plain CUDA copies it replaces.
//
//   1. batched copy of 1,000 segments (4 KiB..1 MiB each) into / out of a fusion buffer, one
//      launch, vs one contiguous cudaMemcpy of the same total (target >= 80%), and vs 1,000
//      separate cudaMemcpyAsync calls (what the batched copy replaces);
//   2. DeviceStager downloads / uploads of a large buffer segment by segment through its pinned
//      slots vs one cudaMemcpy of the whole buffer to / from pinned memory (target >= 90%);
//   3. reduction and conversion kernels, GB/s of device memory traffic vs a device-to-device copy.
//
// Usage: ringtrain_cuda_bench [--quick] [--strict]   (--strict: exit 2 when a target is missed)
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../batched_copy.h"
#include "../device_api.h"

using namespace ringtrain::cuda;

namespace {

void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "bench: %s failed: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

/** Median milliseconds of `iters` timed runs (after 2 warm-ups), timed with events on `st`. */
double time_gpu_ms(cudaStream_t st, int iters, const std::function<void()>& fn) {
  cudaEvent_t a, b;
  ck(cudaEventCreate(&a), "cudaEventCreate");
  ck(cudaEventCreate(&b), "cudaEventCreate");
  for (int i = 0; i < 2; ++i) fn();
  ck(cudaStreamSynchronize(st), "sync");
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    ck(cudaEventRecord(a, st), "record");
    fn();
    ck(cudaEventRecord(b, st), "record");
    ck(cudaEventSynchronize(b), "sync");
    float t = 0;
    ck(cudaEventElapsedTime(&t, a, b), "elapsed");
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

/** Median wall milliseconds (host clock), for work that includes host-side waits. */
double time_host_ms(int iters, const std::function<void()>& fn) {
  for (int i = 0; i < 2; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

double gbps(double bytes, double ms) { return bytes / (ms * 1e-3) / 1e9; }

struct Row {
  std::string what;
  double bytes;
  double ms;
  double baseline_gbps;  // 0: no ratio
  double target;         // 0: none
};
std::vector<Row> rows;
bool missed = false;

void print_row(const Row& r) {
  const double g = gbps(r.bytes, r.ms);
  std::printf("| %-58s | %9.1f MB | %9.3f ms | %8.1f GB/s |", r.what.c_str(), r.bytes / 1e6, r.ms, g);
  if (r.baseline_gbps > 0) {
    const double pct = 100.0 * g / r.baseline_gbps;
    std::printf(" %6.1f%% |", pct);
    if (r.target > 0) {
      const bool ok = pct >= r.target;
      missed = missed || !ok;
      std::printf(" %s (>= %.0f%%)", ok ? "target met" : "TARGET MISSED", r.target);
    }
  } else {
    std::printf("    -    |");
  }
  std::printf("\n");
}

void add(const Row& r) {
  rows.push_back(r);
  print_row(r);
}

void bench_batched_copy(bool quick, cudaStream_t st, Stream& stream) {
  std::mt19937_64 rng(1);
  const size_t n = 1000;
  const int iters = quick ? 5 : 20;
  for (int packed = 0; packed < 2; ++packed) {
    // aligned: sizes multiple of 256 B at 256-aligned source offsets, fusion offsets 16-aligned;
    // packed: sizes multiple of 4 B (float32 tensors) packed back to back: source and fusion
    // then disagree modulo 16, which takes the 4-byte-load path.
    std::vector<uint64_t> sizes(n), src_off(n);
    uint64_t at = 0;
    for (size_t i = 0; i < n; ++i) {
      uint64_t s = 4096 + rng() % (1048576 - 4096 + 1);
      s = packed ? s & ~uint64_t{3} : s & ~uint64_t{255};
      sizes[i] = s;
      at = (at + 255) & ~uint64_t{255};
      src_off[i] = at;
      at += s;
    }
    uint64_t total = 0;
    const std::vector<uint64_t> fus_off = fusion_offsets(sizes.data(), n, packed ? 4 : 16, &total);
    DeviceBuffer src(at), fusion(total), contiguous(total);
    memset_device(src.ptr(), 1, at);
    std::vector<uint64_t> srcs(n);
    for (size_t i = 0; i < n; ++i) srcs[i] = src.ptr() + src_off[i];
    BatchedCopier copier(n);

    const double memcpy_ms = time_gpu_ms(st, iters, [&] {
      ck(cudaMemcpyAsync(reinterpret_cast<void*>(contiguous.ptr()), reinterpret_cast<void*>(src.ptr()),
                         total, cudaMemcpyDeviceToDevice, st), "memcpy");
    });
    const double base = gbps(static_cast<double>(total), memcpy_ms);
    const char* kind = packed ? "packed float32" : "aligned";
    if (!packed) add({"one contiguous cudaMemcpy D2D (baseline)", static_cast<double>(total), memcpy_ms, 0, 0});
    const double gather_ms = time_gpu_ms(st, iters, [&] {
      copier.gather(srcs.data(), sizes.data(), fus_off.data(), n, fusion.ptr(), &stream);
    });
    add({std::string("batched gather, 1000 segs 4K-1M, ") + kind, static_cast<double>(total), gather_ms, base, 80});
    const double scatter_ms = time_gpu_ms(st, iters, [&] {
      copier.scatter(fusion.ptr(), fus_off.data(), sizes.data(), srcs.data(), n, &stream);
    });
    add({std::string("batched scatter, 1000 segs 4K-1M, ") + kind, static_cast<double>(total), scatter_ms, base, 80});
    if (!packed) {
      const double many_ms = time_gpu_ms(st, iters, [&] {
        for (size_t i = 0; i < n; ++i) {
          ck(cudaMemcpyAsync(reinterpret_cast<void*>(fusion.ptr() + fus_off[i]),
                             reinterpret_cast<void*>(srcs[i]), sizes[i], cudaMemcpyDeviceToDevice, st),
             "memcpy");
        }
      });
      add({"1000 separate cudaMemcpyAsync D2D (what it replaces)", static_cast<double>(total), many_ms, base, 0});
    }
  }
}

void bench_staging(bool quick, cudaStream_t st) {
  const size_t total = quick ? (size_t{64} << 20) : (size_t{256} << 20);
  const size_t seg = size_t{4} << 20;
  const int iters = quick ? 3 : 7;
  DeviceBuffer dev(total);
  memset_device(dev.ptr(), 2, total);
  void* pinned = nullptr;
  ck(cudaMallocHost(&pinned, total), "cudaMallocHost");
  std::vector<uint8_t> pageable(total, 1);

  const double d2h_ms = time_host_ms(iters, [&] {
    ck(cudaMemcpyAsync(pinned, reinterpret_cast<void*>(dev.ptr()), total, cudaMemcpyDeviceToHost, st), "d2h");
    ck(cudaStreamSynchronize(st), "sync");
  });
  const double h2d_ms = time_host_ms(iters, [&] {
    ck(cudaMemcpyAsync(reinterpret_cast<void*>(dev.ptr()), pinned, total, cudaMemcpyHostToDevice, st), "h2d");
    ck(cudaStreamSynchronize(st), "sync");
  });
  const double d2h_page_ms = time_host_ms(iters, [&] {
    ck(cudaMemcpy(pageable.data(), reinterpret_cast<void*>(dev.ptr()), total, cudaMemcpyDeviceToHost), "d2h");
  });
  const double base_d2h = gbps(static_cast<double>(total), d2h_ms);
  const double base_h2d = gbps(static_cast<double>(total), h2d_ms);
  add({"one cudaMemcpy D2H into pinned memory (baseline)", static_cast<double>(total), d2h_ms, 0, 0});
  add({"one cudaMemcpy D2H into pageable memory", static_cast<double>(total), d2h_page_ms, base_d2h, 0});

  DeviceStager::Options o;
  o.slot_bytes = seg;
  o.slots = 4;
  DeviceStager stager(o);
  const size_t segs = total / seg;
  const size_t elems = seg / 4;
  // Two slots alternate: segment k+1's D2H is in flight while segment k is "consumed".
  const double stage_d2h_ms = time_host_ms(iters, [&] {
    stager.start_download(0, dev.ptr(), elems, Dtype::Float32);
    for (size_t k = 0; k < segs; ++k) {
      if (k + 1 < segs) {
        stager.wait((k + 1) % 2);
        stager.start_download(static_cast<int>((k + 1) % 2), dev.ptr() + (k + 1) * seg, elems, Dtype::Float32);
      }
      stager.wait(static_cast<int>(k % 2));
    }
  });
  add({"DeviceStager D2H, 4 MiB segments via 2 pinned slots", static_cast<double>(total), stage_d2h_ms, base_d2h, 90});
  add({"one cudaMemcpy H2D from pinned memory (baseline)", static_cast<double>(total), h2d_ms, 0, 0});
  const double stage_h2d_ms = time_host_ms(iters, [&] {
    for (size_t k = 0; k < segs; ++k) {
      const int slot = 2 + static_cast<int>(k % 2);
      stager.wait(slot);
      stager.start_upload(slot, dev.ptr() + k * seg, elems, Dtype::Float32);
    }
    stager.synchronize();
  });
  add({"DeviceStager H2D, 4 MiB segments via 2 pinned slots", static_cast<double>(total), stage_h2d_ms, base_h2d, 90});
  const double stage_red_ms = time_host_ms(iters, [&] {
    for (size_t k = 0; k < segs; ++k) {
      const int slot = 2 + static_cast<int>(k % 2);
      stager.wait(slot);
      stager.start_upload_reduce(slot, dev.ptr() + k * seg, elems, Dtype::Float32, ReduceOp::Sum);
    }
    stager.synchronize();
  });
  add({"DeviceStager H2D + GPU sum (float32), 4 MiB segments", static_cast<double>(total), stage_red_ms, base_h2d, 0});
  const double stage_both_ms = time_host_ms(iters, [&] {  // both directions at once, as in the ring
    stager.start_download(0, dev.ptr(), elems, Dtype::Float32);
    for (size_t k = 0; k < segs / 2; ++k) {
      if (k + 1 < segs / 2) {
        stager.wait((k + 1) % 2);
        stager.start_download(static_cast<int>((k + 1) % 2), dev.ptr() + (k + 1) * seg, elems, Dtype::Float32);
      }
      const int slot = 2 + static_cast<int>(k % 2);
      stager.wait(slot);
      stager.start_upload_reduce(slot, dev.ptr() + (segs / 2 + k) * seg, elems, Dtype::Float32, ReduceOp::Sum);
      stager.wait(static_cast<int>(k % 2));
    }
    stager.synchronize();
  });
  add({"DeviceStager D2H + H2D/sum concurrently (bytes each way)", static_cast<double>(total / 2), stage_both_ms, 0, 0});
  const double stage_f16_ms = time_host_ms(iters, [&] {
    stager.start_download(0, dev.ptr(), elems, Dtype::Float32, Dtype::Float16);
    for (size_t k = 0; k < segs; ++k) {
      if (k + 1 < segs) {
        stager.wait((k + 1) % 2);
        stager.start_download(static_cast<int>((k + 1) % 2), dev.ptr() + (k + 1) * seg, elems, Dtype::Float32, Dtype::Float16);
      }
      stager.wait(static_cast<int>(k % 2));
    }
  });
  add({"DeviceStager D2H float32 as float16 (float32 bytes/s)", static_cast<double>(total), stage_f16_ms, base_d2h, 0});
  cudaFreeHost(pinned);
}

void bench_kernels(bool quick, cudaStream_t st, Stream& stream) {
  const size_t bytes = quick ? (size_t{128} << 20) : (size_t{512} << 20);
  const int iters = quick ? 5 : 20;
  DeviceBuffer a(bytes), b(bytes);
  memset_device(a.ptr(), 0, bytes);
  memset_device(b.ptr(), 0, bytes);
  const double copy_ms = time_gpu_ms(st, iters, [&] {
    ck(cudaMemcpyAsync(reinterpret_cast<void*>(a.ptr()), reinterpret_cast<void*>(b.ptr()), bytes,
                       cudaMemcpyDeviceToDevice, st), "memcpy");
  });
  const double dev_gbps = gbps(2.0 * bytes, copy_ms);  // read + write
  add({"cudaMemcpy D2D, traffic = read + write (baseline)", 2.0 * bytes, copy_ms, 0, 0});
  struct K {
    Dtype t;
    ReduceOp op;
  };
  for (K k : {K{Dtype::Float32, ReduceOp::Sum}, K{Dtype::Float16, ReduceOp::Sum}, K{Dtype::BFloat16, ReduceOp::Sum},
              K{Dtype::Float64, ReduceOp::Sum}, K{Dtype::Int32, ReduceOp::Sum}, K{Dtype::Float32, ReduceOp::Max},
              K{Dtype::Float32, ReduceOp::Prod}}) {
    const size_t n = bytes / dtype_size(k.t);
    const double ms = time_gpu_ms(st, iters, [&] { reduce(a.ptr(), b.ptr(), n, k.t, k.op, &stream); });
    add({std::string("reduce ") + op_name(k.op) + " " + dtype_name(k.t) + ", traffic = 3 x buffer",
         3.0 * bytes, ms, dev_gbps, 0});
  }
  {
    const size_t n = bytes / 4;
    const double ms = time_gpu_ms(st, iters, [&] { finalize_avg(a.ptr(), n, Dtype::Float32, 3, &stream); });
    add({"finalize_avg float32 (/3), traffic = 2 x buffer", 2.0 * bytes, ms, dev_gbps, 0});
    const double c1 = time_gpu_ms(st, iters, [&] { convert(b.ptr(), Dtype::Float16, a.ptr(), Dtype::Float32, n, &stream); });
    add({"convert float32 -> float16, traffic = 1.5 x buffer", 1.5 * bytes, c1, dev_gbps, 0});
    const double c2 = time_gpu_ms(st, iters, [&] { convert(a.ptr(), Dtype::Float32, b.ptr(), Dtype::BFloat16, n, &stream); });
    add({"convert bfloat16 -> float32, traffic = 1.5 x buffer", 1.5 * bytes, c2, dev_gbps, 0});
    const double c3 = time_gpu_ms(st, iters, [&] { reduce_mixed(a.ptr(), b.ptr(), Dtype::Float16, n, ReduceOp::Sum, &stream); });
    add({"reduce_mixed float32 += float16, traffic = 2.5 x buffer", 2.5 * bytes, c3, dev_gbps, 0});
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, strict = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--strict") {
      strict = true;
    } else {
      std::fprintf(stderr, "usage: ringtrain_cuda_bench [--quick] [--strict]\n");
      return 64;
    }
  }
  std::printf("ringtrain CUDA bench\n%s", describe().c_str());
  if (!available()) {
    std::printf("SKIP: no CUDA device (%s)\n", probe().unavailable_reason.c_str());
    return 0;
  }
  try {
    Stream stream;
    const cudaStream_t st = static_cast<cudaStream_t>(stream.native());
    std::printf("| %-58s | %12s | %12s | %13s | %7s |\n", "what", "bytes", "median", "rate", "vs base");
    std::printf("|%s|%s|%s|%s|%s|\n", std::string(60, '-').c_str(), std::string(14, '-').c_str(),
                std::string(14, '-').c_str(), std::string(15, '-').c_str(), std::string(9, '-').c_str());
    bench_batched_copy(quick, st, stream);
    bench_staging(quick, st);
    bench_kernels(quick, st, stream);
  } catch (const std::exception& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("%s\n", missed ? "RESULT: some targets missed" : "RESULT: all targets met");
  return strict && missed ? 2 : 0;
}
