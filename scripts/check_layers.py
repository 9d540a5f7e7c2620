#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The layering of libvmm/ as docs/architecture.md draws it, checked on every #include, private
# ("vm/vm_store.hpp") and public (<dstackvmm/vm_manager.hpp>) alike: each folder of libvmm/src
# may include its own headers and those of the layers below it; each public header belongs to
# the layer that implements it (PUBLIC below) and obeys the same rule, in the headers
# themselves and wherever they are included; the engine includes nothing of the server part.
#   check_layers.py LIBVMM_DIR    exit 0 when clean, 1 with one line per violation
import pathlib, re, sys

# folder -> the folders it may include from (besides itself)
ENGINE_BELOW_VM = {"base", "config", "model", "image", "process", "tee", "qemu", "guest", "allocation", "host", "kms"}
ENGINE = ENGINE_BELOW_VM | {"vm"}
ALLOWED = {
    "base": set(),
    "config": {"base"},
    "model": {"base", "config"},
    "image": {"base", "config"},
    "process": {"base"},
    "tee": {"base", "config", "image", "model"},
    "qemu": {"base", "config", "image", "process", "model", "tee"},
    "guest": {"base", "qemu"},
    "allocation": {"base", "config", "model"},
    "host": {"base", "config", "image", "process", "qemu", "allocation"},
    "kms": {"base", "config"},
    "vm": ENGINE_BELOW_VM,
    "wire": {"base", "config", "model"},
    "rpc": ENGINE | {"wire"},
    "server": ENGINE | {"wire", "rpc"},
    "client": {"base", "config", "model", "wire"},
}

# public header (under include/dstackvmm/) -> its layer. A header not listed is an error: a new
# one must say where it stands. The umbrella header may include every engine header.
PUBLIC = {
    "error.hpp": "base", "export.hpp": "base", "log.hpp": "base", "version.hpp": "base", "vm_id.hpp": "base",
    "config.hpp": "config", "listen_address.hpp": "config", "port_mapping.hpp": "config",
    "manifest.hpp": "model", "vm_spec.hpp": "model", "vm_info.hpp": "model", "launch_record.hpp": "model",
    "image.hpp": "image", "image_registry.hpp": "image",
    "process_launcher.hpp": "process", "vm_launcher.hpp": "process",
    "mr_config.hpp": "tee",
    "qemu_command.hpp": "qemu", "qmp_client.hpp": "qemu",
    "cid_pool.hpp": "allocation", "gpu_inventory.hpp": "allocation",
    "host_check.hpp": "host",
    "vm_manager.hpp": "vm", "vm_logs.hpp": "vm", "vm_activity.hpp": "vm", "restart_policy.hpp": "vm",
}
# The server part's headers (include-server/dstackvmm/server/): server/, but for the one rpc/ implements.
SERVER_PUBLIC = {"rpc.hpp": "rpc"}
UMBRELLA = "dstackvmm.hpp"
# What a public header may not include: a library user would need its headers (and its
# version) to compile against ours. Standard headers and our own are all a public header uses.
THIRD_PARTY = re.compile(r"^(nlohmann|toml\+\+|httplib|fmt|CLI|openssl|archive|google|secp256k1|cryptopp|catch2)")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def public_layer(target: str):
    """The layer of <dstackvmm/...>, "?" for a public header in no layer, None for others."""
    if not target.startswith("dstackvmm/"):
        return None
    rest = target[len("dstackvmm/"):]
    if rest.startswith("server/"):
        return SERVER_PUBLIC.get(rest[len("server/"):], "server")
    if rest.startswith("client/"):
        return "client"
    if rest == UMBRELLA:
        return "umbrella"
    return PUBLIC.get(rest, "?")


def may_include(layer: str, target_layer: str) -> bool:
    return target_layer == layer or target_layer in ALLOWED[layer]


def check_public(path: pathlib.Path, layer: str, target: str, problems: list) -> None:
    tl = public_layer(target)
    if tl is None:
        return
    if tl == "?":
        problems.append(f"{path}: <{target}> is a public header in no layer (add it to PUBLIC in scripts/check_layers.py)")
    elif tl in ("server", "rpc") and layer in ENGINE:
        problems.append(f"{path}: the engine ({layer}/) includes the server part's <{target}>")
    elif tl == "umbrella" or not may_include(layer, tl):
        problems.append(f"{path}: {layer}/ may not include <{target}> ({tl}/ is not below it)")


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
                check_public(path, layer, target, problems)
                continue
            first = target.split("/")[0]
            if first not in ALLOWED:
                continue  # generated headers (version_gen.hpp) and the like
            if not may_include(layer, first):
                problems.append(f"{path}: {layer}/ may not include \"{target}\" ({first}/ is not below it)")
    heads = [(p, "dstackvmm/" + str(p.relative_to(root / "include" / "dstackvmm"))) for p in (root / "include" / "dstackvmm").rglob("*.hpp")]
    heads += [(p, "dstackvmm/server/" + p.name) for p in (root / "include-server" / "dstackvmm" / "server").glob("*.hpp")]
    for path, name in sorted(heads):
        layer = public_layer(name)
        text = path.read_text()
        if layer == "?":
            problems.append(f"{path}: a public header in no layer (add it to PUBLIC in scripts/check_layers.py)")
            continue
        for kind, target in INCLUDE.findall(text):
            if THIRD_PARTY.match(target) and not name.startswith("dstackvmm/server/"):
                problems.append(f"{path}: a public header includes the third-party <{target}>; keep its types out of the API")
            elif kind == '"':
                problems.append(f"{path}: a public header includes the private \"{target}\"")
            elif layer == "umbrella":
                if public_layer(target) not in (None,) + tuple(ENGINE):
                    problems.append(f"{path}: the umbrella header includes <{target}>, which is not an engine header")
            else:
                check_public(path, layer, target, problems)
    return problems


if __name__ == "__main__":
    found = check(pathlib.Path(sys.argv[1]))
    for p in found:
        print(p)
    sys.exit(1 if found else 0)
