# SPDX-License-Identifier: Apache-2.0
# A static OCI registry for tests: builds repository dstack/guest under DIR with tags
#   0.6.0     a good image (metadata.json, kernel, initrd) in one gzip layer
#   broken    a layer whose bytes do not match its digest
#   nometa    a layer without metadata.json
#   sha256-x  a signature tag that clients must hide
#   whiteout  two layers: the second deletes a file and empties a folder of the first
#   setuid    a good image whose kernel carries a setuid bit (it must land without it)
#   bad-size  a manifest whose layer size is a string
#   huge      a manifest of 300 MB (and, while DIR/huge-tags exists, a tag list of 600 MB)
# and hostile ones that must never write outside the image folder (VICTIM is a folder the
# test watches): symlink-across-layers, absolute, dotdot, hardlink, hardlink-out, device,
# fifo, bomb (a layer that unpacks far beyond the cap the test configures).
# Then serves DIR over HTTP on loopback, printing the port. Usage: oci_registry.py DIR VICTIM
import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import sys
import tarfile

root = sys.argv[1]
victim = sys.argv[2] if len(sys.argv) > 2 else "/nonexistent-victim"
repo = os.path.join(root, "v2", "dstack", "guest")
for sub in ("blobs", "manifests", "tags"):
    os.makedirs(os.path.join(repo, sub), exist_ok=True)


def blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(repo, "blobs", digest), "wb") as f:
        f.write(data)
    return digest


def layer(files):
    """files: name -> bytes (a file) or a TarInfo-shaping dict {type, linkname, mode, data}."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            spec = content if isinstance(content, dict) else {"data": content}
            info.type = spec.get("type", tarfile.REGTYPE)
            info.linkname = spec.get("linkname", "")
            info.mode = spec.get("mode", 0o644)
            data = spec.get("data", b"")
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def manifest(tag, layers):
    config = blob(b"{}")
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s} for d, s in layers]}
    with open(os.path.join(repo, "manifests", tag), "w") as f:
        json.dump(doc, f)


meta = json.dumps({"kernel": "bzImage", "initrd": "initrd.gz", "version": "0.6.0"}).encode()
good = layer({"metadata.json": meta, "bzImage": b"kernel" * 1000, "initrd.gz": b"initrd" * 1000})
manifest("0.6.0", [(blob(good), len(good))])
bad = layer({"metadata.json": meta})
bad_digest = "sha256:" + hashlib.sha256(b"something else").hexdigest()
with open(os.path.join(repo, "blobs", bad_digest), "wb") as f:
    f.write(bad)
manifest("broken", [(bad_digest, len(bad))])
nometa = layer({"readme": b"no metadata here"})
manifest("nometa", [(blob(nometa), len(nometa))])

base = {"metadata.json": meta, "bzImage": b"kernel" * 1000, "initrd.gz": b"initrd" * 1000}


def image(tag, *layers_files):
    manifest(tag, [(blob(l), len(l)) for l in (layer(f) for f in layers_files)])


image("whiteout", dict(base, **{"drop": b"x", "junk/a": b"a", "junk/b": b"b"}),
      {".wh.drop": b"", "junk/.wh..wh..opq": b"", "junk/new": b"n"})
image("setuid", dict(base, bzImage={"data": b"kernel", "mode": 0o4755}))
image("symlink-across-layers", dict(base, out={"type": tarfile.SYMTYPE, "linkname": victim}),
      {"out/planted": b"owned"})
image("absolute", dict(base, **{victim + "/planted": b"owned"}))
image("dotdot", dict(base, **{"../../../../../../../../" + victim.lstrip("/") + "/planted": b"owned"}))
image("hardlink", dict(base, planted={"type": tarfile.LNKTYPE, "linkname": victim + "/secret"}))
image("hardlink-out", dict(base, planted={"type": tarfile.LNKTYPE, "linkname": "../../../../../../../.." + victim + "/secret"}))
image("device", dict(base, disk={"type": tarfile.BLKTYPE}))
image("fifo", dict(base, pipe={"type": tarfile.FIFOTYPE}))
image("bomb", dict(base, zeros=bytes(8 << 20)))
# A manifest whose layer size is a string: once an exception on the pull thread, which
# ended the daemon.
with open(os.path.join(repo, "manifests", "bad-size"), "w") as f:
    json.dump({"schemaVersion": 2, "layers": [{"digest": blob(good), "size": str(len(good))}]}, f)
tags = ["0.6.0", "huge", "bad-size", "broken", "nometa", "sha256-x", "whiteout", "setuid", "symlink-across-layers", "absolute",
        "dotdot", "hardlink", "hardlink-out", "device", "fifo", "bomb"]
with open(os.path.join(repo, "tags", "list"), "w") as f:
    json.dump({"name": "dstack/guest", "tags": tags}, f)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    # Hostile documents, streamed so they cost this server nothing: tag "huge" has a 300 MB
    # manifest, and while the file huge-tags exists the tag list is 600 MB.
    def do_GET(self):
        huge = {"/v2/dstack/guest/manifests/huge": 300 << 20}
        if os.path.exists(os.path.join(root, "huge-tags")):
            huge["/v2/dstack/guest/tags/list"] = 600 << 20
        size = huge.get(self.path.split("?")[0])
        if size is None:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = b" " * (1 << 20)
        try:
            for _ in range(size >> 20):
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=root))
print(server.server_address[1], flush=True)
server.serve_forever()
