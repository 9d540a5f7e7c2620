# SPDX-License-Identifier: Apache-2.0
# A stand-in for the local key provider (the real one needs SGX): upstream's framing, a 4-byte
# big-endian length and JSON with byte arrays. It "seals" by reversing the quote, so a test
# can tell its answer reached the guest. Prints its port, serves until killed.
import json
import socket
import struct

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
print(server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        head = conn.recv(4, socket.MSG_WAITALL)
        (length,) = struct.unpack(">I", head)
        body = conn.recv(length, socket.MSG_WAITALL)
        quote = bytes(json.loads(body)["quote"])
        reply = json.dumps({"encrypted_key": list(quote[::-1]), "provider_quote": [1, 2, 3]}).encode()
        conn.sendall(struct.pack(">I", len(reply)) + reply)
