# SPDX-License-Identifier: Apache-2.0
# A static OCI registry for tests: builds repository dstack/guest under DIR with tags
#   0.6.0     a good image (metadata.json, kernel, initrd) in one gzip layer
#   broken    a layer whose bytes do not match its digest
#   nometa    a layer without metadata.json
#   sha256-x  a signature tag that clients must hide
# then serves DIR over HTTP on loopback, printing the port. Usage: oci_registry.py DIR
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
repo = os.path.join(root, "v2", "dstack", "guest")
for sub in ("blobs", "manifests", "tags"):
    os.makedirs(os.path.join(repo, sub), exist_ok=True)


def blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(repo, "blobs", digest), "wb") as f:
        f.write(data)
    return digest


def layer(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
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
with open(os.path.join(repo, "tags", "list"), "w") as f:
    json.dump({"name": "dstack/guest", "tags": ["0.6.0", "broken", "nometa", "sha256-x"]}, f)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=root))
print(server.server_address[1], flush=True)
server.serve_forever()
