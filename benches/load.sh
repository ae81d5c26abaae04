#!/usr/bin/env bash
# Load benchmark: apidns against its peers, one at a time, on loopback, same zone, same query mix.
#
#   benches/load.sh [SECONDS] [SERVERS...]     # default: 10 s each; apidns gdnsd knot nsd pdns
#
# Each server serves k8s.test. with api -> 127.0.0.11-13 (health-checked on a backend port where
# the server can: apidns, gdnsd, PowerDNS), runs pinned to core 1, and dnsperf loads it from
# core 0 (taskset). Two runs per server:
#   - saturation: dnsperf -c 4 -q 500 for SECONDS: queries/s, lost queries, and the server's CPU
#     time per million answered queries (utime+stime from /proc, children included);
#   - latency: the same mix at a fixed 20k queries/s with per-query timings: mean and p99.
# Prints a table, then apidns's ratios to each peer measured in this same run.
# Needs dnsperf and the peers: `benches/peers.sh install` (as root, Debian).
#
# DNS cookies (RFC 7873): the pseudo-servers apidns-edns, apidns-cookie and apidns-server-cookie
# run the same apidns with every query carrying an OPT record (dnsperf -e), plus a client cookie
# (-E 10:<8 bytes>), plus a client cookie and the valid server cookie apidns gave it (fetched
# with dig +cookie first, valid for an hour):
#
#   benches/load.sh 10 apidns apidns-edns apidns-cookie apidns-server-cookie
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
seconds=${1:-10}
shift || true
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(apidns gdnsd knot nsd pdns)
peers=$here/peers.sh
port=25353
bport=26443
work=$(mktemp -d /tmp/apidns-load-XXXX)
backend_pids=()
cleanup() {
  for pid in "${backend_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/apidns.pid" ] && kill "$(cat "$work/apidns.pid")" 2>/dev/null || true
  for d in "$work"/peer-*; do [ -d "$d" ] && bash "$peers" stop "$d"; done
  rm -rf "$work"
}
trap cleanup EXIT
command -v dnsperf >/dev/null || { echo "dnsperf is missing: run benches/peers.sh install (as root)" >&2; exit 1; }

(cd "$root" && cargo build --release -q)
apidns_bin=${CARGO_TARGET_DIR:-$root/target}/release/apidns

# Three stand-in API servers for the health checks.
for i in 11 12 13; do
  python3 -c "
import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.$i', $bport)); s.listen(128)
while True:
    c,_=s.accept(); c.close()" >/dev/null 2>&1 &
  backend_pids+=($!)
done

# The query mix: 80% api A, 10% api AAAA (NODATA: the pool has no IPv6 member), 10% NXDOMAIN.
python3 - "$work/queries" <<'PY'
import random, sys
random.seed(1)
with open(sys.argv[1], "w") as out:
    for i in range(10000):
        r = random.random()
        out.write("api.k8s.test A\n" if r < 0.8 else "api.k8s.test AAAA\n" if r < 0.9 else f"nope{i}.k8s.test A\n")
PY

mkdir -p "$work/apidns/zones"
cat >"$work/apidns/apidns.toml" <<EOF_CONF
[server]
listen = ["127.0.0.1:$port"]
EOF_CONF
cat >"$work/apidns/zones/k8s.test.toml" <<EOF_ZONE
origin = "k8s.test."
ttl = 300
records = [
  { name = "@", type = "NS", value = "ns1" },
  { name = "ns1", type = "A", value = "127.0.0.53" },
]
[soa]
mname = "ns1"
rname = "hostmaster"
serial = 1
refresh = 7200
retry = 1800
expire = 259200
minimum = 5
[pool.api]
ttl = 5
port = $bport
members = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
EOF_ZONE

client_cookie=2464c4abcf10c957
# dnsperf's extra arguments for a server name: the cookie variants of apidns.
query_options() {
  case $1 in
    apidns-edns) echo "-e" ;;
    apidns-cookie) echo "-e -E 10:$client_cookie" ;;
    apidns-server-cookie)
      local cookie
      cookie=$(dig +time=1 +tries=1 @127.0.0.1 -p $port "+cookie=$client_cookie" api.k8s.test A |
        awk '/^; COOKIE:/ {print $3}')
      [ ${#cookie} -eq 48 ] || { echo "no server cookie from apidns" >&2; exit 1; }
      echo "-e -E 10:$cookie" ;;
  esac
}
is_apidns() { case $1 in apidns | apidns-*) return 0 ;; *) return 1 ;; esac; }

start_server() {
  local name=$1
  if is_apidns "$name"; then
    taskset -c 1 "$apidns_bin" serve --config "$work/apidns/apidns.toml" --log-level warn >"$work/apidns.log" 2>&1 &
    echo $! >"$work/apidns.pid"
    for _ in $(seq 50); do dig +short +time=1 +tries=1 @127.0.0.1 -p $port k8s.test SOA >/dev/null 2>&1 && break; sleep 0.1; done
    cat "$work/apidns.pid"
  else
    taskset -c 1 bash "$peers" start "$name" $port $bport "$work/peer-$name"
  fi
}
stop_server() {
  local name=$1
  if is_apidns "$name"; then kill "$(cat "$work/apidns.pid")"; rm -f "$work/apidns.pid"; else bash "$peers" stop "$work/peer-$name"; fi
  sleep 0.5
}
descendants() { # a process and all its descendants (NSD forks its server processes)
  local p
  echo "$1"
  for p in $(pgrep -P "$1" || true); do descendants "$p"; done
}
cpu_ticks() { # utime+stime of a process tree
  local total=0 p
  for p in $(descendants "$1"); do
    # utime and stime are fields 14 and 15; cut after the ")" of the command name, which may
    # hold spaces (NSD renames its processes "nsd: main", "nsd: xfrd").
    [ -r /proc/$p/stat ] && total=$((total + $(sed 's/.*) //' /proc/$p/stat | awk '{print $12+$13}')))
  done
  echo $total
}

printf '%-8s %10s %9s %11s %10s %10s %12s\n' server "queries/s" "lost" "CPU s/Mq" "mean ms" "p99 ms" "(completed)"
declare -A qps cpu
for name in "${servers[@]}"; do
  pid=$(start_server "$name" | tail -n 1)
  sleep 1
  # shellcheck disable=SC2207 # words on purpose: dnsperf's options
  options=($(query_options "$name"))
  c0=$(cpu_ticks "$pid")
  out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p $port -d "$work/queries" -l "$seconds" -c 4 -q 500 "${options[@]}" 2>&1)
  c1=$(cpu_ticks "$pid")
  q=$(awk '/Queries per second/ {print $4}' <<<"$out")
  done_=$(awk '/Queries completed/ {print $3}' <<<"$out")
  lost=$(awk '/Queries lost/ {print $3}' <<<"$out")
  per=$(python3 -c "print(f'{($c1-$c0)/100/($done_/1e6):.2f}')")
  lat=$(taskset -c 0 dnsperf -s 127.0.0.1 -p $port -d "$work/queries" -l 3 -Q 20000 -v "${options[@]}" 2>/dev/null |
    awk '/^> / {print $NF}' | sort -n | awk '{a[NR]=$1; s+=$1} END {if (NR) printf "%.3f %.3f", s/NR*1000, a[int(NR*0.99)]*1000; else print "- -"}')
  printf '%-8s %10.0f %9s %11s %10s %10s %12s\n' "$name" "$q" "$lost" "$per" ${lat} "$done_"
  qps[$name]=$q; cpu[$name]=$per
  stop_server "$name"
done
if [ -n "${qps[apidns]:-}" ]; then
  echo
  for name in "${servers[@]}"; do
    [ "$name" = apidns ] && continue
    python3 -c "
q, c = ${qps[apidns]} / ${qps[$name]}, (${cpu[apidns]} / ${cpu[$name]}) if ${cpu[$name]} else float('nan')
print(f'apidns / $name: queries/s x{q:.2f}, CPU per query x{c:.2f}')"
  done
fi
