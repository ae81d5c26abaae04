#!/usr/bin/env bash
# CI's fuzzing: builds every target once, then fuzzes each for a bounded time starting from the
# committed seeds, and fails when any target crashes, hangs or runs out of memory. A failing
# input is printed (hex and base64) with the command that reproduces it, so that it can become
# a regression test in tests/it/.
#
#   fuzz/ci.sh                      # every target, FUZZ_CI_SECONDS (default 40) each
#   FUZZ_CI_SECONDS=120 fuzz/ci.sh update journal
#   FUZZ_CI_ARTIFACTS=/tmp/crashes fuzz/ci.sh   # keep the failing inputs there (CI uploads them)
#   FUZZ_CI_JOBS=1 fuzz/ci.sh       # one target at a time (default: one per core)
#
# Needs only the Rust toolchain: cargo-fuzz is installed when missing. It runs on the stable
# toolchain with RUSTC_BOOTSTRAP=1, as fuzz/run.sh does (cargo-fuzz passes nightly-only flags).
# The corpus grows in a throwaway directory: the committed seeds are read, never written.
set -euo pipefail
cd "$(dirname "$0")"

export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_CI_SECONDS:-40}"
# shellcheck source=fuzz/targets.sh
source targets.sh
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all_targets[@]}")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# The same flags as fuzz/run.sh, so that its reproduce command reuses this build. No sanitizer:
# apidns's own unsafe code is two libc calls on sockets (src/server/batch.rs, recvmmsg/sendmmsg,
# and src/health/keepalive.rs, TCP_INFO) that no target reaches, so what these targets can find is
# a panic, an overflow (--debug-assertions), a hang or runaway memory, which libFuzzer catches
# without one. AddressSanitizer would instrument the dependencies' unsafe code only, at the cost
# of a longer build and fewer executions per second (FUZZ_SANITIZER=address fuzz/run.sh for that).
build_flags=(--sanitizer none --debug-assertions)
started=$SECONDS
echo "== building ${targets[*]}"
if [ $# -eq 0 ]; then
    cargo fuzz build "${build_flags[@]}"
else
    for target in "${targets[@]}"; do
        cargo fuzz build "${build_flags[@]}" "$target"
    done
fi
host="$(rustc -vV | sed -n 's/^host: //p')"
binaries="target/$host/release"
echo "== built in $((SECONDS - started)) s"

work="$(mktemp -d "${TMPDIR:-/tmp}/apidns-fuzz-ci.XXXXXX")"
# A fuzzer still running when this script stops (interrupted) is stopped with it.
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
artifacts="${FUZZ_CI_ARTIFACTS:-$work/artifacts}"

# Prints what a failed run left behind: each input in hex and base64, and how to replay it.
report() {
    local target="$1" found=0 input
    for input in "$artifacts/$target"/*; do
        [ -f "$input" ] || continue
        found=1
        echo "---- $target: failing input $(basename "$input") ($(wc -c <"$input") bytes)"
        if command -v xxd >/dev/null; then xxd "$input"; else od -A x -t x1z -v "$input"; fi
        echo "---- base64:"
        base64 -w 0 "$input" 2>/dev/null || base64 "$input"
        echo
        echo "---- reproduce (from the repository root):"
        echo "  echo '$(base64 -w 0 "$input" 2>/dev/null || base64 "$input" | tr -d '\n')' | base64 -d > /tmp/$target-input"
        echo "  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${build_flags[*]} $target /tmp/$target-input)"
    done
    if [ "$found" -eq 0 ]; then
        echo "---- $target: the fuzzer failed without leaving an input (see its output above)"
    fi
}

# Fuzzes one target for $seconds; its output goes to $work/<target>.log, its exit status to
# $work/<target>.status (read after the run: the targets run in the background).
fuzz_one() {
    local target="$1" corpus="$work/corpus/$1" status=0
    mkdir -p "$corpus" "$artifacts/$target"
    # shellcheck disable=SC2046 # the options are words
    "$binaries/$target" "$corpus" "$(seeds_of "$target")" \
        $(options_of "$target") -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$target/" >"$work/$target.log" 2>&1 ||
        status=$?
    echo "$status" >"$work/$target.status"
}

# Shows a finished target's findings, stack and stats, and reports its failing inputs.
show() {
    local target="$1" status
    status="$(cat "$work/$target.status" 2>/dev/null || echo "no status")"
    echo "== $target: ${seconds} s from $(seeds_of "$target")"
    # The progress lines are noise in a CI log; the findings, the stack and the stats are kept.
    grep -v '^#[0-9]*[[:space:]]*\(NEW\|REDUCE\|pulse\)' "$work/$target.log" || true
    if [ "$status" != 0 ]; then
        failed+=("$target")
        report "$target"
    fi
}

# Each fuzzer is one process on one core, so FUZZ_CI_JOBS of them (default: one per core) run
# at a time: the time per target stays $seconds, the wall time is divided by the cores. Each
# target's output is shown whole when it finishes, never interleaved with another's.
jobs="${FUZZ_CI_JOBS:-$(nproc 2>/dev/null || echo 1)}"
echo "== fuzzing ${#targets[@]} targets, $jobs at a time"
declare -A running=()
failed=()
for target in "${targets[@]}"; do
    while [ ${#running[@]} -ge "$jobs" ]; do
        wait -n -p done_pid || true
        show "${running[$done_pid]}"
        unset "running[$done_pid]"
    done
    fuzz_one "$target" &
    running[$!]="$target"
done
while [ ${#running[@]} -gt 0 ]; do
    wait -n -p done_pid || true
    show "${running[$done_pid]}"
    unset "running[$done_pid]"
done

echo "== fuzzed ${#targets[@]} targets in $((SECONDS - started)) s (build included)"
if [ ${#failed[@]} -ne 0 ]; then
    echo "== FAILED: ${failed[*]}"
    exit 1
fi
echo "== no crash"
