#!/usr/bin/env python3
"""The soak with faults (issue #19, point 5); benches/soak.sh builds apidns and runs this.

One apidns (the release binary) serves k8s.test. on loopback with a pool `api` of four members,
real TCP listeners on 127.0.0.121-124, probed over held connections. For the whole run:

- dnsperf loads it at half the capacity measured at the start;
- members die (their listener is SIGKILLed) and come back every few seconds, at most two at once;
- every 10 s the zone file is rewritten (drain one member, then undrain it) and SIGHUP sent;
- every 5 s nsupdate (TSIG) adds 127.0.0.125 to the pool or removes it;
- every 5 min (or a third of a short run) apidns is SIGKILLed right after an update is
  acknowledged and restarted on the same state_dir, so that the journal replays.

Meanwhile a sampler sends 20 queries/s for api.k8s.test A and logs each send time and answer,
every fault and change goes into an event log with its time, and RSS and open descriptors are read
from /proc every 10 s. At the end every sampled answer is checked against the state that held
when it was sent (see `check`), and a summary is printed and written to summary.json.

Only loopback, only processes this script starts; everything lives in the work directory given
as the first argument.
"""

import base64
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

WORK = sys.argv[1]
BINARY = sys.argv[2]
MINUTES = float(os.environ.get("SOAK_MINUTES", "30"))
DURATION = MINUTES * 60
# A kill every 5 minutes; a short run still gets three.
KILL_EVERY = float(os.environ.get("SOAK_KILL_SECONDS", str(min(300.0, DURATION / 3))))
DNS_PORT = int(os.environ.get("SOAK_DNS_PORT", "25454"))
HTTP_PORT = int(os.environ.get("SOAK_HTTP_PORT", "25480"))
MEMBER_PORT = int(os.environ.get("SOAK_MEMBER_PORT", "27443"))
STATIC = ["127.0.0.121", "127.0.0.122", "127.0.0.123", "127.0.0.124"]
UPDATED = "127.0.0.125"  # added and removed by nsupdate
DRAINED = STATIC[3]  # drained and undrained by the reloads
POOL = "api.k8s.test."
SAMPLES_PER_SECOND = 20

# The probe settings of the zone, and the detection bound derived from them. A member whose
# listener dies is normally seen at once (its held connection ends and the reconnect is
# refused); when nothing is held (the member came back moments ago, or re-holding backs off) the
# periodic probes see it within interval + (fall - 1) x fast_interval, plus at most one timeout.
# The margin covers scheduling on a loaded machine (2 cores shared with builds).
INTERVAL, TIMEOUT, FAST_INTERVAL, FALL, RISE = 1.0, 0.5, 0.2, 2, 2
MARGIN = 0.3
DETECTION_BOUND = INTERVAL + (FALL - 1) * FAST_INTERVAL + TIMEOUT + MARGIN

SECRET = base64.b64encode(os.urandom(32)).decode()
T0 = time.monotonic()


def now():
    return time.monotonic() - T0


# ---------------------------------------------------------------------------------------------
# The event log: every fault and change, with its time, for the checker and for reading.

events = []
events_lock = threading.Lock()
events_file = open(os.path.join(WORK, "events.jsonl"), "w")


def event(kind, **detail):
    with events_lock:
        record = {"t": round(now(), 4), "kind": kind, **detail}
        events.append(record)
        events_file.write(json.dumps(record) + "\n")
        events_file.flush()
    return record["t"]


# ---------------------------------------------------------------------------------------------
# Configuration.


def write_config(drained):
    with open(os.path.join(WORK, "apidns.toml"), "w") as out:
        out.write(
            f"""[server]
listen = ["127.0.0.1:{DNS_PORT}"]
http = "127.0.0.1:{HTTP_PORT}"
zones = "zones"
state_dir = "state"

[probe]
interval = "{int(INTERVAL * 1000)}ms"
timeout = "{int(TIMEOUT * 1000)}ms"
fast_interval = "{int(FAST_INTERVAL * 1000)}ms"
rise = {RISE}
fall = {FALL}

[[tsig]]
name = "soak-key"
algorithm = "hmac-sha256"
secret = "{SECRET}"
"""
        )
    write_zone(drained)


def write_zone(drained):
    """Writes the zone file whole under another name and renames it, so that a reload triggered
    by the change never reads half a file."""
    zones = os.path.join(WORK, "zones")
    os.makedirs(zones, exist_ok=True)
    members = ", ".join(f'"{address}"' for address in STATIC)
    drain = f'"{DRAINED}"' if drained else ""
    text = f"""origin = "k8s.test."
ttl = 300
update = {{ keys = ["soak-key"], allow = "pool-members" }}
records = [
  {{ name = "@", type = "NS", value = "ns1" }},
  {{ name = "ns1", type = "A", value = "127.0.0.53" }},
]
[soa]
mname = "ns1"
rname = "hostmaster"
minimum = 5
[pool.api]
ttl = 5
port = {MEMBER_PORT}
# NODATA rather than every member when none is up: right after a restart every member is
# pending, and the soak holds every answer to the probes' verdicts.
all_down = "none"
members = [{members}]
drain = [{drain}]
"""
    with open(os.path.join(zones, "k8s.test.toml.next"), "w") as out:
        out.write(text)
    os.replace(os.path.join(zones, "k8s.test.toml.next"), os.path.join(zones, "k8s.test.toml"))


# ---------------------------------------------------------------------------------------------
# DNS on the wire: enough to send a query and read the A records of its answer.


def dns_query(identity, name, record_type=1):
    header = struct.pack(">HHHHHH", identity, 0, 1, 0, 0, 0)
    labels = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split("."))
    return header + labels + b"\0" + struct.pack(">HH", record_type, 1)


def skip_name(message, offset):
    while True:
        length = message[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        offset += 1 + length


def dns_answer(message):
    """(id, rcode, addresses of the A records in the answer section)."""
    identity, flags, questions, answers = struct.unpack(">HHHH", message[:8])
    offset = 12
    for _ in range(questions):
        offset = skip_name(message, offset) + 4
    addresses = []
    for _ in range(answers):
        offset = skip_name(message, offset)
        record_type, _, _, length = struct.unpack(">HHIH", message[offset : offset + 10])
        offset += 10
        if record_type == 1 and length == 4:
            addresses.append(socket.inet_ntoa(message[offset : offset + 4]))
        offset += length
    return identity, flags & 0xF, addresses


def ask(name, record_type=1, timeout=0.5):
    """One query over UDP: (rcode, addresses), or None without an answer in time."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        identity = random.randrange(65536)
        sock.sendto(dns_query(identity, name, record_type), ("127.0.0.1", DNS_PORT))
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                message, _ = sock.recvfrom(4096)
            except (socket.timeout, OSError):
                return None
            try:
                got, rcode, addresses = dns_answer(message)
            except (struct.error, IndexError):
                return ("unparsable", [])
            if got == identity:
                return (rcode, addresses)


# ---------------------------------------------------------------------------------------------
# The members: one listener process each, which accepts connections and keeps them (held
# probes hold one). SIGKILL closes them all at once, as a dying API server's kernel does.

LISTENER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(128)
held = []
while True:
    c, _ = s.accept(); held.append(c)
    held = [k for k in held if k.fileno() >= 0][-64:]
"""


children = []  # every listener started, to be killed at the end whatever happens


class Member:
    def __init__(self, address):
        self.address = address
        self.process = None

    def start(self):
        event("member-up", member=self.address)
        self.process = subprocess.Popen(
            [sys.executable, "-c", LISTENER, self.address, str(MEMBER_PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        children.append(self.process)
        # Listening before anyone counts on it: the churn never kills a member that is not.
        for _ in range(100):
            try:
                socket.create_connection((self.address, MEMBER_PORT), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)

    def kill(self):
        self.process.kill()
        self.process.wait()
        # Logged once the process is gone, and with it every connection it held.
        event("member-down", member=self.address)
        self.process = None

    @property
    def up(self):
        return self.process is not None


# ---------------------------------------------------------------------------------------------
# apidns: started, killed and restarted on the same state_dir.


class Server:
    def __init__(self):
        self.process = None
        self.incarnation = 0
        self.lock = threading.Lock()  # a reload and a restart never overlap

    def log_path(self):
        return os.path.join(WORK, f"apidns-{self.incarnation}.log")

    def start(self):
        self.incarnation += 1
        log = open(self.log_path(), "w")
        started = now()
        self.process = subprocess.Popen(
            [BINARY, "serve", "--config", os.path.join(WORK, "apidns.toml"), "--log-level", "info"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"apidns exited at start: see {self.log_path()}")
            if ask("k8s.test.", 6, timeout=0.2) is not None:
                break
            time.sleep(0.02)
        else:
            raise SystemExit(f"apidns did not answer within 60 s: see {self.log_path()}")
        ready = event(
            "ready",
            pid=self.process.pid,
            incarnation=self.incarnation,
            seconds=round(now() - started, 3),
            drained=state.drained,
        )
        return ready

    def kill(self):
        self.process.kill()
        self.process.wait()
        event("apidns-killed", pid=self.process.pid, incarnation=self.incarnation)

    def reloads(self):
        with open(self.log_path()) as log:
            text = log.read()
        done = sum(1 for line in text.splitlines() if "configuration reloaded" in line and "SIGHUP" in line)
        failed = sum(1 for line in text.splitlines() if "configuration not reloaded" in line)
        return done, failed

    def status(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/status", timeout=5) as reply:
            return json.load(reply)

    def members(self):
        """The pool's configured members, whatever their health."""
        for zone in self.status()["zones"]:
            for pool in zone["pools"]:
                if pool["name"] == POOL:
                    return sorted(member["address"] for member in pool["members"])
        return []


class State:
    """What the orchestrator has made true: read by the threads, written by their owners."""

    def __init__(self):
        self.drained = False
        # The updated member's membership as acknowledged, and whether an update sent since
        # went unanswered (then either state is right until the next acknowledgement).
        self.updated_present = False
        self.updated_uncertain = False
        self.acknowledged = 0
        self.last_acknowledged = None  # "add" or "delete"
        self.update_failures = 0
        self.lost = []
        self.membership_checks = 0


state = State()
server = Server()
stop = threading.Event()
update_lock = threading.Lock()  # a kill waits for the update in flight
acknowledged = threading.Condition()


# ---------------------------------------------------------------------------------------------
# The activities, each a thread.


def churn(members):
    """Kills a member or brings one back every 2-4 s; at least two of the four stay up."""
    rng = random.Random(19)
    while not stop.wait(rng.uniform(2.0, 4.0)):
        down = [member for member in members if not member.up]
        up = [member for member in members if member.up]
        if down and (len(down) >= 2 or rng.random() < 0.5):
            rng.choice(down).start()
        elif len(up) > 2:
            rng.choice(up).kill()


def reloads():
    """Every 10 s: toggle the drained member in the zone file, SIGHUP, wait for the reload."""
    while not stop.wait(10):
        with server.lock:
            state.drained = not state.drained
            before, failed_before = server.reloads()
            write_zone(state.drained)
            event("reload-write", drained=state.drained)
            server.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                done, failed = server.reloads()
                if failed > failed_before:
                    event("reload-failed", drained=state.drained)
                    break
                if done > before:
                    event("reload-confirmed", drained=state.drained)
                    break
                time.sleep(0.01)
            else:
                event("reload-unconfirmed", drained=state.drained)


def nsupdate(operation):
    verb = f"add {POOL} 5 A {UPDATED}" if operation == "add" else f"delete {POOL} A {UPDATED}"
    script = f"server 127.0.0.1 {DNS_PORT}\nzone k8s.test.\nupdate {verb}\nsend\n"
    try:
        result = subprocess.run(
            ["nsupdate", "-t", "3", "-u", "1", "-r", "2", "-y", f"hmac-sha256:soak-key:{SECRET}"],
            input=script,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return result.returncode == 0, result.stderr.strip()[-200:]
    except subprocess.TimeoutExpired:
        return False, "timeout"


def updates():
    """Every 5 s: add the updated member, or remove it, and log the acknowledgement."""
    operation = "add"
    while not stop.wait(5):
        with update_lock:
            event("update-send", op=operation)
            ok, error = nsupdate(operation)
            if ok:
                event("update-ack", op=operation)
                state.last_acknowledged = operation
                state.updated_present = operation == "add"
                state.updated_uncertain = False
                state.acknowledged += 1
            else:
                event("update-failed", op=operation, error=error)
                state.updated_uncertain = True
                state.update_failures += 1
        with acknowledged:
            acknowledged.notify_all()
        operation = "delete" if operation == "add" else "add"


def check_membership(when):
    """The pool's members must be the static ones plus what updates acknowledged."""
    members = server.members()
    expected = sorted(STATIC + ([UPDATED] if state.updated_present else []))
    alternative = sorted(STATIC + ([] if state.updated_present else [UPDATED]))
    state.membership_checks += 1
    if members == expected or (state.updated_uncertain and members == alternative):
        event("membership", when=when, members=members, ok=True)
        state.updated_present = UPDATED in members
        state.updated_uncertain = False
    else:
        event("membership", when=when, members=members, expected=expected, ok=False)
        state.lost.append({"when": when, "members": members, "expected": expected})


def kills():
    """Every KILL_EVERY s: wait for an acknowledged update (an addition and a removal in turn),
    SIGKILL apidns at once, restart it on the same state_dir, and check that the pool is what
    the acknowledgements said."""
    wanted = "add"
    while not stop.wait(KILL_EVERY):
        deadline = time.monotonic() + 12
        with acknowledged:
            state.last_acknowledged = None
            while state.last_acknowledged != wanted and not stop.is_set():
                if not acknowledged.wait(timeout=max(0.0, deadline - time.monotonic())):
                    break
        wanted = "delete" if wanted == "add" else "add"
        with update_lock, server.lock:
            if stop.is_set():
                return
            server.kill()
            server.start()
            check_membership(f"after restart {server.incarnation}")


def sampler(samples):
    """20 queries a second for the pool, each logged with its send time and answer."""
    rng = random.Random(5)
    period = 1.0 / SAMPLES_PER_SECOND
    next_send = time.monotonic()
    while not stop.is_set():
        sent = now()
        answer = ask(POOL, 1, timeout=0.5)
        samples.append((sent, now(), answer))
        next_send += period * rng.uniform(0.5, 1.5)
        delay = next_send - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_send = time.monotonic()


def resources(readings):
    """VmRSS and the number of open descriptors every 10 s, with the process's age."""
    while not stop.wait(10):
        with server.lock:
            pid, incarnation = server.process.pid, server.incarnation
        try:
            with open(f"/proc/{pid}/status") as status:
                rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, StopIteration):
            continue
        with events_lock:
            ready = max(e["t"] for e in events if e["kind"] == "ready" and e["pid"] == pid)
        readings.append({"t": round(now(), 1), "incarnation": incarnation, "age": round(now() - ready, 1), "rss_kib": rss, "fds": fds})


# ---------------------------------------------------------------------------------------------
# The check.


def intervals(start_kind, end_kind, key, value):
    """[start, end) intervals between events of two kinds whose `key` is `value`."""
    found, start = [], None
    for e in events:
        if e.get(key) != value:
            continue
        if e["kind"] == start_kind and start is None:
            start = e["t"]
        elif e["kind"] == end_kind and start is not None:
            found.append((start, e["t"]))
            start = None
    if start is not None:
        found.append((start, float("inf")))
    return found


def forbidden_updated():
    """When the updated member must not be answered: from an acknowledged removal (or a
    membership check that found it absent, or the start) until the next addition is sent."""
    found, start = [], 0.0
    for e in events:
        if e["kind"] == "update-send" and e["op"] == "add" and start is not None:
            found.append((start, e["t"]))
            start = None
        elif e["kind"] == "update-ack" and e["op"] == "delete" and start is None:
            start = e["t"]
        elif e["kind"] == "membership" and UPDATED not in e["members"] and start is None:
            start = e["t"]
    if start is not None:
        found.append((start, float("inf")))
    return found


def forbidden_drained():
    """When the drained member must not be answered: from the reload (or restart) that read
    the drain until the file that undrains it is written."""
    found, start = [], None
    for e in events:
        drains = e["kind"] in ("reload-confirmed", "ready") and e.get("drained")
        if drains and start is None:
            start = e["t"]
        elif e["kind"] == "reload-write" and not e["drained"] and start is not None:
            found.append((start, e["t"]))
            start = None
    if start is not None:
        found.append((start, float("inf")))
    return found


def within(t, spans):
    return any(start <= t < end for start, end in spans)


def check(samples):
    down = {address: intervals("member-down", "member-up", "member", address) for address in STATIC}
    updated = forbidden_updated()
    drained = forbidden_drained()
    wrong, answered, empty, unanswered, errors = [], 0, 0, 0, 0
    slowest = 0.0  # the latest a dead member was still answered after its death (within bound)
    for sent, received, answer in samples:
        if answer is None:
            unanswered += 1
            continue
        rcode, addresses = answer
        if rcode != 0:
            errors += 1
            continue
        answered += 1
        if not addresses:
            empty += 1
        for address in addresses:
            reason = None
            if address in down:
                for died, returned in down[address]:
                    if died <= sent < returned:
                        if sent - died > DETECTION_BOUND:
                            reason = f"down since {died:.3f} ({sent - died:.3f} s before the query)"
                        else:
                            slowest = max(slowest, received - died)
            if address == UPDATED and within(sent, updated):
                reason = "removed by an acknowledged update"
            if address == DRAINED and within(sent, drained):
                reason = reason or "drained"
            if address not in down and address != UPDATED:
                reason = "not a member"
            if reason:
                wrong.append({"sent": round(sent, 4), "received": round(received, 4), "address": address, "why": reason, "answer": addresses})
    return {
        "samples": len(samples),
        "answered": answered,
        "empty": empty,
        "unanswered": unanswered,
        "errors": errors,
        "wrong": wrong,
        "slowest_exclusion_seconds": round(slowest, 3),
    }


# ---------------------------------------------------------------------------------------------


def dnsperf_queries():
    path = os.path.join(WORK, "queries")
    rng = random.Random(1)
    with open(path, "w") as out:
        for i in range(10000):
            r = rng.random()
            out.write(f"{POOL} A\n" if r < 0.8 else f"{POOL} AAAA\n" if r < 0.9 else f"nope{i}.k8s.test. A\n")
    return path


def dnsperf_figures(text):
    figures = {}
    for line in text.splitlines():
        words = line.split()
        if line.strip().startswith("Queries sent:"):
            figures["sent"] = int(words[2])
        elif line.strip().startswith("Queries completed:"):
            figures["completed"] = int(words[2])
        elif line.strip().startswith("Queries lost:"):
            figures["lost"] = int(words[2])
        elif line.strip().startswith("Queries per second:"):
            figures["qps"] = float(words[3])
    return figures


def main():
    write_config(drained=False)
    members = [Member(address) for address in STATIC]
    for member in members:
        member.start()
    Member(UPDATED).start()  # the updated member always listens: its removal is the update's
    server.start()
    queries = dnsperf_queries()
    dnsperf = ["dnsperf", "-s", "127.0.0.1", "-p", str(DNS_PORT), "-d", queries, "-c", "4"]
    capacity = subprocess.run(dnsperf + ["-l", "5", "-q", "500"], capture_output=True, text=True)
    capacity_qps = dnsperf_figures(capacity.stdout).get("qps", 0.0)
    rate = max(1000, int(capacity_qps / 2))
    event("capacity", qps=capacity_qps, load=rate)
    print(f"capacity {capacity_qps:.0f} queries/s; loading at {rate}/s for {MINUTES:g} min", flush=True)
    load_out = open(os.path.join(WORK, "dnsperf.txt"), "w")
    load = subprocess.Popen(dnsperf + ["-l", str(int(DURATION)), "-Q", str(rate), "-q", "2000"], stdout=load_out, stderr=subprocess.STDOUT)

    samples, readings = [], []
    threads = [
        threading.Thread(target=churn, args=(members,)),
        threading.Thread(target=reloads),
        threading.Thread(target=updates),
        threading.Thread(target=kills),
        threading.Thread(target=sampler, args=(samples,)),
        threading.Thread(target=resources, args=(readings,)),
    ]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    while time.monotonic() - started < DURATION:
        time.sleep(min(30, DURATION - (time.monotonic() - started)))
        print(f"{now():7.0f} s: {len(samples)} samples, {state.acknowledged} updates acknowledged, apidns incarnation {server.incarnation}", flush=True)
    stop.set()
    with acknowledged:
        acknowledged.notify_all()
    for thread in threads:
        thread.join()
    load.wait()
    load_out.close()
    with update_lock, server.lock:
        check_membership("end")
    with open(os.path.join(WORK, "dnsperf.txt")) as text:
        load_figures = dnsperf_figures(text.read())
    server.kill()
    for member in members:
        if member.up:
            member.kill()
    with open(os.path.join(WORK, "samples.jsonl"), "w") as out:
        for sent, received, answer in samples:
            out.write(json.dumps({"sent": round(sent, 4), "received": round(received, 4), "answer": answer}) + "\n")
    with open(os.path.join(WORK, "resources.jsonl"), "w") as out:
        for reading in readings:
            out.write(json.dumps(reading) + "\n")

    verdict = check(samples)
    count = lambda kind: sum(1 for e in events if e["kind"] == kind)
    by_incarnation = {}
    for reading in readings:
        by_incarnation.setdefault(reading["incarnation"], []).append(reading)
    summary = {
        "minutes": MINUTES,
        "detection_bound_seconds": round(DETECTION_BOUND, 3),
        "capacity_qps": capacity_qps,
        "load_qps": rate,
        "dnsperf": load_figures,
        "sampled": verdict["samples"],
        "sampled_answered": verdict["answered"],
        "sampled_nodata": verdict["empty"],
        "sampled_unanswered": verdict["unanswered"],
        "sampled_errors": verdict["errors"],
        "wrong_answers": len(verdict["wrong"]),
        "wrong": verdict["wrong"][:20],
        "slowest_exclusion_seconds": verdict["slowest_exclusion_seconds"],
        "member_deaths": count("member-down"),
        "reloads": count("reload-confirmed"),
        "reloads_failed": count("reload-failed") + count("reload-unconfirmed"),
        "updates_acknowledged": state.acknowledged,
        "updates_failed": state.update_failures,
        "kills": count("apidns-killed") - 1,  # the last one ends the run
        "restart_seconds": [e["seconds"] for e in events if e["kind"] == "ready"][1:],
        "membership_checks": state.membership_checks,
        "updates_lost": len(state.lost),
        "lost": state.lost,
        "resources": {
            str(incarnation): {
                "first": rows[0],
                "last": rows[-1],
                "max_rss_kib": max(row["rss_kib"] for row in rows),
                "max_fds": max(row["fds"] for row in rows),
            }
            for incarnation, rows in by_incarnation.items()
        },
    }
    with open(os.path.join(WORK, "summary.json"), "w") as out:
        json.dump(summary, out, indent=1)
    report(summary)
    return 0 if not verdict["wrong"] and not state.lost else 1


def report(s):
    d = s["dnsperf"]
    print()
    print(f"soak: {s['minutes']:g} min, capacity {s['capacity_qps']:.0f} q/s, load {s['load_qps']} q/s")
    print(f"dnsperf: {d.get('sent', 0)} sent, {d.get('completed', 0)} answered, {d.get('lost', 0)} lost")
    print(
        f"sampled: {s['sampled']} queries, {s['sampled_answered']} answered ({s['sampled_nodata']} NODATA), "
        f"{s['sampled_unanswered']} unanswered, {s['sampled_errors']} errors; wrong answers: {s['wrong_answers']} "
        f"(bound {s['detection_bound_seconds']} s; slowest exclusion seen {s['slowest_exclusion_seconds']} s)"
    )
    print(
        f"faults: {s['member_deaths']} member deaths, {s['reloads']} reloads ({s['reloads_failed']} failed), "
        f"{s['kills']} SIGKILLs (restarts {s['restart_seconds']} s)"
    )
    print(
        f"updates: {s['updates_acknowledged']} acknowledged, {s['updates_failed']} failed, "
        f"{s['updates_lost']} lost ({s['membership_checks']} membership checks)"
    )
    print("incarnation  first (age s, RSS KiB, fds)   last (age s, RSS KiB, fds)   max RSS KiB  max fds")
    for incarnation, r in s["resources"].items():
        f, l = r["first"], r["last"]
        print(
            f"{incarnation:>11}  {f['age']:>7} {f['rss_kib']:>8} {f['fds']:>4}        "
            f"{l['age']:>7} {l['rss_kib']:>8} {l['fds']:>4}       {r['max_rss_kib']:>8} {r['max_fds']:>7}"
        )
    for w in s["wrong"]:
        print("WRONG", w)
    for l in s["lost"]:
        print("LOST", l)


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop.set()
        for process in [server.process] + children:
            if process is not None and process.poll() is None:
                process.kill()
