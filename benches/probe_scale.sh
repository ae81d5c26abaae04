#!/usr/bin/env bash
# Probing at scale: CPU, memory and schedule lateness of apidns probing N members every second.
#
#   benches/probe_scale.sh [SECONDS] [SIZES] [KINDS]
#   # defaults: 20 s per run, sizes "100 1000 10000", kinds "closed held periodic";
#   # APIDNS_BIN=path/to/apidns measures that binary instead of building the tree's
#
# Runs as root: everything happens in a network namespace of its own (only its loopback), so
# that a listener on 0.0.0.0 answers for all of 127/8 there and no port clashes with the host.
# Members are 127.2.x.y:9, in pools of up to 1000, probed every second (timeout 500 ms), as
# three kinds:
#   closed      nothing listens: every probe is a refused connect, what a dead cluster costs;
#   held        one listener accepts and keeps connections; TCP probes hold one (the default);
#   periodic    the same listener, `hold = false`: a fresh connect and reset every interval.
# For each it prints apidns's share of one core (user + system, softirq work on its behalf
# included: on loopback that is both ends of every connection), resident memory, and the
# p50/p99 lateness of periodic probe starts against their schedule (from
# apidns_probe_lateness_seconds; "-" when no periodic probe ran). Then the idle RSS of apidns
# on the example configuration.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
seconds=${1:-20}
sizes=${2:-100 1000 10000}
[ "$(id -u)" = 0 ] || { echo "probe_scale.sh: run as root (it makes a network namespace)" >&2; exit 1; }
work=$(mktemp -d /tmp/apidns-scale-XXXX)
netns=apidns-scale-$$
pid=
listener=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$listener" ] && kill "$listener" 2>/dev/null
  ip netns del "$netns" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
bin=${APIDNS_BIN:-} # another build to compare; by default the tree's, built here
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release -q)
  bin=${CARGO_TARGET_DIR:-$root/target}/release/apidns
fi
http_port=29153
in_netns=(ip netns exec "$netns") # not a function: "$!" must be the process itself
in_netns() { "${in_netns[@]}" "$@"; }
ip netns add "$netns"
in_netns ip link set lo up
# apidns holds a connection per member, and the listener accepts them all: each needs more
# descriptors than members.
ulimit -n "$(ulimit -Hn)"

lateness() { # p50 and p99 in ms from the histogram buckets, and the number of probes
  in_netns curl -s "http://127.0.0.1:$http_port/metrics" | python3 -c '
import sys
buckets=[]; count=0
for line in sys.stdin:
    if line.startswith("apidns_probe_lateness_seconds_bucket"):
        le=line.split("le=\"")[1].split("\"")[0]; n=float(line.split()[-1])
        buckets.append((float("inf") if le=="+Inf" else float(le), n))
    elif line.startswith("apidns_probe_lateness_seconds_count"):
        count=float(line.split()[-1])
def q(p):
    if count == 0: return "-"
    for le,n in buckets:
        if n >= p*count: return "<=%.1f" % (le*1000) if le!=float("inf") else ">1600"
    return "-"
print(q(0.5), q(0.99), int(count))'
}

start_listener() { # accepts on port 9 of every loopback address; keeps connections until closed
  "${in_netns[@]}" python3 -c '
import selectors, socket
selector = selectors.DefaultSelector()
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", 9)); listener.listen(4096); listener.setblocking(False)
selector.register(listener, selectors.EVENT_READ)
while True:
    for key, _ in selector.select():
        if key.fileobj is listener:
            while True:
                try: connection, _ = listener.accept()
                except BlockingIOError: break
                connection.setblocking(False)
                selector.register(connection, selectors.EVENT_READ)
            continue
        try: data = key.fileobj.recv(512)
        except BlockingIOError: continue
        except OSError: data = b""
        if not data:
            selector.unregister(key.fileobj); key.fileobj.close()
' &
  listener=$!
  for _ in $(seq 50); do in_netns python3 -c 'import socket; socket.create_connection(("127.0.0.1", 9), 1).close()' 2>/dev/null && return; sleep 0.1; done
  echo "probe_scale.sh: the listener did not start" >&2; exit 1
}

write_config() { # $1 directory, $2 members, $3 hold
  mkdir -p "$1/zones"
  printf '[server]\nlisten = ["127.0.0.1:0"]\nhttp = "127.0.0.1:%s"\n[probe]\ninterval = "1s"\ntimeout = "500ms"\nhold = %s\n' \
    $http_port "$3" >"$1/apidns.toml"
  python3 - "$2" >"$1/zones/scale.toml" <<'PY'
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
}

measure() { # $1 kind, $2 members, $3 hold
  local dir=$work/$1-$2
  write_config "$dir" "$2" "$3"
  "${in_netns[@]}" "$bin" serve --config "$dir/apidns.toml" --log-level error >"$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do in_netns curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null && break; sleep 0.1; done
  sleep 3
  local t0 s0 t1 s1 rss cpu p50 p99 count
  t0=$(awk '{print $14+$15}' /proc/$pid/stat); s0=$(date +%s.%N)
  sleep "$seconds"
  t1=$(awk '{print $14+$15}' /proc/$pid/stat); s1=$(date +%s.%N)
  rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$pid/status)
  cpu=$(python3 -c "print(f'{($t1-$t0)/$(getconf CLK_TCK)/($s1-$s0)*100:.1f}')")
  read -r p50 p99 count < <(lateness)
  printf '%-9s %8s %10s %8s %12s %12s %10s\n' "$1" "$2" "$cpu" "$rss" "$p50" "$p99" "$count"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

printf '%-9s %8s %10s %8s %12s %12s %10s\n' kind members "CPU %core" "RSS MiB" "late p50 ms" "late p99 ms" probes
kinds=${3:-closed held periodic}
for kind in $kinds; do
  if [ "$kind" = closed ]; then
    [ -n "$listener" ] && { kill "$listener"; wait "$listener" 2>/dev/null || true; listener=; }
  elif [ -z "$listener" ]; then
    start_listener
  fi
  hold=true; [ "$kind" = periodic ] && hold=false
  for members in $sizes; do measure "$kind" "$members" "$hold"; done
done
[ -n "$listener" ] && { kill "$listener"; wait "$listener" 2>/dev/null || true; listener=; }

"${in_netns[@]}" "$bin" serve --config "$root/apidns.toml" --log-level warn >"$work/idle.log" 2>&1 &
pid=$!
sleep 5
echo "idle RSS on the example configuration: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$pid/status)"
