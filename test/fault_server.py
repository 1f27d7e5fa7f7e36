#!/usr/bin/env python3
"""A loopback HTTP server with misbehaving endpoints, for pg_chime's tests.

    fault_server.py PORT LOGFILE [ADDRESS]
    fault_server.py --proxy PORT LOGFILE

It listens on ADDRESS (default 127.0.0.1; a loopback address).  Every
request is appended to LOGFILE as one JSON line (path, method, headers,
body).  Endpoints:
  /ok            200 with a short body
  /status/N      answers N
  /flaky/NAME    500 the first time NAME is asked for, then 200
  /limited/NAME  429 with Retry-After: 2 the first time, then 200
  /hang          never answers
  /trickle       sends one byte a second
  /big           streams 100 MB, chunked
  /loop          redirects to itself
  /to-file       redirects to file:///etc/passwd
  /tag/NAME      200 with a short body (NAME tells requests apart in the log)
  /redirect/N?to=URL   answers N (301, 302, 303, 307, 308...) with Location URL
  /echo-reason   200 whose reason phrase is the request's x-echo header
  /echo-body     200 whose body is the request's x-echo header

With --proxy it is a recording HTTP proxy on 127.0.0.1: each request is
logged as above (its path is the absolute URL asked for, or host:port for
CONNECT) with "proxy": true, then forwarded if its target is a loopback
address, else answered 403; CONNECT is answered 501.
"""
import http.client
import http.server
import ipaddress
import json
import socket
import sys
import threading
import time
import urllib.parse

seen = set()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, **more):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        entry = {"path": self.path, "method": self.command,
                 "headers": dict(self.headers), "body": raw.decode(errors="replace")}
        entry.update(more)
        with lock, open(log_file, "a") as log:
            log.write(json.dumps(entry) + "\n")
        return raw

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
        elif path.startswith("/tag/"):
            self.answer(200, b"tagged")
        elif path.startswith("/redirect/"):
            url = urllib.parse.urlsplit(path)
            code = int(url.path.split("/")[2])
            to = urllib.parse.parse_qs(url.query)["to"][0]
            self.answer(code, b"moved", [("Location", to)])
        elif path == "/echo-reason":
            self.send_response(200, self.headers.get("x-echo", ""))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/echo-body":
            self.answer(200, self.headers.get("x-echo", "").encode())
        else:
            self.answer(404, b"no such endpoint")

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hop_by_hop = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                  "te", "trailer", "transfer-encoding", "upgrade"}

    def log_message(self, *args):
        pass

    record = Handler.record

    def refuse(self, code):
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_CONNECT(self):
        self.record(proxy=True)
        self.refuse(501)

    def forward(self):
        body = self.record(proxy=True)
        url = urllib.parse.urlsplit(self.path)
        try:
            loopback = url.scheme == "http" and ipaddress.ip_address(url.hostname).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            self.refuse(403)
            return
        target = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in self.hop_by_hop}
        target.request(self.command, urllib.parse.urlunsplit(("", "", url.path or "/", url.query, "")),
                       body=body or None, headers=headers)
        answer = target.getresponse()
        data = answer.read()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in self.hop_by_hop and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        target.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = forward


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class Server6(Server):
    address_family = socket.AF_INET6


if __name__ == "__main__":
    args = sys.argv[1:]
    proxy = args[0] == "--proxy"
    if proxy:
        args = args[1:]
    port, log_file = int(args[0]), args[1]
    address = args[2] if len(args) > 2 else "127.0.0.1"
    if not ipaddress.ip_address(address).is_loopback:
        sys.exit("fault_server.py listens on loopback addresses only")
    server = Server6 if ":" in address else Server
    server((address, port), ProxyHandler if proxy else Handler).serve_forever()
