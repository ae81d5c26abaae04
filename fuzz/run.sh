#!/usr/bin/env bash
# Runs apidns's fuzz targets one after another, each for a bounded number of executions or time.
#
#   fuzz/run.sh                         # every target, FUZZ_RUNS executions each (default 10M)
#   fuzz/run.sh respond_udp config_zone # only these
#   FUZZ_SECONDS=60 fuzz/run.sh         # a time budget per target instead of a run count
#   FUZZ_SANITIZER=address fuzz/run.sh  # with AddressSanitizer (slower; the code is safe Rust)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). It runs on the stable toolchain: cargo-fuzz
# passes nightly-only flags to rustc, which RUSTC_BOOTSTRAP=1 allows. Each target runs as one
# process at low priority (`nice -n 10`), so that it leaves a core to everyone else.
#
# The corpus grows in fuzz/corpus/<target> (git-ignored), starting from the committed seeds in
# fuzz/seeds/; crashes land in fuzz/artifacts/<target>. Reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/crash-...
# and turn it into a regression test (tests/it/<area>.rs) before fixing it. fuzz/ci.sh is the
# bounded run CI makes of every target.
set -euo pipefail
cd "$(dirname "$0")"

export RUSTC_BOOTSTRAP=1
runs="${FUZZ_RUNS:-10000000}"
seconds="${FUZZ_SECONDS:-}"
sanitizer="${FUZZ_SANITIZER:-none}"
# shellcheck source=fuzz/targets.sh
source targets.sh
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all_targets[@]}")
fi

if [ -n "$seconds" ]; then
    budget="-max_total_time=$seconds"
else
    budget="-runs=$runs"
fi

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    echo "== $target ($budget)"
    # shellcheck disable=SC2046 # the options are words
    nice -n 10 cargo fuzz run --sanitizer "$sanitizer" --debug-assertions "$target" \
        "corpus/$target" "$(seeds_of "$target")" -- \
        $(options_of "$target") "$budget" -print_final_stats=1 \
        -artifact_prefix="artifacts/$target/"
done
