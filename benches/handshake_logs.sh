#!/usr/bin/env bash
# TLS handshake errors that apidns's probes cause in an API server's log, per probe mode.
#
#   benches/handshake_logs.sh [SECONDS]      # default 60 s per mode
#
# kube-apiserver logs `http: TLS handshake error from ...: EOF` for every TCP connection that
# closes without a TLS handshake (kubernetes#70411). This starts a tiny Go HTTPS server with
# kube-apiserver's timeouts (ReadHeaderTimeout 32 s, IdleTimeout 90 s, self-signed certificate,
# Go's standard error log to a file), runs one apidns probing it in each mode for SECONDS, counts
# the handshake errors and prints them per hour. Modes: tcp hold=false, tcp hold=true,
# https hold=false, https hold=true; a mode whose configuration apidns rejects is skipped with a
# note. Installs golang-go (Debian) when `go` is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
seconds=${1:-60}
work=$(mktemp -d /tmp/apidns-handshakes-XXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

if ! command -v go >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go
fi

mkdir -p "$work/server"
cat >"$work/server/main.go" <<'GO'
// A stand-in kube-apiserver for counting handshake errors: HTTPS with its server timeouts.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	address, logFile := os.Args[1], os.Args[2]
	out, err := os.Create(logFile)
	if err != nil {
		log.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	host, _, _ := net.SplitHostPort(address)
	template := x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP(host)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, _ := x509.CreateCertificate(rand.Reader, &template, &template, &key.PublicKey, key)
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	server := &http.Server{
		Addr:              address,
		Handler:           mux,
		ReadHeaderTimeout: 32 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          log.New(out, "", log.LstdFlags),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
			NextProtos:   []string{"h2", "http/1.1"},
		},
	}
	log.Fatal(server.ListenAndServeTLS("", ""))
}
GO
printf 'module apiserver\n\ngo 1.19\n' >"$work/server/go.mod"
(cd "$work/server" && GOCACHE="$work/gocache" go build -o "$work/apiserver" .)

# APIDNS=/path/to/apidns uses that binary instead of building one.
bin=${APIDNS:-}
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release -q)
  bin=${CARGO_TARGET_DIR:-$root/target}/release/apidns
fi

modes=(
  'tcp hold=false|{ kind = "tcp", hold = false }'
  'tcp hold=true|{ kind = "tcp", hold = true }'
  'https hold=false|{ kind = "https", insecure_skip_verify = true, hold = false }'
  'https hold=true|{ kind = "https", insecure_skip_verify = true, hold = true }'
)
printf '%-18s %8s %10s %14s\n' mode seconds errors "errors/hour"
n=0
for entry in "${modes[@]}"; do
  n=$((n + 1))
  mode=${entry%%|*}
  probe=${entry#*|}
  dir="$work/mode$n"
  mkdir -p "$dir/zones"
  member="127.0.78.$n:16443"
  printf '[server]\nlisten = ["127.0.0.1:0"]\n[probe]\ninterval = "1s"\ntimeout = "500ms"\n' >"$dir/apidns.toml"
  cat >"$dir/zones/k8s.toml" <<ZONE
origin = "k8s.test."
records = [{ name = "@", type = "NS", value = "ns1" }, { name = "ns1", type = "A", value = "127.0.0.53" }]
[soa]
mname = "ns1"
rname = "hostmaster"
minimum = 5
[pool.api]
members = ["$member"]
probe = $probe
ZONE
  if ! check=$("$bin" check --config "$dir/apidns.toml" 2>&1); then
    printf '%-18s skipped: apidns rejects the configuration: %s\n' "$mode" "$(echo "$check" | tail -1)"
    continue
  fi
  "$work/apiserver" "$member" "$dir/apiserver.log" &
  server=$!
  pids+=("$server")
  sleep 0.5
  "$bin" serve --config "$dir/apidns.toml" --log-level warn >"$dir/apidns.log" 2>&1 &
  apidns=$!
  pids+=("$apidns")
  sleep "$seconds"
  kill "$apidns" "$server" 2>/dev/null || true
  wait "$apidns" "$server" 2>/dev/null || true
  errors=$(grep -c 'TLS handshake error' "$dir/apiserver.log" || true)
  printf '%-18s %8s %10s %14s\n' "$mode" "$seconds" "$errors" "$((errors * 3600 / seconds))"
done
