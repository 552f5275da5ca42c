#!/usr/bin/env bash
# ringtrain's GPU checks, for a machine with an NVIDIA GPU. Whole run bounded by 5 minutes.
#
#   1. configure + build the CUDA targets (cmake, Release, RINGTRAIN_CUDA=ON)
#   2. ringtrain_cuda_logic_test   kernel thread code emulated on the CPU
#      ringtrain_cuda_test         kernels vs CPU reference, all dtypes/ops, odd sizes; batched
#                                  copy; staged ring all-reduce of device buffers in one process
#      ringtrain_cuda_bench        batched copy vs cudaMemcpy, staging vs cudaMemcpy, kernel GB/s
#   3. node test/fixtures/gpu-allreduce.mjs: 2 ranks, device buffers, over loopback (when node and
#      a CUDA-enabled addon with the device API are there; otherwise a printed skip)
#
# Exit status: 0 all ran and passed, or no GPU here (prints "SKIP: ..."); 1 a check failed;
# 2 the machine has a GPU but lacks what the build needs (cmake, nvcc).
#
# Environment: RINGTRAIN_GPU_BUILD_DIR (default build/gpu-check), RINGTRAIN_GPU_CHECK_BUDGET_S
# (default 300), RINGTRAIN_GPU_SKIP_IS_FAIL=0 (let the CUDA test/bench skip although nvidia-smi
# lists a GPU; only for exercising this script on a machine without one), RINGTRAIN_BENCH_STRICT=1 (a missed bench target fails the run),
# RINGTRAIN_BENCH_QUICK=1 (smaller bench), RINGTRAIN_GPU_BUILD_ADDON=1 (build the addon with
# cmake-js first, which needs node headers available offline), RINGTRAIN_CUDA_ARCHITECTURES (e.g. 90:
# build only for the GPU at hand, which is faster than the default list of five architectures).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUDGET=${RINGTRAIN_GPU_CHECK_BUDGET_S:-300}
BUILD=${RINGTRAIN_GPU_BUILD_DIR:-build/gpu-check}
JOBS=$(nproc 2>/dev/null || echo 2)
START=$SECONDS
declare -a TABLE=()
FAILED=0

left() { echo $((BUDGET - (SECONDS - START))); }
row() { TABLE+=("$(printf '| %-34s | %-7s | %6ss | %s' "$1" "$2" "$3" "$4")"); }

# run_step NAME LIMIT_S LOGFILE CMD...: runs CMD under a time limit, tees its output to LOGFILE,
# records PASS / FAIL / SKIP (a line starting "SKIP:" in its output) and the time taken.
run_step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local budget_left
  budget_left=$(left)
  if (( budget_left < 5 )); then
    row "$name" "FAIL" 0 "no time left in the ${BUDGET}s budget"
    FAILED=1
    return 1
  fi
  (( limit > budget_left )) && limit=$budget_left
  local t0=$SECONDS rc
  echo
  echo "=== $name (limit ${limit}s)"
  timeout --kill-after=5 "$limit" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local dt=$((SECONDS - t0)) note
  note=$(grep -E '^(PASS|FAILED|SKIP|RESULT)' "$log" | tail -1)
  if (( rc == 124 || rc == 137 )); then
    row "$name" "FAIL" "$dt" "timed out after ${limit}s"
    FAILED=1
  elif (( rc != 0 )); then
    row "$name" "FAIL" "$dt" "exit $rc ${note}"
    FAILED=1
  elif grep -q '^SKIP:' "$log" && [[ "${SKIP_IS_FAIL:-0}" == 1 ]]; then
    row "$name" "FAIL" "$dt" "nvidia-smi lists a GPU but ringtrain cannot use it: $(grep '^SKIP:' "$log" | tail -1)"
    FAILED=1
  elif grep -q '^SKIP:' "$log"; then
    row "$name" "SKIP" "$dt" "$(grep '^SKIP:' "$log" | tail -1)"
  else
    row "$name" "PASS" "$dt" "$note"
  fi
  return "$rc"
}

finish() {
  echo
  echo "ringtrain GPU check: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1), $((SECONDS - START))s"
  printf '| %-34s | %-7s | %7s | %s\n' "step" "result" "time" "note"
  printf '|%s|%s|%s|%s\n' "------------------------------------" "---------" "---------" "------"
  for r in "${TABLE[@]}"; do echo "$r"; done
  if (( FAILED )); then
    echo "GPU CHECK FAILED"
    exit 1
  fi
  echo "GPU CHECK PASSED"
  exit 0
}

# --- is there a GPU? ------------------------------------------------------------------------------
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "SKIP: no NVIDIA GPU here (nvidia-smi not found); nothing to check"
  exit 0
fi
if ! GPUS=$(nvidia-smi -L 2>&1) || ! grep -q '^GPU ' <<<"$GPUS"; then
  echo "SKIP: no NVIDIA GPU here (nvidia-smi -L: $(head -1 <<<"$GPUS"))"
  exit 0
fi
echo "$GPUS"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>/dev/null || true

for tool in cmake nvcc; do
  if ! command -v "$tool" >/dev/null 2>&1 && ! [[ $tool == nvcc && -x /usr/local/cuda/bin/nvcc ]]; then
    echo "ERROR: a GPU is present but '$tool' is not on PATH; the CUDA build needs it" >&2
    exit 2
  fi
done
if ! command -v nvcc >/dev/null 2>&1; then export PATH="/usr/local/cuda/bin:$PATH"; fi

# --- build ------------------------------------------------------------------------------------------
mkdir -p "$BUILD"
LOGS="$BUILD/logs"
mkdir -p "$LOGS"
SRC="$ROOT"
if [[ ! -f "$ROOT/CMakeLists.txt" ]]; then
  # No top-level project yet: a minimal one around cmake/cuda.cmake.
  SRC="$BUILD/standalone"
  mkdir -p "$SRC"
  cat >"$SRC/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.18)
project(ringtrain_gpu_check LANGUAGES CXX)
include("$ROOT/cmake/cuda.cmake")
EOF
fi
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
if [[ -f "$BUILD/CMakeCache.txt" ]] && ! grep -q "^CMAKE_HOME_DIRECTORY:INTERNAL=$SRC\$" "$BUILD/CMakeCache.txt"; then
  rm -rf "$BUILD/CMakeCache.txt" "$BUILD/CMakeFiles"
fi
if [[ -f "$BUILD/CMakeCache.txt" ]]; then GEN=(); fi  # keep the generator the cache was made with
ARCH_ARGS=()
[[ -n "${RINGTRAIN_CUDA_ARCHITECTURES:-}" ]] && ARCH_ARGS=("-DCMAKE_CUDA_ARCHITECTURES=$RINGTRAIN_CUDA_ARCHITECTURES")
run_step "configure (Release, CUDA=ON)" 120 "$LOGS/configure.log" \
  cmake -S "$SRC" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DRINGTRAIN_CUDA=ON "${ARCH_ARGS[@]}" || finish
run_step "build CUDA targets" 200 "$LOGS/build.log" \
  cmake --build "$BUILD" --parallel "$JOBS" --target ringtrain_cuda_checks || finish

# --- tests and bench --------------------------------------------------------------------------------
run_step "ringtrain_cuda_logic_test" 60 "$LOGS/logic.log" "$BUILD/ringtrain_cuda_logic_test"
# nvidia-smi saw a GPU, so a test that finds none is a failure (driver too old for this CUDA, ...).
SKIP_IS_FAIL=${RINGTRAIN_GPU_SKIP_IS_FAIL:-1}
run_step "ringtrain_cuda_test" 120 "$LOGS/test.log" "$BUILD/ringtrain_cuda_test"
BENCH_ARGS=()
[[ "${RINGTRAIN_BENCH_STRICT:-0}" == 1 ]] && BENCH_ARGS+=(--strict)
[[ "${RINGTRAIN_BENCH_QUICK:-0}" == 1 ]] && BENCH_ARGS+=(--quick)
run_step "ringtrain_cuda_bench" 120 "$LOGS/bench.log" "$BUILD/ringtrain_cuda_bench" "${BENCH_ARGS[@]}"
SKIP_IS_FAIL=0  # the node step skips legitimately while the binding or dist/ is missing

# --- 2-rank all-reduce of device buffers through the addon -----------------------------------------
if ! command -v node >/dev/null 2>&1; then
  row "2-rank device all-reduce (node)" "SKIP" 0 "node is not installed here"
elif [[ ! -f "$ROOT/dist/index.js" ]]; then
  row "2-rank device all-reduce (node)" "SKIP" 0 "dist/ is not built (npx tsc -p .)"
else
  if [[ "${RINGTRAIN_GPU_BUILD_ADDON:-0}" == 1 ]]; then
    run_step "build addon (cmake-js, CUDA=ON)" 200 "$LOGS/addon.log" \
      npx --no-install cmake-js compile --CDRINGTRAIN_CUDA=ON --CDCMAKE_BUILD_TYPE=Release
  fi
  run_step "2-rank device all-reduce (node)" 60 "$LOGS/allreduce.log" \
    node "$ROOT/test/fixtures/gpu-allreduce.mjs"
fi

finish
