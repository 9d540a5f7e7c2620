#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# admission_flood.py PORT TOKEN DAEMON_PID ADMISSION(1|0): with [auth] on, a client without
# credentials (from 127.0.0.2) floods the daemon with keep-alive connections of
# unauthenticated requests and with idle connections it reopens as soon as they close, while
# a credentialed client (from 127.0.0.1) calls Status. Prints "ok - ..." / "not ok - ..."
# lines and the daemon's threads, RSS and the credentialed latencies under each attack.
import socket, sys, threading, time

port, token, pid, admission = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
failed = False
stop = threading.Event()
opened = [0]  # connections the flood has made (under lock)
opened_lock = threading.Lock()


def check(ok, what):
    global failed
    print(("ok - " if ok else "not ok - ") + what, flush=True)
    failed |= not ok


def proc_stat():
    status = open(f"/proc/{pid}/status").read()
    field = lambda k: int([l for l in status.splitlines() if l.startswith(k)][0].split()[1])
    return field("Threads:"), field("VmRSS:") // 1024


def connect(source):
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    if source == "127.0.0.2":
        with opened_lock:
            opened[0] += 1
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset, no TIME_WAIT pile-up
    return s


def read_reply(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head.decode(errors="replace"), rest


def status_call(auth=True):
    req = b"POST /prpc/Status?json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    if auth:
        req += f"Authorization: Bearer {token}\r\n".encode()
    return req + b"\r\n{}"


def credentialed(n):
    """n authenticated Status calls, each on a new connection; their latencies in ms (None: failed)."""
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        try:
            s = connect("127.0.0.1")
            s.sendall(status_call())
            head, _ = read_reply(s)
            s.close()
            out.append((time.monotonic() - t0) * 1000 if head.startswith("HTTP/1.1 200") else None)
        except OSError:
            out.append(None)
    return out


def unauthenticated_flood():
    """Keep-alive connections sending requests without credentials, as fast as answered."""
    while not stop.is_set():
        try:
            s = connect("127.0.0.2")
            while not stop.is_set():
                s.sendall(status_call(auth=False))
                head, _ = read_reply(s)
                if not head:
                    break
        except OSError:
            pass


def idle_flood():
    """Connections that send nothing, reopened as soon as the daemon closes them."""
    while not stop.is_set():
        try:
            s = connect("127.0.0.2")
            s.settimeout(30)
            while not stop.is_set() and s.recv(4096):
                pass
        except OSError:
            time.sleep(0.01)


def report(label, lat):
    good = [x for x in lat if x is not None]
    threads, rss = proc_stat()
    p50 = sorted(good)[len(good) // 2] if good else -1
    print(f"# {label}: credentialed Status p50 {p50:.1f} ms, max {max(good) if good else -1:.1f} ms, "
          f"{len(lat) - len(good)} failed; daemon {threads} threads, RSS {rss} MiB", flush=True)
    return good


# A 401 is answered and its connection closed: it holds nothing.
s = connect("127.0.0.2")
s.sendall(status_call(auth=False))
head, _ = read_reply(s)
check(head.startswith("HTTP/1.1 401") and "Connection: close" in head, "an unauthenticated request gets 401 and Connection: close")
if admission:  # the close rides on the accept hook, which sanitizer builds leave out
    s.settimeout(5)
    check(s.recv(1) == b"", "and the daemon closes that connection")
s.close()

# A credentialed keep-alive connection is not cut after a few requests (cpp-httplib's own cap
# is 5): a script's or the console's calls share one connection.
s = connect("127.0.0.1")
heads = []
for _ in range(20):
    s.sendall(status_call())
    heads.append(read_reply(s)[0])
s.close()
check(all(h.startswith("HTTP/1.1 200") and "Connection: close" not in h for h in heads),
      "20 credentialed calls on one keep-alive connection are all answered on it")

report("quiet", credentialed(20))
for label, target, count in (("150 keep-alive connections of unauthenticated requests", unauthenticated_flood, 150),
                             ("300 idle connections, reopened when closed", idle_flood, 300)):
    stop.clear()
    with opened_lock:
        opened[0] = 0
    workers = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # until every flood thread has its connection
        with opened_lock:
            if opened[0] >= count:
                break
        stop.wait(0.05)
    lat = credentialed(30)
    good = report(label, lat)
    check(len(good) == len(lat) and max(good) < 3000, f"under {label}: every credentialed call answers, within 3 s")
    stop.set()
    for w in workers:
        w.join(timeout=35)

if admission:
    held = []
    try:
        for _ in range(80):
            held.append(connect("127.0.0.2"))
        s = held[-1]
        s.settimeout(5)
        s.sendall(status_call())
        head, _ = read_reply(s)
        check(head.startswith("HTTP/1.1 503"), "one address holding 64 connections gets 503 for the 65th and later")
    except OSError as e:
        check(False, f"one address holding 64 connections gets 503 for the 65th and later ({e})")
    check(credentialed(1)[0] is not None, "another address is still served meanwhile")
    for h in held:
        h.close()
sys.exit(1 if failed else 0)
