// Runtime probe, device selection, error mapping and bounded waits for the CUDA build.
//
// The CUDA runtime is linked statically (cudart_static); it loads the driver (libcuda.so.1) itself
// at first use. On a machine without the driver every runtime call fails with
// cudaErrorInsufficientDriver and cudaDriverGetVersion reports 0: that is how "no driver" is told
// apart from "driver too old" and from "driver present, no GPU" (cudaErrorNoDevice).
#include <array>
#include <atomic>
#include <mutex>
#include <sstream>
#include <thread>

#include "cuda_internal.h"

#ifndef RINGTRAIN_CUDA_ARCHS
#define RINGTRAIN_CUDA_ARCHS ""
#endif

namespace ringtrain::cuda {
namespace {

std::string version_string(int v) {
  if (v <= 0) return "none";
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

/**
 * "75-real,90-virtual,86" (CMake's CUDA_ARCHITECTURES with ',' or ';' between items) → SASS and
 * PTX arch numbers; a bare number means both, as in CMake.
 */
void parse_archs(std::string list, std::vector<int>* sass, std::vector<int>* ptx) {
  for (char& c : list) {
    if (c == ',') c = ';';
  }
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ';')) {
    if (item.empty()) continue;
    const size_t dash = item.find('-');
    const std::string num = item.substr(0, dash);
    const std::string kind = dash == std::string::npos ? "" : item.substr(dash + 1);
    int value = 0;
    try {
      value = std::stoi(num);
    } catch (...) {
      continue;
    }
    if (kind.empty() || kind == "real") sass->push_back(value);
    if (kind.empty() || kind == "virtual") ptx->push_back(value);
  }
}

std::string arch_text(const std::vector<int>& sass, const std::vector<int>& ptx) {
  std::string out;
  for (int a : sass) out += (out.empty() ? "" : " ") + std::string("sm_") + std::to_string(a);
  for (int a : ptx) out += (out.empty() ? "" : " ") + std::string("compute_") + std::to_string(a);
  return out.empty() ? "unknown" : out;
}

/** SASS for cc X.y runs on X.z with z >= y (same major); PTX for N JIT-compiles on cc >= N. */
std::string code_path_for(int major, int minor, const std::vector<int>& sass,
                          const std::vector<int>& ptx) {
  const int cc = major * 10 + minor;
  for (int a : sass) {
    if (a / 10 == major && a % 10 <= minor) return "sass";
  }
  for (int a : ptx) {
    if (a <= cc) return "ptx-jit";
  }
  return "unsupported";
}

std::string reason_for(cudaError_t err, int driver_version) {
  switch (err) {
    case cudaErrorInsufficientDriver:
      if (driver_version == 0) {
        return "no GPU present: no NVIDIA driver found (libcuda.so.1 could not be loaded)";
      }
      return "NVIDIA driver too old: it supports CUDA " + version_string(driver_version) +
             " but this build needs CUDA " + version_string(CUDART_VERSION) +
             " or newer (update the driver)";
    case cudaErrorNoDevice:
      return "no GPU present: the NVIDIA driver sees no CUDA device (check nvidia-smi and "
             "CUDA_VISIBLE_DEVICES)";
    default:
      return std::string("no GPU usable: ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
  }
}

std::once_flag g_avail_once;
bool g_available = false;
std::string g_unavailable_reason;

void compute_availability() {
  const RuntimeInfo info = probe();
  g_available = info.unavailable_reason.empty();
  g_unavailable_reason = info.unavailable_reason;
}

}  // namespace

bool built_with_cuda() noexcept { return true; }

RuntimeInfo probe() noexcept {
  RuntimeInfo info;
  try {
    info.built_with_cuda = true;
    info.build_cuda_version = CUDART_VERSION;
    cudaRuntimeGetVersion(&info.runtime_version);
    cudaDriverGetVersion(&info.driver_version);
    std::vector<int> sass, ptx;
    parse_archs(RINGTRAIN_CUDA_ARCHS, &sass, &ptx);
    info.architectures = arch_text(sass, ptx);
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      cudaGetLastError();  // not sticky, but leave no error behind for the next call
      info.unavailable_reason = reason_for(err, info.driver_version);
      return info;
    }
    bool any_usable = false;
    for (int i = 0; i < n; ++i) {
      GpuInfo g;
      g.index = i;
      cudaDeviceProp prop{};
      if (cudaGetDeviceProperties(&prop, i) == cudaSuccess) {
        g.name = prop.name;
        g.cc_major = prop.major;
        g.cc_minor = prop.minor;
        g.multiprocessors = prop.multiProcessorCount;
        g.total_memory = prop.totalGlobalMem;
      }
      char bus[32] = {0};
      if (cudaDeviceGetPCIBusId(bus, sizeof bus, i) == cudaSuccess) g.pci_bus_id = bus;
      cudaGetLastError();
      g.code_path = sass.empty() && ptx.empty() ? "unknown"
                                                : code_path_for(g.cc_major, g.cc_minor, sass, ptx);
      if (g.code_path != "unsupported") any_usable = true;
      info.gpus.push_back(std::move(g));
    }
    if (n == 0) {
      info.unavailable_reason = reason_for(cudaErrorNoDevice, info.driver_version);
    } else if (!any_usable) {
      info.unavailable_reason = "no GPU usable: this build embeds " + info.architectures +
                                ", which none of the " + std::to_string(n) +
                                " visible GPU(s) can run";
    }
  } catch (...) {
    if (info.unavailable_reason.empty()) info.unavailable_reason = "CUDA probe failed";
  }
  return info;
}

bool available() noexcept {
  std::call_once(g_avail_once, compute_availability);
  return g_available;
}

void require_available() {
  if (available()) return;
  throw CudaError(CudaError::Kind::NoDevice, g_unavailable_reason);
}

std::string describe() noexcept {
  try {
    const RuntimeInfo info = probe();
    std::ostringstream out;
    out << "build: CUDA " << version_string(info.build_cuda_version)
        << " (runtime linked statically, " << version_string(info.runtime_version)
        << "), code for " << info.architectures << "\n";
    out << "driver: "
        << (info.driver_version == 0 ? std::string("none found")
                                     : "supports CUDA " + version_string(info.driver_version))
        << "\n";
    if (info.gpus.empty()) out << "GPUs: none\n";
    for (const GpuInfo& g : info.gpus) {
      out << "GPU " << g.index << ": " << g.name << ", compute capability " << g.cc_major << "."
          << g.cc_minor << ", " << g.multiprocessors << " SMs, "
          << (g.total_memory >> 20) << " MiB, PCI " << g.pci_bus_id << ", code: " << g.code_path
          << "\n";
    }
    if (!info.unavailable_reason.empty()) out << "status: " << info.unavailable_reason << "\n";
    else out << "status: available\n";
    return out.str();
  } catch (...) {
    return "CUDA: describe failed\n";
  }
}

int device_count() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) {
    cudaGetLastError();
    return 0;
  }
  detail::check(err, "cudaGetDeviceCount");
  return n;
}

void set_device(int device) {
  if (device < 0) {
    throw CudaError(CudaError::Kind::InvalidArgument,
                    "set_device: device must be >= 0, got " + std::to_string(device));
  }
  detail::enter_device(device);
}

int current_device() {
  require_available();
  int d = 0;
  detail::check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

namespace detail {

void throw_cuda(cudaError_t err, const char* what) {
  cudaGetLastError();  // clear a non-sticky error so that later calls are not blamed for it
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) {
    int drv = 0;
    cudaDriverGetVersion(&drv);
    throw CudaError(CudaError::Kind::NoDevice, std::string(what) + ": " + reason_for(err, drv));
  }
  const CudaError::Kind kind = err == cudaErrorInvalidValue || err == cudaErrorInvalidDevice ||
                                       err == cudaErrorInvalidDevicePointer
                                   ? CudaError::Kind::InvalidArgument
                                   : CudaError::Kind::Runtime;
  throw CudaError(kind, std::string(what) + " failed: " + cudaGetErrorName(err) + ": " +
                            cudaGetErrorString(err));
}

int resolve_device(int device) {
  require_available();
  int n = 0;
  check(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
  if (device < 0) {
    check(cudaGetDevice(&device), "cudaGetDevice");
  }
  if (device >= n) {
    throw CudaError(CudaError::Kind::InvalidArgument,
                    "device " + std::to_string(device) + " does not exist (" + std::to_string(n) +
                        " visible)");
  }
  return device;
}

int enter_device(int device) {
  device = resolve_device(device);
  check(cudaSetDevice(device), "cudaSetDevice");
  return device;
}

int sm_count(int device) {
  static std::array<std::atomic<int>, 64> cache{};
  if (device >= 0 && device < static_cast<int>(cache.size())) {
    const int cached = cache[device].load(std::memory_order_relaxed);
    if (cached > 0) return cached;
  }
  int n = 0;
  check(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device),
        "cudaDeviceGetAttribute(MultiProcessorCount)");
  if (n <= 0) n = 1;
  if (device >= 0 && device < static_cast<int>(cache.size())) cache[device].store(n);
  return n;
}

namespace {
// Spin (yielding) for the first millisecond, as segment copies usually take tens of microseconds
// and a ring waits on them back to back; then back off to sleeps so that a long wait costs no CPU.
template <class Query>
void poll_until(Query query, std::chrono::milliseconds timeout, const char* what) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto deadline = start + timeout;
  auto sleep = std::chrono::microseconds(20);
  for (;;) {
    const cudaError_t err = query();
    if (err == cudaSuccess) return;
    if (err != cudaErrorNotReady) throw_cuda(err, what);
    const auto now = clock::now();
    if (now >= deadline) {
      throw CudaError(CudaError::Kind::Timeout,
                      std::string(what) + ": the GPU did not finish within " +
                          std::to_string(timeout.count()) + " ms");
    }
    if (now - start < std::chrono::milliseconds(1)) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(sleep);
      if (sleep < std::chrono::microseconds(1000)) sleep *= 2;
    }
  }
}
}  // namespace

void wait_stream(cudaStream_t st, std::chrono::milliseconds timeout, const char* what) {
  poll_until([st] { return cudaStreamQuery(st); }, timeout, what);
}

void wait_event(cudaEvent_t ev, std::chrono::milliseconds timeout, const char* what) {
  poll_until([ev] { return cudaEventQuery(ev); }, timeout, what);
}

void check_not_null(uint64_t ptr, const char* name) {
  if (ptr == 0) {
    throw CudaError(CudaError::Kind::InvalidArgument, std::string(name) + " is a null device pointer");
  }
}

}  // namespace detail
}  // namespace ringtrain::cuda
