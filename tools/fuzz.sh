#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of tests/fuzz/ (clang, ASan + UBSan,
# the csrc sources compiled in directly; objects cached under build/fuzz).
#
#   tools/fuzz.sh TARGET [SECONDS] [libFuzzer flags...]   build, then fuzz for SECONDS (default 60)
#   tools/fuzz.sh all [SECONDS]                           every target in turn, SECONDS each
#   tools/fuzz.sh build [TARGET...]                       build only
#   tools/fuzz.sh replay [TARGET...]                      run the committed corpora once (no fuzzing)
#   tools/fuzz.sh list                                    the target names
#
# TARGET is a name (json, gguf, tokenizer, toolcall, chat, grammar) or fuzz_NAME.
# The committed seeds are tests/fuzz/corpus/NAME/; what libFuzzer finds goes
# to build/fuzz/corpus/NAME/ and crashes to build/fuzz/artifacts/NAME/.
# The tokenizer and grammar targets read ../shared/vocab (or $CACTUS_VOCAB_DIR).
# Environment: CC (clang), FUZZ_TIMEOUT (s per input, 10), FUZZ_RSS_MB (2048).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source tools/isa_flags.sh
CC="${CC:-clang}"
OUT="$ROOT/build/fuzz"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-std=c11 -g -O1 -Wall -Wextra $SAN"
INC="-I$ROOT/csrc/include -I$ROOT/csrc -I$ROOT/tests/fuzz"

all_targets() { for f in tests/fuzz/fuzz_*.c; do basename "$f" .c | sed 's/^fuzz_//'; done; }

norm() { local t="${1#fuzz_}"; t="${t%.c}"; [[ -f "tests/fuzz/fuzz_$t.c" ]] || { echo "fuzz.sh: no target '$1' (have: $(all_targets | tr '\n' ' '))" >&2; exit 2; }; echo "$t"; }

max_len() {
  case "$1" in
    gguf) echo 16384 ;;
    json|chat|toolcall) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

# Library objects: recompiled when the source, any header or the flags change.
build_objects() {
  command -v "$CC" >/dev/null || { echo "fuzz.sh: $CC not found (apt-get install clang)" >&2; exit 2; }
  mkdir -p "$OUT/obj"
  local hdr key src obj extra
  hdr="$(cat csrc/*.h csrc/*/*.h csrc/include/*.h | sha256sum | cut -c1-16)"
  local todo=()
  for src in csrc/*.c csrc/arch/*.c csrc/kernels/*.c csrc/tokenizer/*.c; do
    obj="$OUT/obj/$(echo "$src" | tr '/' '_').o"
    extra="$(kernel_flags "$src" "$CC")"
    key="$( (cat "$src"; echo "$hdr $CC $CFLAGS $extra") | sha256sum | cut -c1-16)"
    if [[ ! -f "$obj" || "$(cat "$obj.key" 2>/dev/null)" != "$key" ]]; then
      todo+=("$src|$obj|$extra|$key")
    fi
  done
  if ((${#todo[@]})); then
    echo "fuzz.sh: compiling ${#todo[@]} library sources" >&2
    printf '%s\n' "${todo[@]}" | xargs -P "${FUZZ_BUILD_JOBS:-2}" -I{} bash -c '
      IFS="|" read -r src obj extra key <<< "{}"
      '"$CC $CFLAGS -fsanitize=fuzzer-no-link -D_GNU_SOURCE $INC"' $extra -c "$src" -o "$obj" && echo "$key" > "$obj.key"'
  fi
}

build_target() {
  local t="$1"
  build_objects
  mkdir -p "$OUT/bin"
  local bin="$OUT/bin/fuzz_$t"
  if [[ ! -x "$bin" || -n "$(find tests/fuzz/fuzz_"$t".c tests/fuzz/fuzz_common.h "$OUT"/obj/*.o -newer "$bin" 2>/dev/null | head -1)" ]]; then
    $CC $CFLAGS -fsanitize=fuzzer $INC "tests/fuzz/fuzz_$t.c" "$OUT"/obj/*.o -lm -lpthread -o "$bin"
  fi
  echo "$bin"
}

run_target() {
  local t="$1" secs="$2"
  shift 2
  local bin
  bin="$(build_target "$t")"
  mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t" "tests/fuzz/corpus/$t"
  local dict=()
  [[ -f "tests/fuzz/$t.dict" ]] && dict=(-dict="tests/fuzz/$t.dict")
  local log="$OUT/fuzz_$t.log"
  echo "fuzz.sh: fuzzing $t for ${secs}s (log $log)" >&2
  local rc=0
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$bin" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
      -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t/" "${dict[@]}" "$@" \
      "$OUT/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  local execs
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  if ((rc)); then
    tail -n 60 "$log" >&2
    echo "fuzz.sh: $t FAILED (exit $rc) after $execs executions; inputs in $OUT/artifacts/$t/" >&2
  else
    echo "fuzz.sh: $t ok: $execs executions in ${secs}s, no crash"
  fi
  return "$rc"
}

replay_target() {
  local t="$1" bin
  bin="$(build_target "$t")"
  mkdir -p "$OUT/artifacts/$t"
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$bin" -runs=0 -artifact_prefix="$OUT/artifacts/$t/" "tests/fuzz/corpus/$t" 2>&1 | tail -n 3
}

cmd="${1:-}"
[[ -n "$cmd" ]] || { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
shift
case "$cmd" in
  list) all_targets ;;
  build)
    targets=("$@"); ((${#targets[@]})) || mapfile -t targets < <(all_targets)
    for t in "${targets[@]}"; do build_target "$(norm "$t")"; done ;;
  replay)
    targets=("$@"); ((${#targets[@]})) || mapfile -t targets < <(all_targets)
    for t in "${targets[@]}"; do replay_target "$(norm "$t")"; done ;;
  all)
    secs="${1:-60}"; failed=0
    for t in $(all_targets); do run_target "$t" "$secs" || failed=1; done
    exit "$failed" ;;
  *)
    t="$(norm "$cmd")"; secs="${1:-60}"; (($#)) && shift
    run_target "$t" "$secs" "$@" ;;
esac
