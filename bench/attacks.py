#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What each attack costs a credentialed client: latency, and the daemon's threads and RSS.

    bench/attacks.py [--calls N] [--out FILE]

Needs the tree built. Runs one daemon with [auth] on (loopback, a tiny image, its own CID
registry) and, for each attack in turn, starts the attacker, waits until it is in place, then
times N credentialed Status calls (a new connection each, as a script's curl makes) while
sampling the daemon's threads and RSS every 10 ms, reads the daemon's CPU time over a window
of at least 5 s, and its threads and RSS again once the attack is over. The last row boots the
test guest (skipped with --no-guest) writing its serial console flat out. Prints a markdown table; --out also writes
the rows as JSON. The tests (tests/daemon/) assert the bounds; this only measures.
"""
import argparse
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import percentile, proc_status, wait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VMM = os.path.join(ROOT, "build/tools/dstack-vmm/dstack-vmm")
TOKEN = "bench-token"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Conn:
    """One raw HTTP/1.1 connection, so an attacker can hold it, trickle on it or reuse it."""

    def __init__(self, port, source="127.0.0.1", timeout=30):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    def request(self, method, path, body=b"", headers=()):
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers)
        self.s.sendall(head.encode() + b"\r\n" + body)
        return self.reply()

    def reply(self):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.s.recv(65536)
            if not chunk:
                return ""
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            chunk = self.s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return head.decode(errors="replace")

    def close(self):
        self.s.close()


AUTH = (("Authorization", f"Bearer {TOKEN}"), ("Content-Type", "application/json"))


def credentialed_status(port):
    c = Conn(port, timeout=10)
    try:
        return c.request("POST", "/prpc/Status?json", b"{}", AUTH).startswith("HTTP/1.1 200")
    finally:
        c.close()


def bodies():
    """The decode-amplification bodies: 500k port mappings in protobuf, 200k in JSON."""
    def varint(n):
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out
    port = b"\x0a\x03tcp\x10\x90\x3f\x18\x50"
    pb = b"\x0a\x01x" + (b"\x3a" + varint(len(port)) + port) * 500000
    js = ('{"name":"x","ports":[' + ",".join(['{"protocol":"tcp","host_port":8080,"vm_port":80}'] * 200000) + "]}").encode()
    return pb, js


class Attack:
    """Threads running one attacker loop until stopped; ready() once each has its foothold."""

    def __init__(self, loop, count):
        self.stop = threading.Event()
        self.started = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(loop,), daemon=True) for _ in range(count)]

    def run(self, loop):
        with self.lock:
            self.started += 1
        while not self.stop.is_set():
            try:
                loop(self.stop)
            except OSError:
                self.stop.wait(0.01)

    def begin(self):
        for t in self.threads:
            t.start()
        wait(lambda: self.started == len(self.threads), 20, 0.01)
        time.sleep(0.5)  # every loop past its first request: the attack at full strength

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=35)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--out")
    ap.add_argument("--no-guest", action="store_true", help="leave out the row that boots a guest")
    args = ap.parse_args()
    if not os.path.exists(VMM):
        sys.exit("build the tree first (./scripts/test.sh or ./scripts/run.sh)")
    tmp = tempfile.mkdtemp(prefix="vmm-attackbench.")
    port = free_port()
    os.makedirs(f"{tmp}/images/img")
    with open(f"{tmp}/images/img/metadata.json", "w") as f:
        f.write('{"kernel":"k","initrd":"i","version":"0.6.0","shared_ro":true}')
    for name in ("k", "i"):
        open(f"{tmp}/images/img/{name}", "w").close()
    with open(f"{tmp}/vmm.toml", "w") as f:
        f.write(f'address = "127.0.0.1"\nport = {port}\nrun_path = "vms"\n[image]\npath = "images"\n'
                f'[cvm]\nplatform = "none"\naccel = "tcg"\nguest_channel = "user-net"\n'
                f'[auth]\nenabled = true\ntokens = ["{TOKEN}"]\n')
    guest = None
    if not args.no_guest:  # the test guest, for the chatty-console row
        built = subprocess.run([os.path.join(ROOT, "tests/guest/build-image.sh"), os.path.join(ROOT, "build/guest-image")],
                               capture_output=True, text=True)
        if built.returncode == 0:
            guest = os.path.basename(built.stdout.strip().splitlines()[-1])
            shutil.copytree(built.stdout.strip().splitlines()[-1], f"{tmp}/images/{guest}")
        else:
            print("# the test guest image did not build; the chatty-console row is skipped", file=sys.stderr)
    env = dict(os.environ, DSTACK_VMM_CID_REGISTRY=f"{tmp}/cids.json")
    daemon = subprocess.Popen([VMM, "-c", "vmm.toml"], cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        def up():
            try:
                return credentialed_status(port)
            except OSError:
                return False
        wait(up, 20, 0.05)
        pb, js = bodies()
        create = json.dumps({"name": "x", "image": "img", "vcpu": 1, "memory": 256, "disk_size": 1, "stopped": True,
                             "compose_file": json.dumps({"manifest_version": 2, "name": "x", "runner": "r"})}).encode()

        def unauth_keepalive(stop):
            c = Conn(port, "127.0.0.2")
            while not stop.is_set() and c.request("POST", "/prpc/Status?json", b"{}", (("Content-Type", "application/json"),)):
                pass
            c.close()

        def idle(stop):
            c = Conn(port, "127.0.0.2")
            while not stop.is_set() and c.s.recv(4096):
                pass
            c.close()

        def cross_site(stop):
            c = Conn(port, "127.0.0.2")
            c.request("POST", "/prpc/CreateVm?json", create, (("Content-Type", "text/plain"), ("Origin", "http://attacker.example")))
            c.close()

        def decode_pb(stop):
            c = Conn(port, "127.0.0.2")
            c.request("POST", "/prpc/CreateVm", pb, AUTH[:1] + (("Content-Type", "application/octet-stream"),))
            c.close()

        def decode_json(stop):
            c = Conn(port, "127.0.0.2")
            c.request("POST", "/prpc/CreateVm?json", js, AUTH)
            c.close()

        def create_waiting_on_lock(stop):
            c = Conn(port, "127.0.0.2")
            c.request("POST", "/prpc/CreateVm?json", create, AUTH)
            c.close()

        def decode_mix(stop):
            (decode_json if threading.current_thread().name.endswith("0") else decode_pb)(stop)

        lock_holder = {}

        def hold_registry_lock():
            f = open(f"{tmp}/cids.json.lock", "a")
            fcntl.flock(f, fcntl.LOCK_EX)
            lock_holder["f"] = f

        chatty = {}

        def rpc(method, body):
            c = Conn(port, timeout=30)
            try:
                c.request("POST", f"/prpc/{method}?json", json.dumps(body).encode(), AUTH)
            finally:
                c.close()

        def last_line_number():
            try:
                with open(chatty["log"], "rb") as f:
                    f.seek(max(0, os.path.getsize(chatty["log"]) - 4096))
                    nums = re.findall(rb"E2E-STREAM (\d+) ", f.read())
                return int(nums[-1]) if nums else 0
            except OSError:
                return 0

        def start_chatty_guest():
            compose = json.dumps({"manifest_version": 2, "name": "chatty", "runner": "docker-compose", "e2e_log_stream": True})
            c = Conn(port, timeout=30)
            body = json.dumps({"name": "chatty", "image": guest, "vcpu": 1, "memory": 256, "disk_size": 1, "compose_file": compose})
            c.s.sendall(f"POST /prpc/CreateVm?json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
                        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\r\n{body}".encode())
            data = b""
            while not data.endswith(b"}"):
                data += c.s.recv(65536)
            c.close()
            chatty["id"] = json.loads(data.partition(b"\r\n\r\n")[2])["id"]
            chatty["log"] = f"{tmp}/vms/{chatty['id']}/serial.log"
            wait(lambda: last_line_number() > 0, 180, 0.1)
            chatty["first"] = (last_line_number(), time.perf_counter())

        def stop_chatty_guest():
            n, t = last_line_number(), time.perf_counter()
            chatty["rate"] = (n - chatty["first"][0]) / (t - chatty["first"][1])
            rpc("StopVm", {"id": chatty["id"]})
            rpc("RemoveVm", {"id": chatty["id"]})

        def release_registry_lock():
            lock_holder.pop("f").close()

        # (label, attacker loop, attackers, set-up, tear-down)
        phases = [
            ("quiet", None, 0, None, None),
            ("cross-site simple POSTs (text/plain CreateVm, foreign Origin), 8 loops", cross_site, 8, None, None),
            ("150 keep-alive connections of unauthenticated requests", unauth_keepalive, 150, None, None),
            ("300 idle connections, reopened when closed", idle, 300, None, None),
            ("8 loops of 6.5 MB protobuf / 9.5 MB JSON CreateVm (500k / 200k ports)", decode_mix, 8, None, None),
            ("CID registry lock held by another process, 4 CreateVm waiting on it", create_waiting_on_lock, 4,
             hold_registry_lock, release_registry_lock),
        ]
        if guest:
            phases.append(("a guest writing its serial console as fast as it can", None, 0, start_chatty_guest, stop_chatty_guest))
        tick = os.sysconf("SC_CLK_TCK")

        def cpu_seconds():
            with open(f"/proc/{daemon.pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            return (int(fields[11]) + int(fields[12])) / tick  # utime + stime

        for label, loop, count, setup, teardown in phases:
            if setup:
                setup()
            attack = Attack(loop, count) if loop else None
            if attack:
                for i, t in enumerate(attack.threads):
                    t.name = f"attacker-{i}"
                attack.begin()
            peak = {"rss_kb": 0, "threads": 0}
            sampling = threading.Event()

            def sample():
                while not sampling.is_set():
                    st = proc_status(daemon.pid)
                    peak["rss_kb"] = max(peak["rss_kb"], st["rss_kb"])
                    peak["threads"] = max(peak["threads"], st["threads"])
                    sampling.wait(0.01)
            sampler = threading.Thread(target=sample)
            sampler.start()
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            lat, failed = [], 0
            for _ in range(args.calls):
                t1 = time.perf_counter()
                try:
                    ok = credentialed_status(port)
                except OSError:
                    ok = False
                if ok:
                    lat.append((time.perf_counter() - t1) * 1000)
                else:
                    failed += 1
            time.sleep(max(0.0, 5 - (time.perf_counter() - t0)))  # a window long enough to read CPU time in ticks
            cpu = (cpu_seconds() - cpu0) / (time.perf_counter() - t0) * 100
            sampling.set()
            sampler.join()
            if attack:
                attack.end()
            if teardown:
                teardown()
            time.sleep(0.5)  # what stays once the attack is over
            after = proc_status(daemon.pid)
            if "rate" in chatty:
                label += f" ({chatty.pop('rate'):.0f} lines/s)"
            row = {"attack": label, "p50_ms": percentile(lat, 50) if lat else None, "max_ms": max(lat) if lat else None,
                   "failed": failed, "calls": args.calls, "cpu_percent": round(cpu), "threads": peak["threads"],
                   "rss_mib": round(peak["rss_kb"] / 1024, 1), "rss_after_mib": round(after["rss_kb"] / 1024, 1),
                   "threads_after": after["threads"]}
            rows.append(row)
            print(f"# {label}: p50 {row['p50_ms']:.1f} ms, max {row['max_ms']:.1f} ms, {failed} failed; daemon CPU {row['cpu_percent']} %, "
                  f"peak {row['threads']} threads, {row['rss_mib']} MiB; after {row['threads_after']} threads, {row['rss_after_mib']} MiB",
                  file=sys.stderr, flush=True)
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
        subprocess.run(["pkill", "-9", "-f", tmp])
        subprocess.run(["rm", "-rf", tmp])
    print("| attack | credentialed Status p50 | max | failed | daemon CPU | threads (peak) | RSS (peak) | RSS after |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['attack']} | {r['p50_ms']:.1f} ms | {r['max_ms']:.1f} ms | {r['failed']}/{r['calls']} | {r['cpu_percent']} % | {r['threads']} | {r['rss_mib']} MiB | {r['rss_after_mib']} MiB |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
