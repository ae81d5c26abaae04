#!/usr/bin/env bash
# The apidns lab, end to end: two apidns instances, three stand-in API servers, an Unbound resolver
# and a client on a private Docker bridge network (compose.yaml), and checks that a client reaches
# a live API server by name while servers and an apidns instance fail; then that the two apidns
# instances agree: apidns1, the zone's primary, follows the cluster's `default/kubernetes`
# EndpointSlice (discovery) and apidns2, its secondary, follows apidns1 by zone transfer, so a
# fourth API server that joins is answered by both and leaves both when it is removed; and a
# signed update (nsupdate) sent to either instance reaches both, with no apidns file changed.
#
#   lab/test.sh        set up, bring the lab up, run the checks, tear everything down
#   lab/test.sh up     set up and bring the lab up, then leave it running to explore by hand
#   lab/test.sh down   tear down what `up` left (and stop the engine if `up` started it)
#
# Set-up, as root where something is missing: installs docker.io, docker-compose, debootstrap and
# openssl with apt-get; starts a Docker engine if none answers (no NAT, no forwarding, no default
# bridge; stopped again at the end); seeds the debian:bookworm-slim image with
# seed-base-image.sh when the tag is missing; builds apidns (`cargo build --release`, or uses
# APIDNS_BIN=/path/to/apidns) and the stand-in cluster store (`cargo build -p apidns-testkit
# --bin kube-standin`, or KUBE_STANDIN_BIN); makes the lab CA, certificates and
# discovery's kubeconfig in lab/pki/.
#
# Environment: APIDNS_BIN (an apidns binary to use instead of building one), KUBE_STANDIN_BIN
# (the same for testkit's kube-standin, the cluster store), KUBECTL (a kubectl
# binary; default: the one on PATH), LAB_GO_CLIENT=1 (use the Go client built from lab/goclient
# even when kubectl is there), APIDNS_LAB_DOCKER_ROOT (the engine's data root when this script
# starts one; default /var/lib/apidns-lab/docker).
set -euo pipefail
export LC_ALL=C # a decimal point in $EPOCHREALTIME and awk, whatever the caller's locale

LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$LAB")
STATE=$LAB/.state
MODE=${1:-run}
DATA_ROOT=${APIDNS_LAB_DOCKER_ROOT:-/var/lib/apidns-lab/docker}
NET=198.51.100
API1=$NET.11 API2=$NET.12 API3=$NET.13 API4=$NET.14 NS1=$NET.53 NS2=$NET.54
NAME=api.lab.example
URL=https://$NAME:6443
TTL=5             # the pool's ttl in apidns/zones-apidns{1,2}/lab.example.toml
BOUND=30          # seconds a change may take to reach the client (TTL + detection + generous slack)
# LAB ONLY, NOT A SECRET: the update key of apidns/apidns1.toml, for nsupdate (base64 of
# "apidns-lab-only-NOT-A-SECRET-upd"). The transfer key, for `dig AXFR` by hand, is beside it.
UPDATE_KEY=hmac-sha256:lab-update-key:YXBpZG5zLWxhYi1vbmx5LU5PVC1BLVNFQ1JFVC11cGQ=

case $MODE in run | up | down) ;; *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac

cd "$LAB"
mkdir -p "$STATE"
START=$EPOCHREALTIME
PASSED=0 FAILED=0
ENGINE_PID=
BACKGROUND=()
export COMPOSE_PROJECT_NAME=apidns-lab

# One lab per machine: its containers have fixed names and addresses on one bridge, so a second
# run (from another clone, say) would tear down or collide with the first. It waits for none.
LOCK=${APIDNS_LAB_LOCK:-/tmp/apidns-lab.lock}
exec 9>>"$LOCK"
if ! flock -n 9; then
    echo "lab/test.sh: another lab run holds $LOCK (one lab per machine: fixed names and addresses); wait for it to end" >&2
    exit 1
fi

log() { printf '[%6.1fs] %s\n' "$(elapsed "$START")" "$*"; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
pass() { PASSED=$((PASSED + 1)); log "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); log "FAIL: $*"; }
COMPOSE=(docker-compose)
dc() { "${COMPOSE[@]}" "$@"; }
quietly() { # run a command, show its output only when it fails
    local out
    out=$("$@" 2>&1) || { printf '%s\n' "$out" | tail -n 40 >&2; return 1; }
}

# ---------------------------------------------------------------------------------------------
# Set-up

install_missing() {
    local pkgs=()
    command -v dockerd >/dev/null || pkgs+=(docker.io)
    command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || pkgs+=(docker-compose)
    command -v debootstrap >/dev/null || pkgs+=(debootstrap)
    command -v openssl >/dev/null || pkgs+=(openssl)
    ((${#pkgs[@]})) || return 0
    if ((EUID != 0)); then
        echo "lab: missing ${pkgs[*]}: install them (apt-get install ${pkgs[*]}) or run as root" >&2
        exit 1
    fi
    log "installing ${pkgs[*]}"
    # Packages must not start their services (dockerd with its default NAT rules) while installing.
    local guard=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    quietly apt-get update -q
    DEBIAN_FRONTEND=noninteractive quietly apt-get install -y -q --no-install-recommends "${pkgs[@]}"
    [[ -z $guard ]] || rm -f /usr/sbin/policy-rc.d
}

start_engine() {
    if docker info >/dev/null 2>&1; then
        log "using the Docker engine that is running"
        return
    fi
    if ((EUID != 0)); then
        echo "lab: no Docker engine answers, and starting one needs root" >&2
        exit 1
    fi
    log "starting dockerd (data root $DATA_ROOT; no iptables, no forwarding, no default bridge)"
    mkdir -p "$DATA_ROOT"
    # Its own session, so that ^C reaches this script (which then tears down) and not the engine.
    setsid dockerd --data-root "$DATA_ROOT" --iptables=false --ip-forward=false --bridge=none \
        >"$STATE/dockerd.log" 2>&1 </dev/null 9>&- &
    ENGINE_PID=$!
    echo "$ENGINE_PID" >"$STATE/dockerd.pid"
    local i
    for ((i = 0; i < 120; i++)); do
        if docker info >/dev/null 2>&1; then
            # dockerd's own record of its PID, in case setsid had to fork
            ENGINE_PID=$(cat /var/run/docker.pid 2>/dev/null || echo "$ENGINE_PID")
            echo "$ENGINE_PID" >"$STATE/dockerd.pid"
            return
        fi
        kill -0 "$ENGINE_PID" 2>/dev/null || [[ -s /var/run/docker.pid ]] || break
        sleep 0.25
    done
    tail -n 20 "$STATE/dockerd.log" >&2
    echo "lab: dockerd did not start" >&2
    exit 1
}

stop_engine() {
    local pid=$1 i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 120; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$STATE/dockerd.pid"
    # The engine leaves its default network namespace mounted; nothing else uses it.
    umount /run/docker/netns/default 2>/dev/null || true
}

apidns_binary() {
    local bin=${APIDNS_BIN:-}
    if [[ -z $bin ]]; then
        log "cargo build --release"
        (cd "$ROOT" && nice cargo build --release --quiet)
        bin=$ROOT/target/release/apidns
    fi
    [[ -x $bin ]] || { echo "lab: $bin is not an executable" >&2; exit 1; }
    cmp -s "$bin" apidns/apidns || cp "$bin" apidns/apidns
}

# The cluster store (cluster/): testkit's stand-in Kubernetes API, as a process.
standin_binary() {
    local bin=${KUBE_STANDIN_BIN:-}
    if [[ -z $bin ]]; then
        # A debug build: the store serves a handful of requests, and after `cargo test` (CI runs it
        # first) every crate it needs is already compiled in the debug profile, so this is a link
        # rather than a second release build of kube-rs's tree.
        log "cargo build -p apidns-testkit --bin kube-standin"
        (cd "$ROOT" && nice cargo build --quiet -p apidns-testkit --bin kube-standin)
        bin=$ROOT/target/debug/kube-standin
    fi
    [[ -x $bin ]] || { echo "lab: $bin is not an executable" >&2; exit 1; }
    cmp -s "$bin" cluster/kube-standin || cp "$bin" cluster/kube-standin
}

# The lab CA and one serving certificate per API server, like kubeadm's: the API name, the
# server's own name and address, and the in-cluster names in the subject alternative names.
# Then discovery's credentials: apidns1's kubeconfig with a client certificate for the user
# apidns-discover (as `kubeadm kubeconfig user` makes; apidns2, a secondary, discovers nothing),
# and a bearer token (as a ServiceAccount's) that the API servers also accept, for kubectl by
# hand (pki/discover-token).
make_pki() {
    if [[ -f pki/ca.pem && -f pki/api4-key.pem && -f pki/apidns1.kubeconfig && -f pki/discover-token ]] &&
        openssl x509 -checkend 86400 -noout -in pki/ca.pem >/dev/null &&
        openssl x509 -checkend 86400 -noout -in pki/api4.pem >/dev/null; then
        return
    fi
    log "making the lab CA and certificates in lab/pki/"
    rm -rf pki && mkdir -p pki && chmod 755 pki
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    local -x SANS=DNS:$NAME # read by openssl.cnf's [server] section, set per server below
    cat >pki/openssl.cnf <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = ${ENV::SANS}
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
CNF
    quietly openssl req -x509 "${ec[@]}" -days 365 -subj "/CN=apidns lab CA (for this lab only)" \
        -config pki/openssl.cnf -extensions ca -keyout pki/ca-key.pem -out pki/ca.pem
    local n ip
    for n in 1 2 3 4; do
        ip=$NET.1$n
        quietly openssl req -new "${ec[@]}" -subj "/CN=kube-apiserver" -config pki/openssl.cnf \
            -keyout "pki/api$n-key.pem" -out "pki/api$n.csr"
        SANS="DNS:$NAME, DNS:api$n.lab.example, IP:$ip, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local" \
            quietly openssl x509 -req -in "pki/api$n.csr" -CA pki/ca.pem -CAkey pki/ca-key.pem \
            -set_serial "0x$(openssl rand -hex 16)" -days 365 -extfile pki/openssl.cnf -extensions server \
            -out "pki/api$n.pem"
        rm "pki/api$n.csr"
    done
    quietly openssl req -new "${ec[@]}" -subj "/CN=apidns-discover" -config pki/openssl.cnf \
        -keyout pki/discover-key.pem -out pki/discover.csr
    quietly openssl x509 -req -in pki/discover.csr -CA pki/ca.pem -CAkey pki/ca-key.pem \
        -set_serial "0x$(openssl rand -hex 16)" -days 365 -extfile pki/openssl.cnf -extensions client \
        -out pki/discover.pem
    rm pki/discover.csr
    openssl rand -hex 24 >pki/discover-token
    kubeconfig "client-certificate-data: $(base64 -w0 pki/discover.pem)
    client-key-data: $(base64 -w0 pki/discover-key.pem)" >pki/apidns1.kubeconfig
    # Readable in the containers (the lab runs as root there; these are lab-only credentials).
    chmod 644 pki/ca.pem pki/api?.pem pki/discover.pem pki/discover-token pki/apidns1.kubeconfig
    chmod 600 pki/*-key.pem
}

# A kubeconfig for the API name with the lab CA, and the user's credentials ($1: YAML lines).
kubeconfig() {
    cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: $URL
    certificate-authority-data: $(base64 -w0 pki/ca.pem)
users:
- name: apidns-discover
  user:
    $1
contexts:
- name: lab
  context:
    cluster: lab
    user: apidns-discover
    namespace: default
current-context: lab
EOF
}

# A Go client that resolves and dials the way kubelet does: kubectl when there is one (a static Go
# binary), else labclient built with Debian's Go (goclient/).
GO_CLIENT=()
setup_go_client() {
    local client=$1 kubectl=${KUBECTL:-$(command -v kubectl || true)}
    if [[ -z ${LAB_GO_CLIENT:-} && -n $kubectl ]]; then
        kubectl=$(readlink -f "$kubectl")
        if docker cp "$kubectl" "$client:/usr/local/bin/kubectl" >/dev/null &&
            docker exec "$client" kubectl version --client >/dev/null 2>&1; then
            # A kubeconfig like the one kubeadm writes for kubelet: the API name as the server.
            # (The stand-in API servers take any token; without credentials kubectl would prompt.)
            docker exec "$client" sh -c "
                kubectl config set-cluster lab --server $URL --certificate-authority /lab/pki/ca.pem &&
                kubectl config set-credentials lab --token lab-token-not-checked &&
                kubectl config set-context lab --cluster lab --user lab &&
                kubectl config use-context lab" >/dev/null
            GO_CLIENT=(kubectl --request-timeout=20s get --raw /version)
            log "Go client: kubectl from $kubectl ($(docker exec "$client" kubectl version --client 2>/dev/null | head -n 1))"
            return
        fi
        log "kubectl from $kubectl does not run in the client container; building the Go client instead"
    fi
    log "building the Go client (goclient/, Debian's golang-go)"
    quietly nice docker build --network host -t apidns-lab/goclient goclient
    local tmp
    tmp=$(docker create apidns-lab/goclient 2>/dev/null)
    docker cp "$tmp:/usr/local/bin/labclient" "$STATE/labclient" && docker rm "$tmp" >/dev/null
    docker cp "$STATE/labclient" "$client:/usr/local/bin/labclient"
    GO_CLIENT=(labclient -timeout 20s "$URL/version")
    log "Go client: labclient (goclient/main.go, built with Debian's Go)"
}

# ---------------------------------------------------------------------------------------------
# Tear-down

teardown() {
    local status=$?
    set +e
    trap - EXIT INT TERM
    local pid
    for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null; done
    if [[ $MODE == run && $status -ne 0 && -n ${CLIENT:-} ]]; then
        log "logs of the lab (last lines of each service):"
        dc logs --no-color --tail=15 2>&1 | sed 's/^/    /'
    fi
    if [[ $MODE != up ]] && docker info >/dev/null 2>&1; then
        log "tearing the lab down"
        dc rm -fs api4 >/dev/null 2>&1 # started by check 10; outside the default profile
        dc down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1
    fi
    if [[ $MODE != up ]]; then
        stop_engine "$ENGINE_PID"
    fi
    log "done in $(elapsed "$START") s"
    exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $MODE == down ]]; then
    [[ -f $STATE/dockerd.pid ]] && ENGINE_PID=$(cat "$STATE/dockerd.pid")
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Bring the lab up

install_missing
command -v docker-compose >/dev/null || COMPOSE=(docker compose)
apidns_binary
standin_binary
make_pki
start_engine
docker image inspect debian:bookworm-slim >/dev/null 2>&1 || {
    log "seeding debian:bookworm-slim (debootstrap; about a minute)"
    "$LAB/seed-base-image.sh"
}
log "building the images"
quietly nice "${COMPOSE[@]}" build
dc down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
# The files apidns reads, to show at the end that discovery changed none of them.
apidns_files() { sha256sum apidns/*.toml apidns/zones-*/* pki/apidns1.kubeconfig pki/ca.pem; }
FILES_BEFORE=$(apidns_files)
log "starting the lab"
quietly dc up -d
# Container IDs, taken while everything runs (`docker compose ps` v2 omits stopped containers).
declare -A IDS
# One query for all (docker-compose v1 takes a second or more per call on a busy machine).
while read -r service id; do IDS[$service]=$id; done < <(docker ps -a --no-trunc \
    --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --format '{{.Label "com.docker.compose.service"}} {{.ID}}')
for service in apidns1 apidns2 cluster api1 api2 api3 resolver client; do
    [[ -n ${IDS[$service]:-} ]] || { echo "lab: no container for $service" >&2; exit 1; }
done
# apidns check, as each instance sees its files (the discovery kubeconfig is mounted per
# instance, so the host cannot check them). An instance whose files do not load has exited:
# its log says why.
for service in apidns1 apidns2; do
    quietly docker exec "${IDS[$service]}" apidns check --config "/lab/apidns/$service.toml" || {
        docker logs --tail 20 "${IDS[$service]}" >&2
        echo "lab: $service's configuration does not load" >&2
        exit 1
    }
done
cid() { echo "${IDS[$1]}"; }
CLIENT=$(cid client)
setup_go_client "$CLIENT"

if [[ $MODE == up ]]; then
    cat <<EOF

The lab is up. From $LAB:
  docker-compose exec client getent ahosts $NAME
  docker-compose exec client curl --cacert /lab/pki/ca.pem $URL/version
  docker-compose exec client ${GO_CLIENT[*]}
  docker-compose logs -f apidns1 apidns2
  docker-compose exec api1 apiserver-ctl stop        # and start, unready, ready
Discovery and transfers (docs/lab.md, "Watching discovery by hand"):
  docker-compose exec apidns1 apidns status --config /lab/apidns/apidns1.toml
  docker-compose exec apidns2 apidns status --config /lab/apidns/apidns2.toml   # the secondary
  docker-compose up -d api4                           # a fourth API server starts, then joins:
  docker-compose exec cluster cluster-ctl set $API1 $API2 $API3 $API4
  docker-compose exec cluster cluster-ctl set $API1 $API2 $API3     # it leaves
  docker-compose exec client nsupdate -y $UPDATE_KEY  # then: server $NS2 / update add $NAME 5 A $API4 / send
  lab/test.sh down                                    # when done
EOF
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Checks, from the client container through the resolver

in_client() { docker exec "$CLIENT" "$@"; }

# The addresses that the system resolver (glibc getaddrinfo) returns for the API name, in order.
resolve() { { in_client getent ahosts "$NAME" 2>/dev/null || true; } | awk '$2 == "STREAM" { print $1 }' | paste -sd ' ' -; }
same_set() { [[ $(tr ' ' '\n' <<<"$1" | sort | paste -sd ' ' -) == "$(tr ' ' '\n' <<<"$2" | sort | paste -sd ' ' -)" ]]; }

# One request with curl (glibc) or the Go client: prints "ok SERVER SECONDS" or "error SECONDS MESSAGE".
request() {
    local t0=$EPOCHREALTIME out
    if [[ $1 == curl ]]; then
        out=$(in_client curl -sS --connect-timeout 10 --max-time 20 --cacert /lab/pki/ca.pem "$URL/version" 2>&1) || true
    else
        out=$(in_client "${GO_CLIENT[@]}" 2>&1) || true
    fi
    local took
    took=$(elapsed "$t0")
    if grep -q '"gitVersion"' <<<"$out"; then
        echo "ok $(sed -n 's/.*"labServer": "\([^"]*\)".*/\1/p' <<<"$out") $took"
    else
        echo "error $took $(tr '\n' ' ' <<<"$out" | cut -c1-160)"
    fi
}

# Requests in a loop in the background, one line per request with its start (seconds since $2).
request_loop() {
    local kind=$1 t0=$2 file=$3 i line
    : >"$file"
    for ((i = 0; i < 200; i++)); do
        [[ -e $file.stop ]] && break
        local at
        at=$(elapsed "$t0")
        line=$(request "$kind")
        echo "$at $line" >>"$file"
        sleep 0.3
    done
}
start_request_loops() {
    local t0=$1 tag=$2 kind
    rm -f "$STATE"/req-"$tag"-*
    for kind in curl go; do
        request_loop "$kind" "$t0" "$STATE/req-$tag-$kind" &
        BACKGROUND+=($!)
    done
}
stop_request_loops() {
    local tag=$1 kind pid
    for kind in curl go; do touch "$STATE/req-$tag-$kind.stop"; done
    for pid in "${BACKGROUND[@]}"; do wait "$pid" 2>/dev/null || true; done
    BACKGROUND=()
}
# Summary of a request log: counts, servers reached, slow requests and errors (with their start).
summarize_requests() {
    awk '
        { n++ }
        $2 == "ok" { ok++; servers[$3]++; if ($4 > 1.5) slow = slow sprintf(" %.1fs (at %ss)", $4, $1) }
        $2 == "error" { failed++; errs = errs sprintf(" [at %ss after %.1fs: %s]", $1, $3, substr($0, index($0, $4))) }
        END {
            printf "%d requests, %d ok (", n, ok
            sep = ""
            for (s in servers) { printf "%s%s=%d", sep, s, servers[s]; sep = " " }
            printf "), %d failed", failed
            if (slow != "") printf "; slower than 1.5 s:%s", slow
            if (errs != "") printf "; errors:%s", errs
            print ""
        }' "$1"
}
# True when at least 2 requests of the log started at or after second $2, and all of those
# succeeded within 1.5 s at a server other than $3.
good_after() {
    awk -v after="$2" -v dead="$3" '
        $1 >= after { n++; if ($2 != "ok" || $4 > 1.5 || $3 == dead) bad = 1 }
        END { exit !(n >= 2 && !bad) }' "$1"
}

# Waits (up to BOUND s) until the API name resolves to exactly $1 at the client, and both
# clients' requests since then succeed quickly and avoid server $2. Prints what it saw.
wait_for_failover() {
    local want=$1 dead=$2 t0=$3 tag=$4 got='' dns_at='' i
    for ((i = 0; i < BOUND * 4; i++)); do
        got=$(resolve)
        if [[ -z $dns_at ]] && same_set "$got" "$want"; then
            dns_at=$(elapsed "$t0")
            log "  the answer is {$got} ${dns_at}s after the failure"
        fi
        if [[ -n $dns_at ]] && good_after "$STATE/req-$tag-curl" "$dns_at" "$dead" &&
            good_after "$STATE/req-$tag-go" "$dns_at" "$dead"; then
            break
        fi
        sleep 0.25
    done
    stop_request_loops "$tag"
    log "  curl (glibc) since the failure: $(summarize_requests "$STATE/req-$tag-curl")"
    log "  ${GO_CLIENT[0]} (Go) since the failure: $(summarize_requests "$STATE/req-$tag-go")"
    [[ -n $dns_at ]] && good_after "$STATE/req-$tag-curl" "$dns_at" "$dead" &&
        good_after "$STATE/req-$tag-go" "$dns_at" "$dead"
}

# apidns's count of answered queries for the lab zone, from its metrics.
queries_answered() {
    { in_client curl -s --max-time 5 "http://$1:9153/metrics" || true; } |
        awk '/^apidns_queries_total\{.*zone="lab\.example\."/ { n += $NF } END { print n + 0 }'
}

members_up() {
    { in_client curl -s --max-time 5 "http://$1:9153/metrics" || true; } |
        awk '/^apidns_pool_members_up\{pool="api\.lab\.example\."\}/ { print $NF }'
}
log "waiting for the lab: both apidns instances see three API servers up (api3 discovered from the cluster by apidns1, transferred to apidns2), and $NAME resolves"
answer=
for ((i = 0; i < 240; i++)); do
    if [[ $(members_up "$NS1") == 3 && $(members_up "$NS2") == 3 ]]; then
        answer=$(resolve)
        same_set "$answer" "$API1 $API2 $API3" && break
    fi
    sleep 0.25
done

# 1. The system resolver returns the live API servers.
if same_set "$answer" "$API1 $API2 $API3"; then
    pass "1. getent ahosts $NAME (glibc, through Unbound) returns the three live API servers: $answer"
else
    fail "1. getent ahosts $NAME returned '$answer', expected $API1 $API2 $API3"
fi

# 2. curl reaches an API server by name, TLS verified against the lab CA.
out=$(request curl)
if [[ $out == ok* ]]; then
    pass "2. curl --cacert lab-ca $URL/version reached $(cut -d' ' -f2 <<<"$out")"
else
    fail "2. curl $URL/version: $out"
fi

# 3. The Go client resolves and dials like kubelet.
out=$(request go)
if [[ $out == ok* ]]; then
    pass "3. ${GO_CLIENT[0]} (Go resolver and dialer) reached $(cut -d' ' -f2 <<<"$out") at $URL"
    if [[ ${GO_CLIENT[0]} == kubectl ]]; then log "  kubectl version: $(in_client kubectl version 2>&1 | paste -sd ' ' -)"; fi
else
    fail "3. ${GO_CLIENT[*]}: $out"
fi

# How the clients order the answers (reported, not checked): which address comes first, and
# which server each client reaches, over a series of fresh lookups and requests.
tally() { sort | uniq -c | awk '{ printf "%s=%d ", $2, $1 }'; }
log "order of the answers over 20 lookups or requests each (Unbound rotates every answer it sends):"
log "  getaddrinfo first, client (.10, IPv6 link-local): $(in_client sh -c "for i in \$(seq 20); do getent ahosts $NAME | head -n 1; done" | awk '{ print $1 }' | tally)"
log "  getaddrinfo first, IPv4-only host (.9):           $(docker run --rm --network apidns-lab_lab --ip "$NET.9" --dns "$NET.5" apidns-lab/client \
    sh -c "for i in \$(seq 20); do getent ahosts $NAME | head -n 1; done" 2>/dev/null | awk '{ print $1 }' | tally)"
log "  curl (glibc) reached:                             $(for i in $(seq 20); do request curl | cut -d' ' -f2; done | tally)"
log "  ${GO_CLIENT[0]} (Go) reached:$(printf '%*s' $((32 - ${#GO_CLIENT[0]})) '')$(for i in $(seq 20); do request go | cut -d' ' -f2; done | tally)"

# 4. An API server's process dies, its host stays up: connections are refused.
log "4. stopping the API server process on api1 ($API1): connections to it are refused"
t0=$EPOCHREALTIME
docker exec "$(cid api1)" apiserver-ctl stop
start_request_loops "$t0" refused
if wait_for_failover "$API2 $API3" api1 "$t0" refused; then
    pass "4. api1 refused: it left the answer, and curl and ${GO_CLIENT[0]} reach api2/api3 (bound ${BOUND}s)"
else
    fail "4. api1 refused: the answer or the clients did not settle within ${BOUND}s"
fi

# 5. An API server is cut from the network: packets to it go nowhere.
log "5. disconnecting api2 ($API2) from the network"
t0=$EPOCHREALTIME
docker network disconnect apidns-lab_lab "$(cid api2)"
start_request_loops "$t0" cut
if wait_for_failover "$API3" api2 "$t0" cut; then
    pass "5. api2 cut off: it left the answer, and curl and ${GO_CLIENT[0]} reach api3 (bound ${BOUND}s)"
else
    fail "5. api2 cut off: the answer or the clients did not settle within ${BOUND}s"
fi

# 6. One apidns instance stops: the resolver answers through the other. It is the primary: the
# secondary keeps serving its copy of the zone (until the SOA's expire, a week), and probing.
log "6. stopping apidns1 ($NS1), the primary: apidns2, its secondary, must keep serving its copy"
before=$(queries_answered "$NS2")
quietly docker stop -t 5 "$(cid apidns1)"
t0=$EPOCHREALTIME
lookups=0 good=0 slowest=0 bad=
while (($(elapsed "$t0" | cut -d. -f1) < 3 * TTL + 1)); do
    l0=$EPOCHREALTIME
    got=$(resolve)
    took=$(elapsed "$l0")
    lookups=$((lookups + 1))
    if same_set "$got" "$API3"; then good=$((good + 1)); else bad+=" [$(elapsed "$t0")s: '$got']"; fi
    awk -v a="$took" -v b="$slowest" 'BEGIN { exit !(a > b) }' && slowest=$took
    sleep 0.25
done
after=$(queries_answered "$NS2")
log "  $good of $lookups lookups over $((3 * TTL + 1))s answered {$API3}; slowest ${slowest}s; apidns2 answered $((after - before)) queries${bad:+; wrong:$bad}"
if ((good == lookups && after > before)); then
    pass "6. apidns1 (the primary) stopped: every lookup was answered through apidns2 from its copy of the zone"
else
    fail "6. apidns1 stopped: $((lookups - good)) of $lookups lookups failed or were wrong"
fi

# 7. Everything comes back: the address returns to the answer within the bound.
log "7. restarting the api1 process, reconnecting api2, starting apidns1"
t0=$EPOCHREALTIME
docker exec "$(cid api1)" apiserver-ctl start
docker network connect --ip "$API2" apidns-lab_lab "$(cid api2)"
quietly docker start "$(cid apidns1)"
for ((i = 0; i < BOUND * 4; i++)); do
    answer=$(resolve)
    direct=$({ in_client dig +short +time=1 +tries=1 "@$NS1" "$NAME" A 2>/dev/null || true; } | sort | paste -sd ' ' -)
    same_set "$answer" "$API1 $API2 $API3" && same_set "$direct" "$API1 $API2 $API3" && break
    sleep 0.25
done
if same_set "$answer" "$API1 $API2 $API3" && same_set "$direct" "$API1 $API2 $API3"; then
    pass "7. recovery: all three API servers are back in the answer, and apidns1 answers again, $(elapsed "$t0")s after the restarts began"
else
    fail "7. recovery: after $(elapsed "$t0")s the answer is '$answer', apidns1 says '$direct'"
fi

# 8. A server that accepts connections but is not ready: only the HTTPS probe of /readyz sees it.
if grep -q 'kind = "https"' apidns/zones-apidns1/lab.example.toml; then
    log "8. api3 stops being ready: /readyz answers 500, TCP and TLS still work"
    docker exec "$(cid api3)" apiserver-ctl unready
    t0=$EPOCHREALTIME
    for ((i = 0; i < BOUND * 4; i++)); do
        answer=$(resolve)
        same_set "$answer" "$API1 $API2" && break
        sleep 0.25
    done
    gone=$(elapsed "$t0")
    status=$(in_client curl -s -o /dev/null -w '%{http_code}' --cacert /lab/pki/ca.pem https://api3.lab.example:6443/readyz)
    docker exec "$(cid api3)" apiserver-ctl ready
    if same_set "$answer" "$API1 $API2" && [[ $status == 500 ]]; then
        pass "8. api3 not ready (/readyz $status): it left the answer after ${gone}s"
    else
        fail "8. api3 not ready (/readyz $status): after ${gone}s the answer is '$answer'"
    fi
fi

# ---------------------------------------------------------------------------------------------
# Discovery and transfers: apidns1's pool follows the cluster's `default/kubernetes`
# EndpointSlice, which the API servers serve from the cluster store (cluster-ctl writes it as the
# lease reconcilers of real API servers do when one joins or leaves). apidns2 is apidns1's
# secondary: its members are apidns1's, discovered ones included, by IXFR on apidns1's NOTIFY,
# and it probes them itself.

status_of() { docker exec "$(cid "$1")" apidns status --config "/lab/apidns/$1.toml" 2>&1 || true; }
discover_line() { status_of "$1" | grep -m1 '^discover ' || true; }
secondary_line() { status_of "$1" | grep -m1 '^secondary ' || true; }
member_line() { status_of "$1" | awk -v member="$2:6443" '$1 == member' | tr -s ' '; }
answers() { { in_client dig +short +time=1 +tries=1 "@$1" "$NAME" A 2>/dev/null || true; } | sort | paste -sd ' ' -; }
serial() { { in_client dig +short +time=1 +tries=1 "@$1" lab.example SOA 2>/dev/null || true; } | awk '{ print $3 }'; }
serials() { echo "serial apidns1 $(serial "$NS1"), apidns2 $(serial "$NS2")"; }
has() { [[ " $1 " == *" $2 "* ]]; }

# 9. api3 is in no apidns file: apidns1 has it from the slice, apidns2 from apidns1 (and it is up
# again after check 8, so that the next checks start from three members up).
log "9. api3 ($API3) is in no apidns file: apidns1 discovers it from the slice, apidns2 takes it from apidns1 by transfer"
member_from() { [[ $(member_line "$1" "$API3") == *"up, answered"*"$2"* ]]; }
for ((i = 0; i < BOUND * 4; i++)); do
    member_from apidns1 discovered && member_from apidns2 transferred && break
    sleep 0.25
done
log "  apidns1: $(discover_line apidns1)"
log "  apidns2: $(secondary_line apidns2)"
for ns in apidns1 apidns2; do log "  $ns: $(member_line "$ns" "$API3")"; done
if member_from apidns1 discovered && member_from apidns2 transferred; then
    pass "9. apidns1 discovered api3 from the cluster (source discovered), apidns2 has it from apidns1's transfer (source transferred); both probe and answer it"
else
    fail "9. api3 is not an answered member of apidns1 (discovered) and apidns2 (transferred)"
fi

# 10. A fourth API server starts, registers in the slice: apidns1 discovers it, apidns2 gets it
# by NOTIFY and IXFR, and both answer it once their own probes pass.
log "10. api4 ($API4) starts; once it serves, its address joins the slice"
quietly dc up -d --no-deps api4
IDS[api4]=$(dc ps -q api4)
for ((i = 0; i < BOUND * 4; i++)); do
    in_client curl -s -o /dev/null --max-time 2 --cacert /lab/pki/ca.pem "https://$API4:6443/readyz" && break
    sleep 0.25
done
t0=$EPOCHREALTIME
log "  cluster-ctl set $API1 $API2 $API3 $API4: $(docker exec "$(cid cluster)" cluster-ctl set $API1 $API2 $API3 $API4 2>&1)"
at1='' at2='' at_client=''
for ((i = 0; i < BOUND * 4; i++)); do
    [[ -z $at1 ]] && has "$(answers "$NS1")" "$API4" && at1=$(elapsed "$t0")
    [[ -z $at2 ]] && has "$(answers "$NS2")" "$API4" && at2=$(elapsed "$t0")
    [[ -z $at_client ]] && has "$(resolve)" "$API4" && at_client=$(elapsed "$t0")
    [[ -n $at1 && -n $at2 && -n $at_client ]] && break
    sleep 0.25
done
log "  apidns1: $(discover_line apidns1)"
log "  apidns2: $(secondary_line apidns2)"
for ns in apidns1 apidns2; do log "  $ns: $(member_line "$ns" "$API4")"; done
if [[ -n $at1 && -n $at2 && -n $at_client ]]; then
    pass "10. api4 joined: apidns1 (discovery) answers it ${at1}s and apidns2 (transfer) ${at2}s after the slice changed; the client resolves it after ${at_client}s"
else
    fail "10. api4 joined: after $(elapsed "$t0")s apidns1 answers '$(answers "$NS1")', apidns2 '$(answers "$NS2")', the client '$(resolve)'"
fi

# 11. api4 leaves the slice (still up and healthy): it leaves both pools, probes and all.
log "11. api4 leaves the slice; it still serves, so only the slice (through apidns1) can take it out"
t0=$EPOCHREALTIME
log "  cluster-ctl set $API1 $API2 $API3: $(docker exec "$(cid cluster)" cluster-ctl set $API1 $API2 $API3 2>&1)"
gone1='' gone2=''
for ((i = 0; i < BOUND * 4; i++)); do
    [[ -z $gone1 ]] && ! has "$(answers "$NS1")" "$API4" && [[ -z $(member_line apidns1 "$API4") ]] && gone1=$(elapsed "$t0")
    [[ -z $gone2 ]] && ! has "$(answers "$NS2")" "$API4" && [[ -z $(member_line apidns2 "$API4") ]] && gone2=$(elapsed "$t0")
    [[ -n $gone1 && -n $gone2 ]] && break
    sleep 0.25
done
log "  apidns1: $(answers "$NS1"); apidns2: $(answers "$NS2"); $(serials); /readyz of api4: $(in_client curl -s --max-time 2 --cacert /lab/pki/ca.pem "https://$API4:6443/readyz")"
if [[ -n $gone1 && -n $gone2 ]] && same_set "$(answers "$NS1")" "$API1 $API2 $API3" &&
    same_set "$(answers "$NS2")" "$API1 $API2 $API3"; then
    pass "11. api4 removed from the slice: it left apidns1's pool after ${gone1}s and apidns2's (by transfer) after ${gone2}s"
else
    fail "11. api4 removed from the slice: after $(elapsed "$t0")s apidns1 answers '$(answers "$NS1")', apidns2 '$(answers "$NS2")'"
fi

# ---------------------------------------------------------------------------------------------
# Dynamic updates with two instances: nsupdate (signed with the lab's update key) from the client
# to either instance. apidns1 applies it; apidns2 forwards it to apidns1 unchanged and relays the
# answer, and the change reaches apidns2 by NOTIFY and IXFR. The member is api4, which still
# serves, so both instances probe it and answer it.

# Sends "update add|delete $NAME A $API4" to the instance at $1; prints nsupdate's complaints.
update_api4() {
    local rr="$NAME. $TTL A $API4"
    [[ $2 == delete ]] && rr="$NAME. A $API4"
    printf 'server %s\nzone lab.example.\nupdate %s %s\nsend\n' "$1" "$2" "$rr" |
        docker exec -i "$CLIENT" nsupdate -t 20 -y "$UPDATE_KEY" 2>&1
}
# Waits (up to BOUND s after $1) until api4 is in ($2 = in) or out of ($2 = out) the answers of
# both instances; sets AT1 and AT2 to the seconds each took.
wait_api4() {
    local t0=$1 want=$2 i
    AT1='' AT2=''
    in_answers() { if [[ $want == in ]]; then has "$(answers "$1")" "$API4"; else ! has "$(answers "$1")" "$API4"; fi; }
    for ((i = 0; i < BOUND * 4; i++)); do
        [[ -z $AT1 ]] && in_answers "$NS1" && AT1=$(elapsed "$t0")
        [[ -z $AT2 ]] && in_answers "$NS2" && AT2=$(elapsed "$t0")
        [[ -n $AT1 && -n $AT2 ]] && return 0
        sleep 0.25
    done
    return 1
}
# One update check: $1 the check's number, $2 the instance (apidns1|apidns2), $3 add|delete.
update_check() {
    local n=$1 ns=$2 op=$3 server want where how out t0
    server=$NS1 how="applied by apidns1"
    [[ $ns == apidns2 ]] && server=$NS2 how="forwarded by apidns2 to apidns1"
    want=in where=in
    [[ $op == delete ]] && want=out where="out of"
    log "$n. nsupdate to $ns ($server): update $op $NAME A $API4"
    t0=$EPOCHREALTIME
    if ! out=$(update_api4 "$server" "$op"); then
        fail "$n. nsupdate $op to $ns failed: $(tr '\n' ' ' <<<"$out")"
        return
    fi
    log "  nsupdate: NOERROR after $(elapsed "$t0")s ($how)"
    if wait_api4 "$t0" "$want"; then
        log "  apidns1: $(answers "$NS1"); apidns2: $(answers "$NS2"); $(serials)"
        for s in apidns1 apidns2; do log "  $s: $(member_line "$s" "$API4")"; done
        pass "$n. update $op to $ns ($how): api4 is $where apidns1's answer after ${AT1}s and $where apidns2's after ${AT2}s"
    else
        fail "$n. update $op to $ns: after $(elapsed "$t0")s apidns1 answers '$(answers "$NS1")', apidns2 '$(answers "$NS2")'; $(serials)"
    fi
}
update_check 12 apidns1 add
update_check 13 apidns2 delete
update_check 14 apidns2 add
update_check 15 apidns1 delete
quietly dc rm -fs api4

# 16. None of it touched a file that apidns reads (updates live in apidns1's journal, the copy in
# apidns2's state_dir, both inside the containers).
if [[ $(apidns_files) == "$FILES_BEFORE" ]]; then
    pass "16. no apidns file changed: $(wc -l <<<"$FILES_BEFORE") files (main files, zone files, kubeconfig, CA) have the sha256 they had at the start"
else
    fail "16. apidns files changed: $(diff <(echo "$FILES_BEFORE") <(apidns_files) | paste -sd ' ' -)"
fi

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
