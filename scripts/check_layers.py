#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The layering of libvmm/ as docs/architecture.md draws it, checked on every #include:
# each folder of libvmm/src may include its own headers and those of the layers below it,
# and the engine (everything but wire/, rpc/, server/ and client/) nothing of the server part.
#   check_layers.py LIBVMM_DIR    exit 0 when clean, 1 with one line per violation
import pathlib, re, sys

# folder -> the folders it may include from (besides itself)
ALLOWED = {
    "base": set(),
    "config": {"base"},
    "image": {"base", "config"},
    "process": {"base"},
    "qemu": {"base", "config", "image", "process"},
    "tee": {"base", "config", "image"},
    "guest": {"base", "qemu"},
    "vm": {"base", "config", "image", "process", "qemu", "tee", "guest"},
    "wire": {"base", "config"},
    "rpc": {"base", "config", "image", "process", "qemu", "tee", "guest", "vm", "wire"},
    "server": {"base", "config", "image", "process", "qemu", "tee", "guest", "vm", "wire", "rpc"},
    "client": {"base", "config", "wire"},
}
ENGINE = {"base", "config", "image", "process", "qemu", "tee", "guest", "vm"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def check(root: pathlib.Path) -> list[str]:
    problems = []
    src = root / "src"
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".cpp", ".hpp") or not path.is_file():
            continue
        layer = path.relative_to(src).parts[0]
        if layer not in ALLOWED:
            problems.append(f"{path}: in no layer (put it in one of {', '.join(sorted(ALLOWED))})")
            continue
        for kind, target in INCLUDE.findall(path.read_text()):
            if kind == "<":
                if target.startswith("dstackvmm/server/") and layer in ENGINE:
                    problems.append(f"{path}: the engine ({layer}/) includes the server part's <{target}>")
                continue
            first = target.split("/")[0]
            if first not in ALLOWED:
                continue  # generated headers (version_gen.hpp) and the like
            if first != layer and first not in ALLOWED[layer]:
                problems.append(f"{path}: {layer}/ may not include \"{target}\" ({first}/ is not below it)")
    for path in sorted((root / "include" / "dstackvmm").rglob("*.hpp")):
        for kind, target in INCLUDE.findall(path.read_text()):
            if target.startswith("dstackvmm/server/") or (kind == '"'):
                problems.append(f"{path}: a public engine header includes {target}")
    return problems


if __name__ == "__main__":
    found = check(pathlib.Path(sys.argv[1]))
    for p in found:
        print(p)
    sys.exit(1 if found else 0)
