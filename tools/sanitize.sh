#!/usr/bin/env bash
# Runs the tests against a sanitized libcactus.
#
#   tools/sanitize.sh [all]            c, py, then fuzz
#   tools/sanitize.sh c                ASan + UBSan build (CMake, -DCACTUS_SANITIZE=ON) of the library and the
#                                      C tests; ctest with leak checking, any UB report fatal
#   tools/sanitize.sh py [PYTEST...]   the Python suite (or the given pytest arguments) against the sanitized
#                                      library: the ASan runtime LD_PRELOADed, leaks not checked (CPython
#                                      keeps memory at exit); tests/test_c.py is left out (see `c`)
#   tools/sanitize.sh tsan             ThreadSanitizer build of csrc + tests/c/test_threads.c, run on an f32
#                                      and a q8_0 model
#   tools/sanitize.sh replay           the fuzz corpora (tests/fuzz/corpus) replayed through ASan + UBSan builds
#                                      of the fuzz targets (no clang needed)
#   tools/sanitize.sh fuzz             where clang links -fsanitize=fuzzer: the corpora replayed through the
#                                      libFuzzer builds, then every target fuzzed FUZZ_SECONDS (20) on its
#                                      corpus (tools/fuzz.sh all); elsewhere `replay`, and a line saying so
#
# Builds go to build/sanitize (asan) and build/tsan; the test model is converted there from
# tests/fixtures/llama. Environment: CC for the tsan and replay builds (default cc), JOBS (2),
# FUZZ_SECONDS (20; 6 targets, so 2 minutes of fuzzing, plus about 20 s to build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source tools/isa_flags.sh
JOBS="${JOBS:-2}"
ASAN_BUILD="$ROOT/build/sanitize"
TSAN_BUILD="$ROOT/build/tsan"
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
UBSAN_FATAL="print_stacktrace=1:halt_on_error=1"

# A tiny model converted by our own converter: test_model DIR [FAMILY DTYPE] (default llama f32, what
# tests/test_c.py gives ctest).
test_model() {
  local fam="${2:-llama}" dtype="${3:-f32}"
  local out="$1/$fam-$dtype.gguf"
  if [[ ! -f "$out" ]]; then
    mkdir -p "$1"
    python -c "import sys; from pathlib import Path; from cactus.convert import convert; \
convert(Path('tests/fixtures') / sys.argv[2], Path(sys.argv[1]), dtype=sys.argv[3], progress=False)" \
      "$out" "$fam" "$dtype" >&2
  fi
  echo "$out"
}

build_asan() {
  cmake -S . -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCACTUS_SANITIZE=ON -DCACTUS_BUILD_TESTS=ON \
    -DCACTUS_WERROR=ON >/dev/null
  cmake --build "$ASAN_BUILD" -j"$JOBS" >/dev/null
}

run_c() {
  build_asan
  local model
  model="$(test_model "$ASAN_BUILD/models")"
  echo "sanitize.sh: C tests under ASan + UBSan (leaks checked)"
  CACTUS_TEST_MODEL="$model" ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1" \
    UBSAN_OPTIONS="$UBSAN_FATAL" ctest --test-dir "$ASAN_BUILD" --output-on-failure -j"$JOBS"
}

run_py() {
  build_asan
  local asan_rt
  asan_rt="$(gcc -print-file-name=libasan.so)"
  [[ -f "$asan_rt" ]] || { echo "sanitize.sh: no ASan runtime at '$asan_rt'" >&2; exit 2; }
  local args=("$@")
  ((${#args[@]})) || args=(-q tests --ignore=tests/test_c.py)
  echo "sanitize.sh: pytest ${args[*]} against $ASAN_BUILD/libcactus.so (ASan runtime preloaded)"
  CACTUS_LIBRARY="$ASAN_BUILD/libcactus.so" LD_PRELOAD="$asan_rt" \
    ASAN_OPTIONS="detect_leaks=0:handle_segv=1:allow_user_segv_handler=1" UBSAN_OPTIONS="$UBSAN_FATAL" \
    python -m pytest "${args[@]}"
}

# Every csrc source compiled into objects with the given flags (x86/ARM kernel files get their ISA flags).
compile_csrc() {
  local dir="$1" cc="$2"
  shift 2
  mkdir -p "$dir"
  local src extra
  for src in csrc/*.c csrc/arch/*.c csrc/kernels/*.c csrc/tokenizer/*.c; do
    extra="$(kernel_flags "$src" "$cc")"
    echo "$cc $* -D_GNU_SOURCE -Icsrc/include -Icsrc $extra -c $src -o $dir/$(echo "$src" | tr '/' '_').o"
  done | xargs -P "$JOBS" -I{} sh -c '{}'
}

run_tsan() {
  local cc="${CC:-cc}" flags="-std=c11 -g -O1 -fsanitize=thread -fno-omit-frame-pointer -Wall -Wextra"
  compile_csrc "$TSAN_BUILD/obj" "$cc" $flags
  $cc $flags -Icsrc/include -Icsrc -Itests/c tests/c/test_threads.c "$TSAN_BUILD"/obj/*.o -lm -lpthread \
    -o "$TSAN_BUILD/test_threads"
  local model spec
  for spec in "llama f32" "qwen3 q8_0"; do
    model="$(test_model "$TSAN_BUILD/models" $spec)"
    echo "sanitize.sh: tests/c/test_threads.c under ThreadSanitizer ($cc), $(basename "$model")"
    CACTUS_TEST_MODEL="$model" TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" "$TSAN_BUILD/test_threads"
  done
}

run_replay() {
  local cc="${CC:-cc}" dir="$ROOT/build/replay"
  local flags="-std=c11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -Wall -Wextra"
  compile_csrc "$dir/obj" "$cc" $flags
  local f t failed=0
  for f in tests/fuzz/fuzz_*.c; do
    t="$(basename "$f" .c)"
    $cc $flags -Icsrc/include -Icsrc -Itests/fuzz "$f" tests/fuzz/replay.c "$dir"/obj/*.o -lm -lpthread -o "$dir/$t"
    echo -n "sanitize.sh: $t: "
    ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="$UBSAN_FATAL" "$dir/$t" "tests/fuzz/corpus/${t#fuzz_}" || failed=1
  done
  return "$failed"
}

# Whether clang can build and link a libFuzzer target here (Debian splits the fuzzer runtime out of
# some clang packages, so clang on PATH is not enough).
fuzzer_available() {
  command -v clang >/dev/null 2>&1 || return 1
  local dir ok=1
  dir="$(mktemp -d)"
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
    >"$dir/probe.c"
  if clang -fsanitize=fuzzer,address,undefined "$dir/probe.c" -o "$dir/probe" >/dev/null 2>&1; then ok=0; fi
  rm -rf "$dir"
  return "$ok"
}

run_fuzz() {
  local secs="${FUZZ_SECONDS:-20}"
  if fuzzer_available; then
    echo "sanitize.sh: fuzz corpora replayed, then each target fuzzed for ${secs}s (clang + libFuzzer)"
    CC=clang FUZZ_BUILD_JOBS="$JOBS" tools/fuzz.sh replay
    CC=clang FUZZ_BUILD_JOBS="$JOBS" tools/fuzz.sh all "$secs"
  else
    run_replay
    echo "sanitize.sh: clang with libFuzzer is not available: only the fuzz corpora replay ran, no fuzzing"
  fi
}

case "${1:-all}" in
  c) run_c ;;
  py) shift; run_py "$@" ;;
  tsan) run_tsan ;;
  replay) run_replay ;;
  fuzz) run_fuzz ;;
  all) run_c; run_py; run_fuzz ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
