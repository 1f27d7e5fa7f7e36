#!/usr/bin/env python3
"""A loopback HTTP server with misbehaving endpoints, for pg_chime's tests.

    fault_server.py PORT LOGFILE

Every request is appended to LOGFILE as one JSON line (path, method,
headers, body).  Endpoints:
  /ok            200 with a short body
  /status/N      answers N
  /flaky/NAME    500 the first time NAME is asked for, then 200
  /limited/NAME  429 with Retry-After: 2 the first time, then 200
  /hang          never answers
  /trickle       sends one byte a second
  /big           streams 100 MB, chunked
  /loop          redirects to itself
  /to-file       redirects to file:///etc/passwd
"""
import http.server
import json
import sys
import threading
import time

seen = set()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode(errors="replace") if length else ""
        with lock, open(sys.argv[2], "a") as log:
            log.write(json.dumps({"path": self.path, "method": self.command,
                                  "headers": dict(self.headers), "body": body}) + "\n")

    def answer(self, code, body=b"", headers=()):
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def first_time(self, name):
        with lock:
            if name in seen:
                return False
            seen.add(name)
            return True

    def handle_any(self):
        self.record()
        path = self.path
        if path == "/ok":
            self.answer(200, b"fine")
        elif path.startswith("/status/"):
            self.answer(int(path.split("/")[2]), b"status")
        elif path.startswith("/flaky/"):
            if self.first_time(path):
                self.answer(500, b"not yet")
            else:
                self.answer(200, b"now fine")
        elif path.startswith("/limited/"):
            if self.first_time(path):
                self.answer(429, b"slow down", [("Retry-After", "2")])
            else:
                self.answer(200, b"thanks")
        elif path == "/hang":
            time.sleep(3600)
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "3600")
            self.end_headers()
            for _ in range(3600):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1)
        elif path == "/big":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"y" * 65536
            for _ in range(1600):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/loop":
            self.answer(302, b"", [("Location", "/loop")])
        elif path == "/to-file":
            self.answer(302, b"", [("Location", "file:///etc/passwd")])
        else:
            self.answer(404, b"no such endpoint")

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


if __name__ == "__main__":
    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
