#!/usr/bin/env bash
# Builds weightfill's _core with sanitizers and runs the engine's tests under them; exits
# non-zero on any sanitizer report (or test failure). See docs/hardening.md.
#
#   tools/sanitize.sh [asan|tsan] [extra pytest args]
#
#   asan  (default) -fsanitize=address,undefined: heap/stack overflows, use after free,
#         undefined behaviour (shifts, overflow, misaligned or null access, bad casts).
#   tsan  -fsanitize=thread on the std::thread pool backend (WEIGHTFILL_THREADING=pool);
#         the OpenMP build is not checked, since libgomp is not built with TSan.
#
# The sanitized module goes to build/<kind>/ and a copy of python/ next to it, never into
# python/weightfill/. CPython is not instrumented, so the sanitizer runtime (GCC's) is
# preloaded; the interpreter's own allocations are not checked, only the extension's.
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-asan}"
shift || true
case "$kind" in
  asan) sanitize="address,undefined"; runtime="libasan.so" ;;
  tsan) sanitize="thread"; runtime="libtsan.so" ;;
  *) echo "usage: $0 [asan|tsan] [pytest args]" >&2; exit 2 ;;
esac

python="${PYTHON:-python}"
build="build/$kind"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSKBUILD_PROJECT_NAME=weightfill -DSKBUILD_PROJECT_VERSION=0.1.0 \
  -Dpybind11_DIR="$("$python" -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v "$python")" \
  -DWEIGHTFILL_SANITIZE="$sanitize" -DCMAKE_CXX_FLAGS="-fno-sanitize-recover=all" >/dev/null
ninja -C "$build" >/dev/null

# A private copy of the package holding the sanitized module.
rm -rf "$build/python"
mkdir -p "$build/python"
cp -r python/weightfill "$build/python/"
rm -f "$build/python/weightfill"/_core*.so
cp "$build"/_core*.so "$build/python/weightfill/"

log="$build/reports"
rm -rf "$log"
mkdir -p "$log"
cxx="${CXX:-g++}"
preload="$("$cxx" -print-file-name="$runtime")"
[[ -f "$preload" ]] || { echo "sanitize.sh: $runtime not found ($preload)" >&2; exit 2; }
# libstdc++ too: CPython does not link it, and ASan's __cxa_throw interceptor must find it at
# start-up (else "CHECK failed: ... real___cxa_throw" at the first C++ exception).
preload="$preload $("$cxx" -print-file-name=libstdc++.so)"

tests=(tests/test_philox.py tests/test_golden.py tests/test_reference.py tests/test_errors.py
       tests/test_sparse.py tests/test_half.py tests/test_invariance.py tests/test_fuzz.py
       tests/test_fast_paths.py
       tests/test_schemes.py::test_compiled_steps_write_the_numpy_expressions_bits
       tests/test_schemes.py::test_haar_steps_refuse_bad_arrays)
if [[ "$kind" == asan ]]; then
  tests+=(tests/test_process.py)  # its child processes inherit the preload and options
else
  # Not under TSan: the adapters' frameworks run their own uninstrumented thread pools (XLA's
  # reports races inside jaxlib, torch's is libgomp), and test_process picks OpenMP itself.
  tests+=(--deselect tests/test_fuzz.py::test_torch_init
          --deselect tests/test_fuzz.py::test_jax_initializer_keys
          --deselect tests/test_fuzz.py::test_jax_make_array_shardings
          --deselect tests/test_fuzz.py::test_dask_array_arguments
          --deselect tests/test_fuzz.py::test_found_trunc_normal_argument_types)
fi
# A report goes to $log/report.<pid> (ASan, TSan) or to stderr (UBSan inside an ASan build
# ignores log_path), and the process exits with status 66 at the first one.
common="log_path=$PWD/$log/report:exitcode=66"
# (ASan's "WARNING: AddressSanitizer failed to allocate" is no report: the tests ask for more
# memory than exists on purpose, and get a MemoryError.)
reported() {  # whether an error was reported, in a report file or in the captured output $1
  grep -qsE "runtime error:|ERROR: AddressSanitizer|WARNING: ThreadSanitizer|SUMMARY: \w+Sanitizer" \
    "$1" "$log"/report*
}
if [[ "$kind" == asan ]]; then
  # detect_leaks=0: CPython frees little at exit by design, so LeakSanitizer would report the
  # interpreter, not us. allocator_may_return_null=1: an allocation larger than the machine
  # must fail as in production (std::bad_alloc -> MemoryError), which the tests check,
  # instead of ASan aborting on it.
  export ASAN_OPTIONS="$common:detect_leaks=0:allocator_may_return_null=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
  export UBSAN_OPTIONS="$common:halt_on_error=1:print_stacktrace=1"
else
  export TSAN_OPTIONS="$common:halt_on_error=1:second_deadlock_stack=1:allocator_may_return_null=1"
  export WEIGHTFILL_THREADING=pool
fi

# Self-check: probes with deliberate bugs must be reported through this very setup (runtime
# preloaded into CPython, options, report detection), or a clean run would prove nothing.
probe="$build/probe"
cat > "$probe.cpp" <<'CPP'
#include <thread>
extern "C" int heap_overflow(int n) { int* a = new int[4]; int v = a[n + 3]; delete[] a; return v; }
extern "C" int bad_shift(int n) { return 1 << (n + 31); }
extern "C" int data_race(int n) { int x = 0; std::thread t([&] { x = n; }); x = 1; t.join(); return x; }
CPP
"$cxx" -shared -fPIC -O1 -g -fsanitize="$sanitize" -fno-sanitize-recover=all -pthread \
  "$probe.cpp" -o "$probe.so"
if [[ "$kind" == asan ]]; then bugs=(heap_overflow bad_shift); else bugs=(data_race); fi
for bug in "${bugs[@]}"; do
  if LD_PRELOAD="$preload" "$python" -c "import ctypes, sys; ctypes.CDLL(sys.argv[1]).$bug(1)" \
      "$PWD/$probe.so" >"$log/probe.txt" 2>&1 || ! reported "$log/probe.txt"; then
    echo "sanitize.sh: the self-check's $bug went unreported: the $kind setup is broken" >&2
    cat "$log/probe.txt" >&2
    exit 2
  fi
  rm -f "$log"/report* "$log/probe.txt"
done

status=0
LD_PRELOAD="$preload" PYTHONPATH="$PWD/$build/python" "$python" -m pytest -q -p no:cacheprovider \
  "${tests[@]}" "$@" 2>&1 | tee "$log/pytest.txt" || status=$?
if reported "$log/pytest.txt"; then
  echo "sanitize.sh: $kind reported errors (see $log):" >&2
  cat "$log"/report* >&2 2>/dev/null || true
  exit 1
fi
[[ $status -eq 0 ]] || { echo "sanitize.sh: tests failed under $kind (exit $status)" >&2; exit "$status"; }
echo "sanitize.sh: $kind clean"
