#!/usr/bin/env bash
# Builds ringtrain's libFuzzer targets (clang, ASan + UBSan) and runs each for a bounded time.
#
#   scripts/fuzz.sh                 every target, FUZZ_SECONDS each
#   scripts/fuzz.sh fuzz_handshake  only the named target(s)
#
# Targets (native/test/fuzz): fuzz_control_parser (reverse-direction control stream),
# fuzz_wire_decode (Hello / Challenge / CollectiveHeader), fuzz_handshake (the ring listener's
# acceptor, through real loopback sockets).
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 20)
#   FUZZ_JOBS       targets run at once (default 3: all; the handshake target mostly waits on sockets)
#   FUZZ_BUILD_DIR  build folder (default build/fuzz); the growing corpus lives in $FUZZ_BUILD_DIR/corpus,
#                   crash inputs in $FUZZ_BUILD_DIR/artifacts, logs in $FUZZ_BUILD_DIR/logs
#
# Exit status: 0 every target ran its time without a crash; 1 a target crashed or failed to build
# (the log tail and the crash input's path are printed); 2 no clang with libFuzzer here (under
# CI=true as root it is installed from Debian first: clang, libclang-rt-14-dev).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_EACH=${FUZZ_SECONDS:-20}
JOBS=${FUZZ_JOBS:-3}
BUILD=${FUZZ_BUILD_DIR:-build/fuzz}
ALL_TARGETS=(fuzz_control_parser fuzz_wire_decode fuzz_handshake)
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (known: ${ALL_TARGETS[*]})" >&2; exit 1; }
done
[[ $SECONDS_EACH =~ ^[0-9]+$ && $SECONDS_EACH -ge 1 ]] || { echo "fuzz.sh: FUZZ_SECONDS must be a whole number >= 1" >&2; exit 1; }

# libFuzzer works when a trivial target links with -fsanitize=fuzzer.
have_libfuzzer() {
  command -v clang++ >/dev/null 2>&1 || return 1
  local tmp
  tmp=$(mktemp -d)
  printf '#include <stddef.h>\n#include <stdint.h>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' > "$tmp/t.cpp"
  clang++ -fsanitize=fuzzer,address "$tmp/t.cpp" -o "$tmp/t" >/dev/null 2>&1
  local rc=$?
  rm -rf "$tmp"
  return $rc
}

if ! have_libfuzzer; then
  if [[ ${CI:-} == true && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "fuzz.sh: installing clang and libFuzzer from Debian (clang libclang-rt-14-dev)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev >/dev/null 2>&1; }
  fi
  if ! have_libfuzzer; then
    echo "SKIP: clang with libFuzzer is not installed (apt-get install -y clang libclang-rt-14-dev)"
    exit 2
  fi
fi

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [[ -f $BUILD/CMakeCache.txt ]] && ! grep -q '^RINGTRAIN_FUZZ:BOOL=ON' "$BUILD/CMakeCache.txt"; then rm -rf "$BUILD"; fi
echo "== fuzz: building ${TARGETS[*]} in $BUILD"
if ! CC=clang CXX=clang++ cmake -S . -B "$BUILD" "${generator[@]}" -DRINGTRAIN_NATIVE_TESTS=ON -DRINGTRAIN_FUZZ=ON -DRINGTRAIN_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
  > "$BUILD.configure.log" 2>&1; then
  tail -30 "$BUILD.configure.log"
  echo "fuzz.sh: configure failed"
  exit 1
fi
if ! cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target "${TARGETS[@]}" > "$BUILD/build.log" 2>&1; then
  grep -E 'error|Error' "$BUILD/build.log" | head -30
  echo "fuzz.sh: build failed (log: $BUILD/build.log)"
  exit 1
fi

mkdir -p "$BUILD/logs" "$BUILD/artifacts"
run_target() {
  local t=$1
  local corpus="$BUILD/corpus/$t" seeds="native/test/fuzz/seeds/$t"
  mkdir -p "$corpus"
  local bin
  bin=$(find "$BUILD" -type f -name "$t" -perm -u+x | head -1)
  # -timeout: one input may take at most 10 s; -rss_limit_mb: unbounded allocation is a failure.
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
    -dict=native/test/fuzz/wire.dict -artifact_prefix="$BUILD/artifacts/$t-" "$corpus" "$seeds" \
    > "$BUILD/logs/$t.log" 2>&1
  echo $? > "$BUILD/logs/$t.rc"
}

echo "== fuzz: ${#TARGETS[@]} target(s), ${SECONDS_EACH}s each, $JOBS at a time"
running=0
for t in "${TARGETS[@]}"; do
  run_target "$t" &
  running=$((running + 1))
  if ((running >= JOBS)); then
    wait -n
    running=$((running - 1))
  fi
done
wait

passed=0
failed=0
printf '%-22s %8s %12s %10s %8s  %s\n' target seconds execs exec/s corpus result
for t in "${TARGETS[@]}"; do
  log="$BUILD/logs/$t.log"
  rc=$(cat "$BUILD/logs/$t.rc" 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "$BUILD/corpus/$t" -type f | wc -l)
  if [[ $rc == 0 ]] && grep -q '^Done [0-9]* runs' "$log"; then
    result=ok
    passed=$((passed + 1))
  else
    result="CRASH (exit $rc)"
    failed=$((failed + 1))
  fi
  printf '%-22s %8s %12s %10s %8s  %s\n' "$t" "$SECONDS_EACH" "${execs:-?}" "${rate:-?}" "$corpus" "$result"
  if [[ $result != ok ]]; then
    echo "---- $t: last lines of $log"
    grep -E 'ERROR|invariant|SUMMARY|Test unit written|artifact' "$log" | head -10
    tail -25 "$log"
  fi
done
echo "fuzz: $passed passed, $failed failed"
((failed == 0))
