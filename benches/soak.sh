#!/usr/bin/env bash
# The soak with faults: apidns (release build) on loopback for SOAK_MINUTES (default 30) under
# dnsperf at half its measured capacity, while pool members die and return every few seconds,
# the configuration reloads every 10 s, nsupdate adds and removes a member every 5 s, and apidns
# is SIGKILLed and restarted on the same state_dir every 5 minutes. Every sampled answer is
# checked against the membership and health that held when it was sent; see benches/soak.py
# for the checks and docs/benchmarks.md for how to read the summary.
#
#   benches/soak.sh                    # 30 minutes
#   SOAK_MINUTES=3 benches/soak.sh     # a short run (a kill every minute)
#   SOAK_KEEP=1 benches/soak.sh        # keep the work directory (events, samples, logs)
#
# Loopback only (127.0.0.1 for DNS and HTTP, 127.0.0.121-125 for the members; ports from
# SOAK_DNS_PORT, SOAK_HTTP_PORT, SOAK_MEMBER_PORT). Needs dnsperf (`apt-get install -y dnsperf`),
# nsupdate (bind9-dnsutils) and python3. Exits 1 when an answer was wrong or an update lost.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
for tool in dnsperf nsupdate python3; do
    command -v "$tool" >/dev/null || {
        echo "$tool is missing: apt-get install -y dnsperf bind9-dnsutils python3" >&2
        exit 2
    }
done

(cd "$root" && cargo build --release --bin apidns -q)
binary=${CARGO_TARGET_DIR:-$root/target}/release/apidns
work=$(mktemp -d /tmp/apidns-soak-XXXX)
if [ -z "${SOAK_KEEP:-}" ]; then
    trap 'rm -rf "$work"' EXIT
fi
echo "soak: $("$binary" --version), commit $(git -C "$root" rev-parse --short HEAD), work in $work"
status=0
python3 "$here/soak.py" "$work" "$binary" || status=$?
[ -n "${SOAK_KEEP:-}" ] && echo "kept: $work (summary.json, events.jsonl, samples.jsonl, resources.jsonl, apidns-*.log)"
exit "$status"
