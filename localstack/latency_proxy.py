#!/usr/bin/env python3
"""A proxy in front of the emulator that answers as slowly as AWS does.

moto answers in a few milliseconds; AWS takes tens of milliseconds to read and
hundreds to change something. Apply's concurrency only shows its worth (or its
limits) under that latency, so the benchmark (localstack/bench.py --latency)
puts this proxy between poolside and moto: every request is forwarded
unchanged, after a delay of MUTATING_MS for calls that change something and
READ_MS for the rest (Describe*, List*, Get*, Head*, BatchGet*, Lookup*, and
GET/HEAD on the REST services).

Standard library only. usage: latency_proxy.py PORT UPSTREAM MUTATING_MS READ_MS
"""

import http.client
import re
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when many
    # clients connect at once (a fleet's environments, a deploy's concurrent
    # calls): they then hang until their connect times out.
    request_queue_size = 128

PORT = int(sys.argv[1])
UPSTREAM = urllib.parse.urlsplit(sys.argv[2])
MUTATING_S = int(sys.argv[3]) / 1000
READ_S = int(sys.argv[4]) / 1000
READ_PREFIXES = ("Describe", "List", "Get", "Head", "BatchGet", "Lookup", "Search")


def is_read(method, body, headers):
    target = headers.get("X-Amz-Target", "")
    action = ""
    if target:
        action = target.rsplit(".", 1)[-1]
    elif headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        match = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
        action = match.group(1).decode() if match else ""
    if action:
        return action.startswith(READ_PREFIXES)
    return method in ("GET", "HEAD")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def forward(self):
        body = self.read_body()
        time.sleep(READ_S if is_read(self.command, body, self.headers) else MUTATING_S)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=120)
        conn.request(self.command, self.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward


def main():
    server = Server(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
