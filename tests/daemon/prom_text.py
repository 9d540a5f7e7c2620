#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Reads a Prometheus text exposition (format 0.0.4) strictly: every sample belongs to a family
# declared by # HELP and # TYPE before it, names and labels are well formed, values are
# numbers, histogram buckets never decrease and end at +Inf == _count. Prints the samples as
# JSON {"name{label=value,...}": value}; exits 1 naming the first problem.
#   prom_text.py < metrics.txt
import json, re, sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf"^({NAME})(?:\{{(.*)\}})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def fail(n, line, why):
    sys.exit(f"line {n}: {why}: {line!r}")


types, helps, samples, buckets = {}, set(), {}, {}
for n, line in enumerate(sys.stdin.read().splitlines(), 1):
    if line.startswith("# HELP "):
        helps.add(line.split()[2])
        continue
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split()
        if kind not in ("counter", "gauge", "histogram", "summary", "untyped"):
            fail(n, line, "unknown type")
        if name not in helps:
            fail(n, line, "TYPE before HELP")
        types[name] = kind
        continue
    m = SAMPLE.match(line)
    if not m:
        fail(n, line, "not a sample")
    name, labels, value = m.groups()
    family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
    if family not in types:
        fail(n, line, "sample of an undeclared family")
    if types[family] == "counter" and not name.endswith("_total"):
        fail(n, line, "a counter's name must end in _total")
    pairs = []
    if labels:
        pos = 0
        for lm in LABEL.finditer(labels):
            if lm.start() != pos:
                fail(n, line, "malformed labels")
            pairs.append((lm.group(1), lm.group(2)))
            pos = lm.end()
        if pos != len(labels):
            fail(n, line, "malformed labels")
    try:
        v = float(value)
    except ValueError:
        fail(n, line, "value is not a number")
    key = name + ("{" + ",".join(f"{k}={v_}" for k, v_ in pairs) + "}" if pairs else "")
    if key in samples:
        fail(n, line, "duplicate sample")
    samples[key] = v
    if name.endswith("_bucket"):
        series = (family, tuple(p for p in pairs if p[0] != "le"))
        le = dict(pairs)["le"]
        prev = buckets.get(series, (None, -1))[1]
        if v < prev:
            fail(n, line, "bucket count decreased")
        buckets[series] = (le, v)
for (family, rest), (le, v) in buckets.items():
    if le != "+Inf":
        sys.exit(f"{family}{dict(rest)}: the last bucket is not +Inf")
    count = family + "_count" + ("{" + ",".join(f"{k}={v_}" for k, v_ in rest) + "}" if rest else "")
    if samples.get(count) != v:
        sys.exit(f"{family}{dict(rest)}: +Inf bucket {v} != _count {samples.get(count)}")
print(json.dumps(samples))
