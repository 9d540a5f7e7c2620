# SPDX-License-Identifier: Apache-2.0
"""What bench/run and bench/libvirt_side.py both measure with: timings, waits, /proc readings.

Standard library only: libvirt_side.py imports it under Debian's /usr/bin/python3.
"""
import os
import statistics
import time


def now():
    return time.perf_counter()


def summary(samples):
    samples = sorted(samples)
    return {"min": samples[0], "median": statistics.median(samples), "max": samples[-1], "n": len(samples)}


def percentile(samples, p):
    samples = sorted(samples)
    return samples[min(len(samples) - 1, int(round(p / 100 * (len(samples) - 1))))]


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    r = {"rss_kb": int(out["VmRSS"].split()[0]), "threads": int(out["Threads"])}
    try:  # the part of RSS that is the process's own, not pages of its binary and libraries
        with open(f"/proc/{pid}/smaps_rollup") as f:
            r["anon_kb"] = int(f.read().split("Anonymous:")[1].split()[0])
    except (OSError, IndexError):
        pass
    return r


def wait(cond, timeout, step=0.0005):
    deadline = now() + timeout
    while not cond():
        if now() > deadline:
            raise TimeoutError("timed out")
        time.sleep(step)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone as far as a guest is concerned
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
