#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""libvirt side by side: the same guest (kernel, initrd, memory, one vCPU, TCG) under libvirtd.

    /usr/bin/python3 bench/libvirt_side.py --image DIR [--repeat N] [--vms N] [--running N]
                                           [--started-once N]

Run by bench/run, which reads the JSON this prints on its last line. Debian's python3-libvirt
is built for /usr/bin/python3, hence the interpreter. Uses a running libvirtd (qemu:///system);
when none runs and libvirtd is installed, starts one (and virtlogd) and stops them at the end.
Start-up and kill -9 re-adoption are measured only on a libvirtd this script started: it does
not restart a daemon it does not own. Every domain it defines is named vmmbench-* and is
removed at the end; nothing else is touched.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading

import libvirt

from benchlib import now, percentile, pid_alive, proc_status, summary, wait

URI = "qemu:///system"
SOCK = "/var/run/libvirt/libvirt-sock"
PREFIX = "vmmbench-"


def libvirtd_pid():
    out = subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


class Side:
    def __init__(self, image, tmp):
        self.tmp = tmp
        os.chmod(tmp, 0o755)  # QEMU runs as libvirt-qemu and reads the kernel from here
        meta = json.load(open(os.path.join(image, "metadata.json")))
        self.kernel = os.path.join(tmp, meta["kernel"])
        self.initrd = os.path.join(tmp, meta["initrd"])
        for src, dst in ((meta["kernel"], self.kernel), (meta["initrd"], self.initrd)):
            shutil.copyfile(os.path.join(image, src), dst)
            os.chmod(dst, 0o644)
        self.cmdline = meta.get("cmdline", "console=ttyS0")
        self.owned = False
        self.owned_virtlogd = False
        self.conn = None

    def start_daemon(self):
        t0 = now()
        if not subprocess.run(["pgrep", "-x", "virtlogd"], capture_output=True).stdout:
            subprocess.run(["virtlogd", "-d"], check=True)
            self.owned_virtlogd = True
        subprocess.run(["libvirtd", "-d"], check=True)
        self.owned = True
        wait(lambda: self.try_connect(), 60, 0.002)
        return now() - t0

    def try_connect(self):
        try:
            self.conn = libvirt.open(URI)
            self.conn.listAllDomains(0)
            return True
        except libvirt.libvirtError:
            self.conn = None
            return False

    def xml(self, name):
        log = os.path.join(self.tmp, f"{name}.serial")
        return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>{self.kernel}</kernel>
    <initrd>{self.initrd}</initrd><cmdline>{self.cmdline}</cmdline></os>
  <features><acpi/></features>
  <seclabel type='none' model='dac'/>
  <devices>
    <serial type='file'><source path='{log}'/></serial>
    <interface type='user'><model type='virtio'/></interface>
    <memballoon model='none'/>
  </devices>
</domain>"""

    def define(self, name):
        return self.conn.defineXML(self.xml(name))

    def qemu_pid(self, name):
        path = f"/var/run/libvirt/qemu/{name}.pid"
        wait(lambda: os.path.exists(path) and open(path).read().strip(), 10)
        return int(open(path).read())

    def serial_has(self, name, marker):
        try:
            with open(os.path.join(self.tmp, f"{name}.serial"), "rb") as f:
                return marker in f.read()
        except FileNotFoundError:
            return False

    def cleanup(self):
        if self.conn is None and not self.try_connect():
            return
        for dom in self.conn.listAllDomains(0):
            if dom.name().startswith(PREFIX):
                try:
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
                except libvirt.libvirtError:
                    pass


def bench_lifecycle(s, repeat, r):
    create, stop, ready, shutdown = [], [], [], []
    for i in range(repeat):
        name = f"{PREFIX}life{i}"
        t0 = now()
        dom = s.define(name)
        dom.create()
        wait(lambda: dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING, 30)
        create.append((now() - t0) * 1000)
        pid = s.qemu_pid(name)
        t0 = now()
        dom.destroy()
        wait(lambda: not pid_alive(pid), 30)
        stop.append((now() - t0) * 1000)
        os.unlink(os.path.join(s.tmp, f"{name}.serial"))
        t0 = now()
        dom.create()
        wait(lambda: s.serial_has(name, b"E2E-GUEST-READY"), 120, 0.01)
        ready.append((now() - t0) * 1000)
        t0 = now()
        dom.shutdown()
        wait(lambda: dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF, 60, 0.005)
        shutdown.append((now() - t0) * 1000)
        dom.undefine()
    r["create_to_running_ms"] = summary(create)
    r["forced_stop_ms"] = summary(stop)
    r["start_to_guest_ready_ms"] = summary(ready)
    r["graceful_shutdown_ms"] = summary(shutdown)


def time_listing(conn, stats, calls):
    samples = []
    for _ in range(calls):
        t0 = now()
        conn.getAllDomainStats(stats)
        samples.append((now() - t0) * 1000)
    return {"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99)}


def throughput(seconds=3.0, threads=8):
    count = [0]
    lock = threading.Lock()
    stop = now() + seconds

    def worker():
        c = libvirt.open(URI)
        n = 0
        while now() < stop:
            c.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE)
            n += 1
        c.close()
        with lock:
            count[0] += n

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return count[0] / seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--running", type=int, default=10)
    ap.add_argument("--started-once", type=int, default=100)
    args = ap.parse_args()
    libvirt.registerErrorHandler(lambda ctx, err: None, None)  # errors are raised; do not print them too
    if libvirtd_pid() is None and shutil.which("libvirtd") is None:
        print(json.dumps({"skipped": "libvirtd is not installed (apt-get install libvirt-daemon-system)"}))
        return
    tmp = tempfile.mkdtemp(prefix="vmm-bench-libvirt.")
    s = Side(args.image, tmp)
    r = {"uri": URI, "version": libvirt.getVersion()}
    try:
        if libvirtd_pid() is None:
            s.start_daemon()
        elif not s.try_connect():
            raise RuntimeError(f"cannot connect to {URI}")
        s.cleanup()  # a run that was interrupted
        pid = libvirtd_pid()
        r["owned_daemon"] = s.owned
        r["footprint_idle"] = proc_status(pid)
        print("libvirt: lifecycle ...", file=sys.stderr, flush=True)
        bench_lifecycle(s, args.repeat, r)
        print(f"libvirt: listing at 1, 100 and {args.vms} defined domains ...", file=sys.stderr, flush=True)
        calls = max(20, args.repeat * 20)
        defined, scale, define_ms = 0, {}, []
        for target in [n for n in (1, 50, 100, args.vms) if n <= args.vms]:
            while defined < target:
                t0 = now()
                s.define(f"{PREFIX}s{defined}")
                define_ms.append((now() - t0) * 1000)
                defined += 1
            scale[str(target)] = {"brief": time_listing(s.conn, libvirt.VIR_DOMAIN_STATS_STATE, calls),
                                  "full": time_listing(s.conn, 0, calls)}
            if target == 50:
                r["listing_throughput_rps"] = throughput()
        r["listing_defined"] = {k: v for k, v in scale.items() if k != "50"}
        r["define_ms"] = {"first_tenth": statistics.median(define_ms[:max(1, len(define_ms) // 10)]),
                          "last_tenth": statistics.median(define_ms[-max(1, len(define_ms) // 10):])}
        r["footprint_defined"] = proc_status(libvirtd_pid())
        for _ in range(1000):
            s.conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE)
        r["footprint_after_1000_listings"] = proc_status(libvirtd_pid())
        if s.owned:
            startup = []
            for _ in range(args.repeat):
                os.kill(libvirtd_pid(), signal.SIGTERM)
                wait(lambda: libvirtd_pid() is None and not os.path.exists("/var/run/libvirtd.pid"), 30, 0.005)
                startup.append(s.start_daemon() * 1000)
            r["startup_ms"] = summary(startup)
        # Started once each, then stopped: does it grow?
        once = min(args.started_once, defined)
        print(f"libvirt: {once} domains each started once ...", file=sys.stderr, flush=True)
        start_ms, stop_ms = [], []
        for i in range(once):
            dom = s.conn.lookupByName(f"{PREFIX}s{i}")
            t0 = now()
            dom.create()
            start_ms.append((now() - t0) * 1000)
            t0 = now()
            dom.destroy()
            stop_ms.append((now() - t0) * 1000)
        tenth = max(1, once // 10)
        r["started_once"] = {"count": once, "start_first_tenth_ms": statistics.median(start_ms[:tenth]),
                             "start_last_tenth_ms": statistics.median(start_ms[-tenth:]),
                             "stop_first_tenth_ms": statistics.median(stop_ms[:tenth]),
                             "stop_last_tenth_ms": statistics.median(stop_ms[-tenth:])}
        t0 = now()
        for i in range(defined):
            s.conn.lookupByName(f"{PREFIX}s{i}").undefine()
        r["remove_all_s"] = now() - t0
        r["remove_all_count"] = defined
        print(f"libvirt: {args.running} running guests ...", file=sys.stderr, flush=True)
        names = [f"{PREFIX}run{i}" for i in range(args.running)]
        for name in names:
            s.define(name).create()
        for name in names:
            wait(lambda: s.serial_has(name, b"E2E-GUEST-READY"), 180, 0.05)
        r["footprint_running"] = {"guests": args.running, **proc_status(libvirtd_pid())}
        if s.owned:
            pids = [s.qemu_pid(n) for n in names]
            os.kill(libvirtd_pid(), signal.SIGKILL)
            wait(lambda: libvirtd_pid() is None, 30, 0.001)
            os.unlink("/var/run/libvirtd.pid") if os.path.exists("/var/run/libvirtd.pid") else None
            t0 = now()
            s.start_daemon()

            def all_running():
                doms = [d for d in s.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING)
                        if d.name().startswith(f"{PREFIX}run")]
                return len(doms) == args.running

            wait(all_running, 60, 0.002)
            r["readopt_after_kill9_ms"] = (now() - t0) * 1000
            r["readopt_lost"] = sum(0 if pid_alive(p) else 1 for p in pids)
    finally:
        s.cleanup()
        if s.owned:
            pid = libvirtd_pid()
            if pid:
                os.kill(pid, signal.SIGTERM)
                try:
                    wait(lambda: libvirtd_pid() is None, 30, 0.01)
                except TimeoutError:
                    pass
        if s.owned_virtlogd:
            subprocess.run(["pkill", "-x", "virtlogd"], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
