#!/usr/bin/env bash
# Probing at scale: CPU, memory and schedule lateness of apidns probing N members every second.
#
#   benches/probe_scale.sh [SECONDS]        # default 20 s per size; sizes 100, 1000, 10000
#
# Members are closed ports on 127.2.0.0/16 (each probe is a refused connect: the cheapest real
# probe, and the one a dead cluster costs), in pools of up to 1000 members. For each size it
# prints the CPU share of one core, resident memory, and the p50/p99 lateness of probe starts
# against their schedule (from apidns_probe_lateness_seconds). Then the idle RSS of apidns on
# the example configuration.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
seconds=${1:-20}
work=$(mktemp -d /tmp/apidns-scale-XXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
(cd "$root" && cargo build --release -q)
bin=$root/target/release/apidns
http_port=29153

lateness() { # p50 and p99 in ms from the histogram buckets
  curl -s "http://127.0.0.1:$http_port/metrics" | python3 -c '
import sys
buckets=[]; count=0
for line in sys.stdin:
    if line.startswith("apidns_probe_lateness_seconds_bucket"):
        le=line.split("le=\"")[1].split("\"")[0]; n=float(line.split()[-1])
        buckets.append((float("inf") if le=="+Inf" else float(le), n))
    elif line.startswith("apidns_probe_lateness_seconds_count"):
        count=float(line.split()[-1])
def q(p):
    for le,n in buckets:
        if n >= p*count: return "<=%.1f" % (le*1000) if le!=float("inf") else ">1600"
    return "-"
print(q(0.5), q(0.99), int(count))'
}

printf '%8s %10s %10s %12s %12s %10s\n' members "CPU %core" "RSS MiB" "late p50 ms" "late p99 ms" probes
for members in 100 1000 10000; do
  mkdir -p "$work/$members/zones"
  printf '[server]\nlisten = ["127.0.0.1:0"]\nhttp = "127.0.0.1:%s"\n[probe]\ninterval = "1s"\ntimeout = "500ms"\n' $http_port >"$work/$members/apidns.toml"
  python3 - "$members" >"$work/$members/zones/scale.toml" <<'PY'
import sys
n = int(sys.argv[1])
print('origin = "scale.test."\nrecords = [{ name = "@", type = "NS", value = "ns1" }, { name = "ns1", type = "A", value = "127.0.0.53" }]')
print('[soa]\nmname = "ns1"\nrname = "hostmaster"\nminimum = 5')
per_pool = min(n, 1000)
for p in range(n // per_pool):
    members = []
    for i in range(per_pool):
        k = p * per_pool + i
        members.append(f'"127.2.{k // 250}.{k % 250 + 1}:9"')
    print(f'[pool.p{p}]\nmax_answers = 8\nmembers = [{", ".join(members)}]')
PY
  "$bin" serve --config "$work/$members/apidns.toml" --log-level warn >"$work/$members/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null && break; sleep 0.1; done
  sleep 3
  t0=$(awk '{print $14+$15}' /proc/$pid/stat); s0=$(date +%s.%N)
  sleep "$seconds"
  t1=$(awk '{print $14+$15}' /proc/$pid/stat); s1=$(date +%s.%N)
  rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$pid/status)
  cpu=$(python3 -c "print(f'{($t1-$t0)/100/($s1-$s0)*100:.1f}')")
  read -r p50 p99 count < <(lateness)
  printf '%8s %10s %10s %12s %12s %10s\n' "$members" "$cpu" "$rss" "$p50" "$p99" "$count"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done

"$bin" serve --config "$root/apidns.toml" --log-level warn >"$work/idle.log" 2>&1 &
pid=$!
sleep 5
echo "idle RSS on the example configuration: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$pid/status)"
