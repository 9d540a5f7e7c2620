# SPDX-License-Identifier: Apache-2.0
# A stand-in KMS for GetAppEnvEncryptPubKey pass-through tests: answers
# POST /prpc/GetAppEnvEncryptPubKey?json with a public key derived from the app id, so a test
# can tell the request and the answer went through. Prints its port, serves until killed.
import http.server
import json


class Kms(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path != "/prpc/GetAppEnvEncryptPubKey?json":
            self.send_response(404)
            self.end_headers()
            return
        app_id = body.get("app_id", "")
        reply = json.dumps({"public_key": app_id[::-1], "signature": "", "timestamp": 1700000000,
                            "signature_v1": ""}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Kms)
print(server.server_address[1], flush=True)
server.serve_forever()
