# SPDX-License-Identifier: Apache-2.0
# Every /prpc method (and the /guest mount) in protobuf mode, encoded and decoded by Python's
# google.protobuf from our .proto files -- an encoder independent of the daemon's -- and every
# answer checked field by field against the same call in JSON mode.
#   protobuf_wire.py BASE_URL PROTO_DIR SCRATCH_DIR
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

base, proto_dir, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
out = os.path.join(scratch, "py")
os.makedirs(out, exist_ok=True)
subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={out}",
                "vmm_rpc.proto", "guest_api.proto", "prpc.proto"], check=True, cwd=proto_dir)
sys.path.insert(0, out)
import guest_api_pb2  # noqa: E402
import prpc_pb2  # noqa: E402
import vmm_rpc_pb2 as vmm  # noqa: E402
from google.protobuf import empty_pb2  # noqa: E402

failures = 0
covered = set()


def check(ok, what):
    global failures
    print(("ok - " if ok else "not ok - ") + what)
    if not ok:
        failures += 1


def post(path, body, content_type, query=""):
    req = urllib.request.Request(base + path + query, data=body, method="POST",
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def fill(msg, value):
    """A message from the JSON mapping (bytes as hex), the way a client would build it."""
    for key, v in value.items():
        f = msg.DESCRIPTOR.fields_by_name[key]
        if v is None:
            continue
        if f.label == f.LABEL_REPEATED:
            for e in v:
                if f.message_type:
                    fill(getattr(msg, key).add(), e)
                else:
                    getattr(msg, key).append(bytes.fromhex(e) if f.type == f.TYPE_BYTES else e)
        elif f.message_type:
            getattr(msg, key).SetInParent()  # an empty message is still a set field
            fill(getattr(msg, key), v)
        else:
            setattr(msg, key, bytes.fromhex(v) if f.type == f.TYPE_BYTES else v)
    return msg


def to_json(msg):
    """A decoded message in the wire's JSON mapping: proto names, bytes hex, unset optionals null."""
    out = {}
    for f in msg.DESCRIPTOR.fields:
        v = getattr(msg, f.name)
        if f.label == f.LABEL_REPEATED:
            out[f.name] = [to_json(e) if f.message_type else (e.hex() if f.type == f.TYPE_BYTES else e) for e in v]
        elif f.has_presence and not msg.HasField(f.name):
            out[f.name] = None
        elif f.message_type:
            out[f.name] = to_json(v)
        else:
            out[f.name] = v.hex() if f.type == f.TYPE_BYTES else v
    return out


def normalize(value, descriptor):
    """The JSON-mode answer reduced to the message's fields (unknown keys dropped, defaults filled)."""
    if value is None:
        return None
    defaults = to_json(getattr(vmm, descriptor.name, None)() if descriptor.file.package == "vmm"
                       else getattr(guest_api_pb2, descriptor.name)())
    result = {}
    for f in descriptor.fields:
        v = value.get(f.name)
        if f.label == f.LABEL_REPEATED:
            result[f.name] = [normalize(e, f.message_type) if f.message_type else e for e in (v or [])]
        elif f.message_type:
            result[f.name] = normalize(v, f.message_type) if v is not None else None
        else:
            result[f.name] = v if v is not None or f.has_presence else defaults[f.name]
    return result


VOLATILE = {"uptime", "exited_at"}  # change between two calls a second apart


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [strip(e) for e in value]
    return value


def call_both(mount, method, request, in_type, out_type, expect_error=None, compare=True, json_request=None):
    """Calls in protobuf then JSON mode (with json_request if given: a call that cannot be made
    twice); checks status, content type and content agree."""
    covered.add(f"{mount}/{method}")
    body = fill(in_type(), request).SerializeToString() if in_type else b""
    ps, pct, praw = post(f"/{mount}/{method}", body, "application/octet-stream")
    js, jct, jraw = post(f"/{mount}/{method}", json.dumps(json_request or request).encode(), "application/json", "?json")
    name = f"{mount}/{method}"
    if expect_error is not None:
        err = prpc_pb2.PrpcError.FromString(praw).message if ps == 400 else None
        check(ps == 400 and pct == "application/octet-stream" and err is not None and expect_error in err,
              f"{name}: protobuf error decodes as PrpcError ({err!r})")
        check(js == 400 and json.loads(jraw)["error"] == err, f"{name}: the same error as JSON mode")
        return None
    check(ps == 200 and pct == "application/octet-stream", f"{name}: 200 application/octet-stream ({ps} {pct})")
    if out_type is None:
        check(praw == b"", f"{name}: Empty is a 0-byte body")
        check(js == 200 and json.loads(jraw or b"null") is None, f"{name}: JSON mode answers null")
        return None
    decoded = to_json(out_type.FromString(praw))
    if compare:
        expected = normalize(json.loads(jraw), out_type.DESCRIPTOR)
        check(strip(decoded) == strip(expected), f"{name}: every field equals JSON mode's" +
              ("" if strip(decoded) == strip(expected) else f"\n#   proto {strip(decoded)}\n#   json  {strip(expected)}"))
    return decoded


compose = json.dumps({"manifest_version": 2, "name": "pb", "runner": "docker-compose"})
config = {"name": "pb-vm", "image": "img", "compose_file": compose, "vcpu": 2, "memory": 256, "disk_size": 1,
          "ports": [{"protocol": "tcp", "host_port": 18080, "vm_port": 80, "host_address": "127.0.0.1"}],
          "encrypted_env": "00ff10" + "ab" * 57, "app_id": "ab" * 20, "user_config": "tz=UTC", "kms_urls": ["http://kms:1"],
          "gateway_urls": [], "stopped": True, "no_tee": False, "networks": [{"mode": "user", "bridge_name": ""}]}

# CreateVm in protobuf mode; what was stored must be what was sent.
covered.add("prpc/CreateVm")
status, ctype, raw = post("/prpc/CreateVm", fill(vmm.VmConfiguration(), config).SerializeToString(), "application/octet-stream")
check(status == 200 and ctype == "application/octet-stream", "prpc/CreateVm: 200 application/octet-stream")
vm_id = vmm.Id.FromString(raw).id
check(len(vm_id) == 36, f"prpc/CreateVm: the answer decodes as Id ({vm_id})")
stored = json.loads(post("/prpc/GetInfo", json.dumps({"id": vm_id}).encode(), "application/json", "?json")[2])["info"]["configuration"]
for key in ("name", "image", "compose_file", "vcpu", "memory", "disk_size", "ports", "encrypted_env", "app_id",
            "user_config", "kms_urls", "stopped"):
    check(stored[key] == config[key], f"prpc/CreateVm: {key} arrived as sent")
check([n["mode"] for n in stored["networks"]] == ["user"], "prpc/CreateVm: networks arrived as sent")
bad = post("/prpc/CreateVm", fill(vmm.VmConfiguration(), dict(config, name="bad/name")).SerializeToString(),
           "application/octet-stream")
check(bad[0] == 400 and "Invalid name" in prpc_pb2.PrpcError.FromString(bad[2]).message, "prpc/CreateVm: a bad name is a PrpcError")
check(post("/prpc/Status", b"\xff\xff\xff", "application/octet-stream")[0] == 400, "a malformed protobuf body is 400")

Id = vmm.Id
call_both("prpc", "Status", {"brief": False}, vmm.StatusRequest, vmm.StatusResponse)
call_both("prpc", "Status", {"brief": True, "keyword": "pb", "page": 1, "page_size": 10}, vmm.StatusRequest, vmm.StatusResponse)
info = call_both("prpc", "GetInfo", {"id": vm_id}, Id, vmm.GetInfoResponse)
check(info and info["found"] and info["info"]["configuration"]["encrypted_env"] == "00ff10" + "ab" * 57, "GetInfo: bytes round-trip as bytes")
check(info and info["info"]["app_url"] is None, "GetInfo: an unset optional decodes as unset")
call_both("prpc", "GetInfo", {"id": "no-such-vm"}, Id, vmm.GetInfoResponse)
call_both("prpc", "GetComposeHash", {"name": "x", "compose_file": compose}, vmm.VmConfiguration, vmm.ComposeHash)
call_both("prpc", "GetComposeHash", {"name": "x", "compose_file": "{"}, vmm.VmConfiguration, None, expect_error="compose")
call_both("prpc", "ListImages", {}, None, vmm.ImageListResponse)
call_both("prpc", "GetAppEnvEncryptPubKey", {"app_id": "ab" * 20}, vmm.AppId, vmm.PublicKeyResponse)
call_both("prpc", "Version", {}, None, vmm.VersionResponse)
call_both("prpc", "GetMeta", {}, None, vmm.GetMetaResponse)
call_both("prpc", "ListGpus", {}, None, vmm.ListGpusResponse)
# Ours; not compared with JSON mode: each call probes the host anew (timings, ports in use).
call_both("prpc", "CheckHost", {}, None, vmm.HostCheckResponse, compare=False)
call_both("prpc", "ReloadVms", {}, None, vmm.ReloadVmsResponse)
call_both("prpc", "SvList", {}, None, vmm.SvListResponse)
call_both("prpc", "SvStop", {"id": "no-such"}, Id, None, expect_error="not found")
call_both("prpc", "SvRemove", {"id": "no-such"}, Id, None, expect_error="not found")
call_both("prpc", "ListRegistryImages", {}, None, vmm.RegistryImageListResponse)
call_both("prpc", "PullRegistryImage", {"tag": "x"}, vmm.PullRegistryImageRequest, None, expect_error="not configured")
call_both("prpc", "DeleteImage", {"id": "no-such-image"}, Id, None, expect_error="not found")
call_both("prpc", "StartVm", {"id": "no-such-vm"}, Id, None, expect_error="Failed to start VM")
call_both("prpc", "ShutdownVm", {"id": "no-such-vm"}, Id, None, expect_error="not found")
call_both("prpc", "StopVm", {"id": vm_id}, Id, None)
update = {"id": vm_id, "update_ports": True,
          "ports": [{"protocol": "tcp", "host_port": 18081, "vm_port": 80, "host_address": "127.0.0.1"}]}
call_both("prpc", "UpdateVm", update, vmm.UpdateVmRequest, vmm.Id)
call_both("prpc", "UpgradeApp", dict(update, compose_file=compose), vmm.UpdateVmRequest, vmm.Id)
call_both("prpc", "ResizeVm", {"id": vm_id, "memory": 512}, vmm.ResizeVmRequest, None)
call_both("prpc", "ResizeVm", {"id": vm_id}, vmm.ResizeVmRequest, None, expect_error="no updates")
after = call_both("prpc", "GetInfo", {"id": vm_id}, Id, vmm.GetInfoResponse)
check(after and after["info"]["configuration"]["memory"] == 512 and after["info"]["configuration"]["ports"][0]["host_port"] == 18081,
      "UpdateVm and ResizeVm in protobuf mode took effect")
call_both("prpc", "Teepod.Version", {}, None, vmm.VersionResponse)
call_both("prpc", "NoSuchMethod", {}, None, None, expect_error="Service not found")
for method, out_type in (("Info", guest_api_pb2.GuestInfo), ("SysInfo", guest_api_pb2.SystemInfo),
                         ("NetworkInfo", guest_api_pb2.NetworkInformation),
                         ("ListContainers", guest_api_pb2.ListContainersResponse), ("Shutdown", None)):
    call_both("guest", method, {"id": "no-such-vm"}, guest_api_pb2.Id, out_type, expect_error="vm not found")
# A stopped VM is gone once RemoveVm returns, as upstream's: the JSON call removes another.
other = post("/prpc/CreateVm", json.dumps(dict(config, name="other", ports=[])).encode(), "application/json", "?json")
other_id = json.loads(other[2])["id"]
call_both("prpc", "RemoveVm", {"id": vm_id}, Id, None, json_request={"id": other_id})
gone = [post("/prpc/GetInfo", json.dumps({"id": i}).encode(), "application/json", "?json") for i in (vm_id, other_id)]
check(all(json.loads(g[2]).get("found") is False or g[0] != 200 for g in gone), "RemoveVm: both VMs are gone when it returns")

vmm_methods = {m.name for m in vmm.DESCRIPTOR.services_by_name["Vmm"].methods}
missing = sorted(vmm_methods - {c.split("/", 1)[1] for c in covered if c.startswith("prpc/")})
check(not missing, f"all {len(vmm_methods)} Vmm methods called in protobuf mode" + (f" (missing {missing})" if missing else ""))
sys.exit(1 if failures else 0)
