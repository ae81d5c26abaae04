#!/usr/bin/env python3
"""A stand-in kube-apiserver for the apidns lab.

Serves HTTPS on :6443 with the certificate it is given and answers like kube-apiserver does to an
anonymous client: /readyz, /livez and /healthz with "ok" (append ?verbose for the list of checks),
/version with the version JSON, and 403 with a Status object for everything else. /version also
carries a "labServer" field (not in kube-apiserver's answer) so that a client can tell which
server it reached.

With APISERVER_STORE=HOST:PORT set, the API itself (/api, /apis: the `default/kubernetes`
EndpointSlice that apidns's discovery lists and watches) comes from the lab's cluster store, as
kube-apiserver serves it from etcd: every API server in the lab relays to the same store (the
`cluster` service, kube-standin from testkit), so they all show the same objects and
resourceVersions. Like kube-apiserver it authenticates the client itself, with a client
certificate signed by the lab CA (its CN is the user) or the bearer token in
/lab/pki/discover-token, and reaches the store with the store's own credentials
(/lab/cluster/ca.crt and the token in /lab/cluster/token.kubeconfig). Watch streams are relayed
chunk by chunk; a stream the store cuts is cut here too.

`apiserver-ctl` (beside this file) simulates what happens to a real one, with signals and a file:
  SIGUSR1  the process dies: the listening socket closes and open connections are reset, so new
           connections are refused while the host stays up
  SIGUSR2  it is back: listens again
  SIGTERM, SIGINT  exit
  /run/apiserver.unready  while this file exists, /readyz answers 500 (as when etcd is
           unreachable) while TCP and TLS still work: only a probe of /readyz notices
"""

import argparse
import http.client
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("APISERVER_NAME", socket.gethostname())
UNREADY_FILE = "/run/apiserver.unready"
LAB_CA = "/lab/pki/ca.pem"
LAB_TOKEN = "/lab/pki/discover-token"
STORE_DIR = "/lab/cluster"
STORE = os.environ.get("APISERVER_STORE", "")  # HOST:PORT of the cluster store; empty: none

CHECKS = ["ping", "log", "etcd", "etcd-readiness", "informer-sync", "poststarthook/start-apiextensions-informers"]


def log(message):
    print(f"{NAME}: {message}", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "apiserver-standin"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after this long

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        log(f"{self.client_address[0]} {format % args}")

    def send(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Lab-Server", NAME)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def health(self, path, verbose):
        unready = path == "/readyz" and os.path.exists(UNREADY_FILE)
        failing = {"etcd", "etcd-readiness"} if unready else set()
        lines = [f"[-]{c} failed: reason withheld" if c in failing else f"[+]{c} ok" for c in CHECKS]
        kind = path.lstrip("/")
        if failing:
            self.send(500, "\n".join(lines) + f"\n{kind} check failed\n", "text/plain; charset=utf-8")
        elif verbose:
            self.send(200, "\n".join(lines) + f"\n{kind} check passed\n", "text/plain; charset=utf-8")
        else:
            self.send(200, "ok", "text/plain; charset=utf-8")

    def status(self, code, reason, message):
        self.send(code, json.dumps({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": {},
            "code": code,
        }, indent=2) + "\n")

    def user(self):
        """The authenticated user: a client certificate's CN, or the lab token's ServiceAccount."""
        cert = self.connection.getpeercert()  # only a certificate the lab CA signed gets here
        if cert:
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        return value
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer ") and os.path.exists(LAB_TOKEN):
            with open(LAB_TOKEN) as file:
                if header[len("Bearer "):].strip() == file.read().strip():
                    return "system:serviceaccount:kube-system:apidns-discover"
        return None

    def relay(self):
        """GET (list, watch, discovery documents) from the cluster store, as kube-apiserver from etcd."""
        user = self.user()
        if user is None:
            self.status(401, "Unauthorized", "Unauthorized")
            return
        try:
            with open(f"{STORE_DIR}/token.kubeconfig") as file:
                token = next(line.split(":", 1)[1].strip() for line in file if line.strip().startswith("token:"))
            context = ssl.create_default_context(cafile=f"{STORE_DIR}/ca.crt")
            host, _, port = STORE.rpartition(":")
            # Bookmarks come every second: a store silent for 30 s is gone.
            upstream = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
            headers = {"Authorization": f"Bearer {token}"}
            for name in ("Accept", "User-Agent"):
                if name in self.headers:
                    headers[name] = self.headers[name]
            upstream.request("GET", self.path, headers=headers)
            response = upstream.getresponse()
        except (OSError, StopIteration, http.client.HTTPException) as error:
            log(f"{self.client_address[0]} {user}: the store is unreachable: {error}")
            self.status(503, "ServiceUnavailable", f"the cluster store is unreachable: {error}")
            return
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.getheader("Content-Type", "application/json"))
            self.send_header("X-Lab-Server", NAME)
            length = response.getheader("Content-Length")
            if length is not None:
                body = response.read()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            # A watch: one chunk out for each piece in, as it comes.
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                try:
                    data = response.read1(65536)
                except (OSError, http.client.HTTPException):
                    # The store cut the stream: cut it here too (no last chunk), as a broken
                    # connection between kube-apiserver and its client would.
                    self.close_connection = True
                    return
                if not data:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
        finally:
            upstream.close()

    def do_GET(self):  # noqa: N802 - the base class's name
        path, _, query = self.path.partition("?")
        if self.command == "GET" and STORE and (path in ("/api", "/apis") or path.startswith(("/api/", "/apis/"))):
            self.relay()
        elif path in ("/readyz", "/livez", "/healthz"):
            self.health(path, "verbose" in query)
        elif path == "/version":
            self.send(200, json.dumps({
                "major": "1",
                "minor": "32",
                "gitVersion": "v1.32.0-lab",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.23.0",
                "compiler": "gc",
                "platform": "linux/amd64",
                "labServer": NAME,
            }, indent=2) + "\n")
        else:
            self.status(403, "Forbidden", f'forbidden: User "system:anonymous" cannot get path "{path}"')

    do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, context):
        self.context = context
        self.connections = set()
        self.lock = threading.Lock()
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread: a client that connects and
        # says nothing (a TCP probe, a port scan) never holds up the accept loop.
        request.settimeout(Handler.timeout)
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as error:
            log(f"{client_address[0]} TLS handshake failed: {error}")
            return
        with self.lock:
            self.connections.add(conn)
        try:
            Handler(conn, client_address, self)
        except OSError:
            pass
        finally:
            with self.lock:
                self.connections.discard(conn)
            conn.close()

    def handle_error(self, request, client_address):
        log(f"{client_address[0]} error: {sys.exc_info()[1]}")

    def reset_connections(self):
        with self.lock:
            connections = list(self.connections)
        for conn in connections:
            try:  # close with RST, as the kernel does for the sockets of a process that dies
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--cert", default=f"/lab/pki/{NAME}.pem")
    parser.add_argument("--key", default=f"/lab/pki/{NAME}-key.pem")
    parser.add_argument("--pidfile", default="/run/apiserver.pid")
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    # Asks for a client certificate and checks one that is sent against the lab CA, as
    # kube-apiserver with --client-ca-file; a client without one goes on (token or anonymous).
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(LAB_CA)
    context.set_alpn_protocols(["http/1.1"])

    # Signals are taken synchronously by the main thread; every other thread blocks them.
    signals = {signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    with open(args.pidfile, "w") as pidfile:
        pidfile.write(f"{os.getpid()}\n")

    server = None

    def start():
        nonlocal server
        server = Server((args.listen, args.port), context)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        log(f"listening on {args.listen}:{args.port}")

    def stop():
        nonlocal server
        server.shutdown()
        server.server_close()
        server.reset_connections()
        server = None
        log("stopped: the port is closed, connections are refused")

    start()
    while True:
        received = signal.sigwait(signals)
        if received in (signal.SIGTERM, signal.SIGINT):
            log(f"exiting on {signal.Signals(received).name}")
            return
        if received == signal.SIGUSR1 and server is not None:
            stop()
        elif received == signal.SIGUSR2 and server is None:
            start()


if __name__ == "__main__":
    main()
