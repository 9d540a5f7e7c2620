#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""libvirt side by side: the same guest (kernel, initrd, memory, one vCPU, TCG) under libvirtd.

    /usr/bin/python3 bench/libvirt_side.py --image DIR

Driven by bench/run, one step at a time, so that every row of the bench interleaves our runs,
libvirt's and the floor's instead of measuring one block after another: it reads one JSON
command a line on stdin ({"op": ..., ...}) and answers each with one JSON line on stdout
(progress goes to stderr). Debian's python3-libvirt is built for /usr/bin/python3, hence the
interpreter. Uses a running libvirtd (qemu:///system); when none runs and libvirtd is
installed, starts one (and virtlogd) and stops them at the end. Start-up and kill -9
re-adoption are measured only on a libvirtd this script started: it does not restart a daemon
it does not own. Every domain it defines is named vmmbench-* and is removed at the end; nothing
else is touched.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

import libvirt

from benchlib import now, pid_alive, proc_status, wait

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


def listing_samples(conn, stats, calls):
    samples = []
    for _ in range(calls):
        t0 = now()
        conn.getAllDomainStats(stats)
        samples.append((now() - t0) * 1000)
    return samples


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



class Steps:
    """The bench's steps on libvirt's side, one per command."""

    def __init__(self, side):
        self.s = side
        self.defined = 0  # vmmbench-s0 .. s{defined-1}
        self.removed = 0
        self.guests = []

    def hello(self):
        return {"uri": URI, "version": libvirt.getVersion(), "owned_daemon": self.s.owned,
                "footprint_idle": proc_status(libvirtd_pid())}

    def lifecycle(self, i):
        """One run: define+start -> running, destroy -> QEMU gone, start -> guest up, shutdown."""
        s, name, r = self.s, f"{PREFIX}life{i}", {}
        t0 = now()
        dom = s.define(name)
        dom.create()
        wait(lambda: dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING, 30)
        r["create_ms"] = (now() - t0) * 1000
        pid = s.qemu_pid(name)
        t0 = now()
        dom.destroy()
        wait(lambda: not pid_alive(pid), 30)
        r["stop_ms"] = (now() - t0) * 1000
        os.unlink(os.path.join(s.tmp, f"{name}.serial"))
        t0 = now()
        dom.create()
        wait(lambda: s.serial_has(name, b"E2E-GUEST-UP"), 120, 0.005)
        r["ready_ms"] = (now() - t0) * 1000
        # Its init starts acpid after the up line: a shutdown asked earlier would go unheard.
        wait(lambda: s.serial_has(name, b"E2E-GUEST-READY"), 120, 0.005)
        t0 = now()
        dom.shutdown()
        wait(lambda: dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF, 60, 0.005)
        r["shutdown_ms"] = (now() - t0) * 1000
        dom.undefine()
        return r

    def define_to(self, n):
        samples = []
        while self.defined < n:
            t0 = now()
            self.s.define(f"{PREFIX}s{self.defined}")
            samples.append((now() - t0) * 1000)
            self.defined += 1
        return {"define_ms": samples}

    def listing(self, calls):
        return {"brief": listing_samples(self.s.conn, libvirt.VIR_DOMAIN_STATS_STATE, calls),
                "full": listing_samples(self.s.conn, 0, calls)}

    def throughput(self, seconds):
        return {"rps": throughput(seconds)}

    def footprint(self):
        return proc_status(libvirtd_pid())

    def listings(self, calls):
        for _ in range(calls):
            self.s.conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE)
        return {}

    def startup(self):
        if not self.s.owned:
            return {"skipped": "libvirtd was running already: the bench does not restart a daemon it does not own"}
        os.kill(libvirtd_pid(), signal.SIGTERM)
        wait(lambda: libvirtd_pid() is None and not os.path.exists("/var/run/libvirtd.pid"), 30, 0.005)
        return {"ms": self.s.start_daemon() * 1000}

    def start_stop(self, i):
        dom = self.s.conn.lookupByName(f"{PREFIX}s{i}")
        t0 = now()
        dom.create()
        start_ms = (now() - t0) * 1000
        t0 = now()
        dom.destroy()
        return {"start_ms": start_ms, "stop_ms": (now() - t0) * 1000}

    def remove(self, count):
        t0 = now()
        end = min(self.defined, self.removed + count)
        for i in range(self.removed, end):
            self.s.conn.lookupByName(f"{PREFIX}s{i}").undefine()
        removed, self.removed = end - self.removed, end
        return {"s": now() - t0, "count": removed}

    def run_guests(self, n):
        self.guests = [f"{PREFIX}run{i}" for i in range(n)]
        for name in self.guests:
            self.s.define(name).create()
        for name in self.guests:
            wait(lambda: self.s.serial_has(name, b"E2E-GUEST-READY"), 300, 0.05)
        return {"footprint": proc_status(libvirtd_pid())}

    def readopt(self):
        if not self.s.owned:
            return {"skipped": "libvirtd was running already"}
        pids = [self.s.qemu_pid(n) for n in self.guests]
        os.kill(libvirtd_pid(), signal.SIGKILL)
        wait(lambda: libvirtd_pid() is None, 30, 0.001)
        if os.path.exists("/var/run/libvirtd.pid"):
            os.unlink("/var/run/libvirtd.pid")
        t0 = now()
        self.s.start_daemon()

        def all_running():
            doms = [d for d in self.s.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING)
                    if d.name().startswith(f"{PREFIX}run")]
            return len(doms) == len(self.guests)

        wait(all_running, 60, 0.002)
        return {"ms": (now() - t0) * 1000, "lost": sum(0 if pid_alive(p) else 1 for p in pids)}

    def stop_guests(self):
        for name in self.guests:
            dom = self.s.conn.lookupByName(name)
            dom.destroy()
            dom.undefine()
        self.guests = []
        return {}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", required=True)
    args = ap.parse_args()
    libvirt.registerErrorHandler(lambda ctx, err: None, None)  # errors are raised; do not print them too
    if libvirtd_pid() is None and shutil.which("libvirtd") is None:
        print(json.dumps({"skipped": "libvirtd is not installed (apt-get install libvirt-daemon-system)"}), flush=True)
        return
    tmp = tempfile.mkdtemp(prefix="vmm-bench-libvirt.")
    s = Side(args.image, tmp)
    try:
        if libvirtd_pid() is None:
            s.start_daemon()
        elif not s.try_connect():
            raise RuntimeError(f"cannot connect to {URI}")
        s.cleanup()  # a run that was interrupted
        steps = Steps(s)
        for line in sys.stdin:
            cmd = json.loads(line)
            op = cmd.pop("op")
            if op == "bye":
                break
            try:
                reply = getattr(steps, op)(**cmd)
            except Exception as e:  # the bench reports it and goes on without libvirt's column
                reply = {"error": f"{op}: {e!r}"}
            print(json.dumps(reply), flush=True)
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


if __name__ == "__main__":
    main()
