#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# embed.py IN OUT: writes IN's bytes plus a NUL as a C initialiser list, for #include in an array.
import sys

data = open(sys.argv[1], "rb").read() + b"\0"
with open(sys.argv[2], "w") as out:
    for i in range(0, len(data), 32):
        out.write(",".join(str(b) for b in data[i:i + 32]) + ",\n")
