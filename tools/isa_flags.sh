# Sourced by tools/sanitize.sh and tools/fuzz.sh (ROOT set): the extra compiler flags of one csrc file.
#
#   kernel_flags SRC CC   the ISA flags csrc/kernels/isa_flags.txt gives SRC on this machine; for
#                         dispatch.c under a compiler without __builtin_cpu_supports("f16c") (clang < 16),
#                         the include that supplies it (tests/fuzz/cpu_compat.h)
kernel_flags() {
  local src="$1" cc="$2"
  if [[ "$(uname -m):$src" == x86_64:csrc/kernels/dispatch.c ]]; then
    echo 'int f(void){return __builtin_cpu_supports("f16c");}' | "$cc" -x c -c -o /dev/null - 2>/dev/null ||
      echo "-include $ROOT/tests/fuzz/cpu_compat.h"
    return
  fi
  awk -v m="$(uname -m)" -v s="$src" '$1 == m && $2 == s { $1 = ""; $2 = ""; sub(/^ +/, ""); print }' \
    "$ROOT/csrc/kernels/isa_flags.txt"
}
