#!/usr/bin/env python3
"""The stack's test app (SPEC §10): answers `GET /` with HTTP 200 and
`{"app", "cluster", "peerIdentity"}`, where peerIdentity is the URI of the caller's certificate
as the app's sidecar saw it (the `URI=` of X-Forwarded-Client-Cert), or null."""

import argparse
import http.server
import json


def peer_identity(xfcc):
    """The URI of the last (nearest) element of an X-Forwarded-Client-Cert header."""
    if not xfcc:
        return None
    last = xfcc.split(",")[-1]
    for part in last.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "uri":
            return value.strip().strip('"')
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:8081")
    ap.add_argument("--app", required=True)
    ap.add_argument("--cluster", required=True)
    a = ap.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # one write per response and no Nagle delay: headers and body in separate segments
        # would wait for the peer's delayed ACK (40 ms a request on keep-alive connections)
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True

        def do_GET(self):
            body = json.dumps({"app": a.app, "cluster": a.cluster,
                               "peerIdentity": peer_identity(self.headers.get("X-Forwarded-Client-Cert"))}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    host, port = a.listen.rsplit(":", 1)
    http.server.ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
