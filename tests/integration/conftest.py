"""
Integration harness for cdeguard's egress proxy (doc/egress.md is the contract).

What lives here:
  * origin servers the tests start themselves, all on loopback:
      - HTTPOrigin  plain HTTP/1.1 (ThreadingHTTPServer) on 127.0.0.2, endpoints below;
      - the same handler behind TLS on 127.0.0.3 (test CA made with the openssl CLI);
      - SSHLikeServer: writes "SSH-2.0-OpenSSH_9.2\\r\\n" on connect;
      - CanaryServer: accepts and records connections, used to prove a denial never
        reached a listener.
  * Daemon: writes a YAML config, runs `cdeguard serve --config FILE --workers 2`,
    waits for the listeners, reads the audit file, reloads (SIGHUP), stops (SIGTERM,
    exit code 0) and, at teardown, fails the test when the daemon's stderr holds a
    sanitizer report.
  * A small raw HTTP/1.1 client over sockets (the tests need exact bytes on the
    wire, which urllib/http.client would normalise), curl/git subprocess helpers and
    a Prometheus text parser.

Network: loopback only (127.0.0.0/8 and ::1).  Every wait is bounded.

Origin endpoints:
  /small               short fixed body (Content-Length)
  /echo                JSON: method, path, headers received, body length/sha256/body
  /chunked             chunked response (CHUNKED_PARTS)
  /slow-body?first=N&stall_ms=M&total=T   sends N bytes, stalls M ms, sends the rest
  /close-mid-body      declares Content-Length 100000, sends 1000 bytes, closes
  /big?n=BYTES[&chunked=1][&ms=DURATION]  deterministic stream (see pattern_sha256)
  /status?code=N       empty response with that status
  /git/...             `git http-backend` CGI (smart HTTP) over GIT_PROJECT_ROOT
"""

import atexit
import base64
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SANITIZER_MARKERS = (
    "AddressSanitizer",
    "LeakSanitizer",
    "runtime error:",
    "UndefinedBehaviorSanitizer",
)

ORIGIN_HOST = "127.0.0.2"  # plain HTTP origin
TLS_HOST = "127.0.0.3"  # TLS origin and the SSH-like server
CLIENT_CIDR = "127.0.0.1/32"  # the test process as a workspace (source attribution)

# Token of the "ws-demo" workspace (stored as sha256 in the configs).
DEMO_TOKEN = "itest-token-3f9c2a"
DEMO_TOKEN_HASH = "sha256:" + hashlib.sha256(DEMO_TOKEN.encode()).hexdigest()

SMALL_BODY = b"hello from the test origin\n"
CHUNKED_PARTS = [b"first chunk;", b"second chunk, a bit longer;", b"x" * 5000, b"last\n"]
SSH_BANNER = b"SSH-2.0-OpenSSH_9.2\r\n"

# Generous: a start or reload compiles the rules engine, which under the sanitizers on
# two busy cores has taken over 5 s.  The waits return as soon as the log line shows.
DAEMON_START_TIMEOUT = 30.0
DAEMON_RELOAD_TIMEOUT = 30.0
_ALL_DAEMONS = []


# --------------------------------------------------------------------------- binary


def cdeguard_bin() -> Path:
    p = Path(os.environ.get("CDEGUARD_BIN", "build/cdeguard"))
    if not p.is_absolute():
        p = REPO_ROOT / p
    return p


def require_bin() -> Path:
    b = cdeguard_bin()
    if not (b.is_file() and os.access(b, os.X_OK)):
        pytest.fail(f"cdeguard binary not found or not executable: {b} (run `make`)")
    return b


@functools.lru_cache(maxsize=1)
def binary_is_sanitized() -> bool:
    """True for ASan builds (RSS is then dominated by the allocator's quarantine)."""
    try:
        data = cdeguard_bin().read_bytes()
    except OSError:
        return False
    return b"__asan_init" in data or b"AddressSanitizer" in data


def clean_env(**extra) -> dict:
    """Environment for subprocesses: no proxy variables (NO_PROXY would even
    override curl -x), no user git config."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")
    }
    env.update(extra)
    return env


# --------------------------------------------------------------------------- ports


def free_port(host: str = "127.0.0.1") -> int:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# Client source ports: every client connection of the session gets its own port, so an
# audit record can be matched to its connection by "client" without ever matching a
# record left by an earlier connection that happened to reuse an ephemeral port.
# The range sits below Linux's ephemeral range (32768+), where listeners get their ports.
_SRC_PORT_FIRST, _SRC_PORT_LAST = 20000, 32000
_src_port_next = [_SRC_PORT_FIRST]
_src_port_lock = threading.Lock()


def _next_src_port() -> int:
    with _src_port_lock:
        p = _src_port_next[0]
        _src_port_next[0] = p + 1 if p < _SRC_PORT_LAST else _SRC_PORT_FIRST
        return p


def client_socket(host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> socket.socket:
    """A TCP connection from 127.0.0.1 with a session-unique source port."""
    last = None
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", _next_src_port()))
        except OSError as e:
            s.close()
            last = e
            continue
        s.settimeout(timeout)
        try:
            s.connect((host, port))
        except OSError as e:
            s.close()
            if e.errno in (98, 99):  # EADDRINUSE / EADDRNOTAVAIL: try the next port
                last = e
                continue
            raise
        return s
    raise OSError(f"no usable client source port: {last}")


def unique_local_port() -> int:
    """A session-unique, currently bindable port for curl --local-port."""
    for _ in range(200):
        p = _next_src_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        return p
    raise OSError("no free local port")


def free_ports(n: int, host: str = "127.0.0.1") -> list:
    """n distinct free ports (sockets held until all are chosen)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


# --------------------------------------------------------------------------- data


def _pattern_block(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest() * 2048  # 64 KiB, differs per block


def pattern_chunks(n: int):
    i = sent = 0
    while sent < n:
        b = _pattern_block(i)
        take = min(len(b), n - sent)
        yield b[:take] if take < len(b) else b
        sent += take
        i += 1


@functools.lru_cache(maxsize=16)
def pattern_sha256(n: int) -> str:
    h = hashlib.sha256()
    for c in pattern_chunks(n):
        h.update(c)
    return h.hexdigest()


# --------------------------------------------------------------------------- origins


class OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "itest-origin/1"
    timeout = 30  # socket timeout: a stuck peer never pins a thread forever
    disable_nagle_algorithm = True  # head and body are separate writes

    def log_message(self, fmt, *args):  # quiet
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, socket.timeout, ssl.SSLError, OSError):
            self.close_connection = True

    # -- helpers
    def _record(self):
        rec = {
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": list(self.headers.items()),
            "client": self.client_address[0],
            "complete": False,
        }
        self.server.record_request(rec)
        return rec

    def _body_iter(self):
        te = ",".join(self.headers.get_all("Transfer-Encoding") or []).lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    d = self.rfile.read(min(left, 65536))
                    if not d:
                        raise ConnectionError("eof in chunk")
                    left -= len(d)
                    yield d
                self.rfile.readline(8)
        else:
            n = int(self.headers.get("Content-Length") or 0)
            while n:
                d = self.rfile.read(min(n, 65536))
                if not d:
                    raise ConnectionError("eof in body")
                n -= len(d)
                yield d

    def _send(self, code, body=b"", ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- dispatch
    def do_GET(self):
        self._route()

    do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _route(self):
        rec = self._record()
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        path = url.path
        if path.startswith("/git/"):
            self._git(url)
        elif path == "/small":
            for _ in self._body_iter():
                pass
            self._send(200, SMALL_BODY)
        elif path == "/echo":
            h = hashlib.sha256()
            n = 0
            head = bytearray()
            for d in self._body_iter():
                h.update(d)
                n += len(d)
                if len(head) < 65536:
                    head += d[: 65536 - len(head)]
            out = {
                "method": self.command,
                "path": self.path,
                "version": self.request_version,
                "headers": list(self.headers.items()),
                "body_len": n,
                "body_sha256": h.hexdigest(),
                "body": bytes(head).decode("latin-1") if n <= 65536 else None,
            }
            self._send(200, json.dumps(out).encode(), "application/json")
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in CHUNKED_PARTS:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/slow-body":
            first = int(q.get("first", 1000))
            total = int(q.get("total", 2000))
            stall = min(int(q.get("stall_ms", 1000)), 20000) / 1000.0
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(total))
            self.end_headers()
            self.wfile.write(b"a" * first)
            self.wfile.flush()
            time.sleep(stall)
            self.wfile.write(b"b" * (total - first))
        elif path == "/close-mid-body":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"c" * 1000)
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif path == "/big":
            n = int(q.get("n", 1 << 20))
            ms = min(int(q.get("ms", 0)), 60000)
            chunked = q.get("chunked") == "1"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(n))
            self.end_headers()
            nblocks = max(1, (n + 65535) // 65536)
            pause = (ms / 1000.0) / nblocks if ms else 0
            for c in pattern_chunks(n):
                if chunked:
                    self.wfile.write(b"%x\r\n" % len(c) + c + b"\r\n")
                else:
                    self.wfile.write(c)
                if pause:
                    self.wfile.flush()
                    time.sleep(pause)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        elif path == "/hop-resp":
            self._send(200, b"hop\n", extra=[
                ("Connection", "X-Resp-Hop"),
                ("X-Resp-Hop", "secret"),
                ("Keep-Alive", "timeout=99"),
                ("Proxy-Connection", "keep-alive"),
                ("Proxy-Authenticate", "Basic realm=origin"),
                ("X-Keep-Resp", "yes"),
            ])
        elif path.startswith("/dumb/") and self.server.git_root is not None:
            rel = urllib.parse.unquote(path[len("/dumb/"):])
            f = (Path(self.server.git_root) / rel).resolve()
            if str(f).startswith(str(Path(self.server.git_root).resolve())) and f.is_file():
                self._send(200, f.read_bytes(), "application/octet-stream")
            else:
                self._send(404, b"not found\n")
        elif path == "/status":
            self._send(int(q.get("code", 200)), b"")
        else:
            for _ in self._body_iter():  # "complete" below means: whole request body arrived
                pass
            self._send(404, b"not found\n")
        rec["complete"] = True

    def _git(self, url):
        """Minimal CGI gateway to `git http-backend` (smart HTTP)."""
        body = b"".join(self._body_iter())
        env = clean_env(
            GIT_PROJECT_ROOT=str(self.server.git_root),
            GIT_HTTP_EXPORT_ALL="1",
            PATH_INFO=urllib.parse.unquote(url.path[len("/git"):]),
            QUERY_STRING=url.query,
            REQUEST_METHOD=self.command,
            CONTENT_TYPE=self.headers.get("Content-Type", ""),
            CONTENT_LENGTH=str(len(body)),
            REMOTE_ADDR=self.client_address[0],
            GATEWAY_INTERFACE="CGI/1.1",
            SERVER_PROTOCOL="HTTP/1.1",
        )
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        try:
            cp = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
            )
        except subprocess.TimeoutExpired:
            self._send(504, b"http-backend timeout\n")
            return
        out = cp.stdout
        sep = out.find(b"\r\n\r\n")
        seplen = 4
        if sep < 0 or (out.find(b"\n\n") >= 0 and out.find(b"\n\n") < sep):
            sep, seplen = out.find(b"\n\n"), 2
        if sep < 0:
            self._send(500, b"bad cgi output\n" + cp.stderr)
            return
        status = 200
        hdrs = []
        for line in out[:sep].decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                hdrs.append((k.strip(), v.strip()))
        payload = out[sep + seplen:]
        self.send_response(status)
        for k, v in hdrs:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class HTTPOrigin(ThreadingHTTPServer):
    """Threaded HTTP/1.1 origin that records connections and requests."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host: str, port: int = 0, git_root=None, ssl_ctx=None):
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = []
        self.git_root = git_root
        self.ssl_ctx = ssl_ctx
        self.tls_errors = []
        self.sni_seen = []
        super().__init__((host, port), OriginHandler)
        self.host, self.port = self.server_address[:2]
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def process_request(self, request, client_address):
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)

    def finish_request(self, request, client_address):
        if self.ssl_ctx is None:
            request.settimeout(30)
            return super().finish_request(request, client_address)
        request.settimeout(10)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.lock:
                self.tls_errors.append(repr(e))
            return None
        try:
            tls.settimeout(30)
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass
        return None

    def record_request(self, rec):
        with self.lock:
            self.requests.append(rec)

    def requests_matching(self, needle: str):
        with self.lock:
            return [r for r in self.requests if needle in r["path"]]

    def snapshot(self):
        with self.lock:
            return self.connections, len(self.requests)

    def close(self):
        self.shutdown()
        self.server_close()


def make_tls_origin(host, certs, git_root=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["cert"], certs["key"])
    sni = []
    ctx.sni_callback = lambda _sslobj, name, _ctx: sni.append(name)
    srv = HTTPOrigin(host, 0, git_root=git_root, ssl_ctx=ctx)
    srv.sni_seen = sni
    return srv


class _RecordingTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr, handler, family=socket.AF_INET):
        self.address_family = family
        self.lock = threading.Lock()
        self.events = []
        super().__init__(addr, handler)
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def close(self):
        self.shutdown()
        self.server_close()


class _SSHHandler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.settimeout(5)
        got = bytearray()
        try:
            s.sendall(SSH_BANNER)
            while len(got) < 65536:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        except OSError:
            pass
        with self.server.lock:
            self.server.events.append(bytes(got))


class SSHLikeServer(_RecordingTCPServer):
    def __init__(self, host):
        super().__init__((host, 0), _SSHHandler)
        self.host, self.port = self.server_address[:2]


class _CanaryHandler(socketserver.BaseRequestHandler):
    def handle(self):
        with self.server.lock:
            self.server.events.append(self.client_address)
        try:
            self.request.settimeout(1)
            self.request.recv(1024)
        except OSError:
            pass


class CanaryServer:
    """The same port on several loopback addresses; any connection is a failure."""

    def __init__(self, hosts=("127.0.0.1", "127.0.0.2", "::1")):
        last = None
        for _ in range(30):
            port = free_port(hosts[0])
            servers = []
            try:
                for h in hosts:
                    fam = socket.AF_INET6 if ":" in h else socket.AF_INET
                    servers.append(_RecordingTCPServer((h, port), _CanaryHandler, fam))
            except OSError as e:
                last = e
                for s in servers:
                    s.close()
                continue
            self.port, self.servers, self.hosts = port, servers, hosts
            return
        raise RuntimeError(f"no common free port for canary: {last}")

    def hits(self):
        out = []
        for s in self.servers:
            with s.lock:
                out += list(s.events)
        return out

    def close(self):
        for s in self.servers:
            s.close()


# --------------------------------------------------------------------------- TLS material


def make_test_pki(d: Path) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    ext = d / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectAltName=DNS:localhost,DNS:origin.test,IP:127.0.0.3,IP:127.0.0.1\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=30)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3",
        "-subj", "/CN=cdeguard integration test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "3", "-extfile", "server.ext")
    return {"ca": str(d / "ca.pem"), "cert": str(d / "server.pem"), "key": str(d / "server.key")}


def make_client_cert(pki_dir: Path, cn: str, name: str = None) -> dict:
    """A TLS client certificate with subject CN=cn, signed by the CA that
    make_test_pki() left in pki_dir (for mTLS tests).  {"cert", "key"}."""
    pki_dir = Path(pki_dir)
    name = name or re.sub(r"[^A-Za-z0-9_.-]", "_", cn)
    ext = pki_dir / f"client-{name}.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    key, csr, crt = (f"client-{name}.key", f"client-{name}.csr", f"client-{name}.pem")

    def run(*args):
        subprocess.run(["openssl", *args], cwd=pki_dir, check=True, capture_output=True, timeout=30)

    run("req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
    run("x509", "-req", "-in", csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", crt, "-days", "3", "-extfile", ext.name)
    return {"cert": str(pki_dir / crt), "key": str(pki_dir / key)}


# --------------------------------------------------------------------------- git repo


def git(*args, cwd=None, timeout=60, env=None):
    e = clean_env(
        HOME=os.environ.get("ITEST_GIT_HOME", "/nonexistent"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="itest",
        GIT_AUTHOR_EMAIL="itest@example.invalid",
        GIT_COMMITTER_NAME="itest",
        GIT_COMMITTER_EMAIL="itest@example.invalid",
    )
    if env:
        e.update(env)
    return subprocess.run(
        ["git", *args], cwd=cwd, env=e, capture_output=True, timeout=timeout, text=True
    )


def make_git_repo(root: Path) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    src = root / "src"
    src.mkdir()
    assert git("init", "-q", "-b", "main", str(src)).returncode == 0
    for i in range(3):
        (src / f"file{i}.txt").write_text(f"content {i}\n" * (100 * (i + 1)))
        (src / "blob.bin").write_bytes(b"".join(pattern_chunks(200_000 + i)))
        git("add", "-A", cwd=src)
        cp = git("commit", "-q", "-m", f"commit {i}", cwd=src)
        assert cp.returncode == 0, cp.stderr
    head = git("rev-parse", "HEAD", cwd=src).stdout.strip()
    proj = root / "project"
    proj.mkdir()
    cp = git("clone", "-q", "--bare", str(src), str(proj / "test.git"))
    assert cp.returncode == 0, cp.stderr
    git("update-server-info", cwd=proj / "test.git")
    return {"root": proj, "head": head, "name": "test.git"}


# --------------------------------------------------------------------------- session fixtures


class Net:
    """The session's origins and their addresses."""


@pytest.fixture(scope="session")
def net(tmp_path_factory):
    base = tmp_path_factory.mktemp("net")
    n = Net()
    n.certs = make_test_pki(base / "pki")
    n.ca = n.certs["ca"]
    n.git = make_git_repo(base / "git")
    n.http = HTTPOrigin(ORIGIN_HOST, git_root=n.git["root"])
    n.http_local = HTTPOrigin("127.0.0.1")  # for `localhost` allow-path tests
    n.tls = make_tls_origin(TLS_HOST, n.certs, git_root=n.git["root"])
    n.tls_local = make_tls_origin("127.0.0.1", n.certs)  # CONNECT localhost:PORT, SNI localhost
    n.ssh = SSHLikeServer(TLS_HOST)
    n.closed_port = free_port(ORIGIN_HOST)  # nothing listens there: connect_failed
    yield n
    for s in (n.http, n.http_local, n.tls, n.tls_local, n.ssh):
        s.close()


# --------------------------------------------------------------------------- YAML


_PLAIN = re.compile(r"^[A-Za-z0-9_./-]+$")


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in ("true", "false", "yes", "no", "null", "on", "off", "~"):
        return s
    return json.dumps(s)


def to_yaml(obj, indent: int = 0) -> str:
    """Block-style YAML for dicts / lists of dicts; flow lists for lists of scalars."""
    pad = " " * indent
    lines = []
    for k, v in obj.items():
        if isinstance(v, dict):
            lines.append(f"{pad}{k}:")
            lines.append(to_yaml(v, indent + 2).rstrip("\n"))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            lines.append(f"{pad}{k}:")
            for item in v:
                sub = to_yaml(item, indent + 4).rstrip("\n").split("\n")
                sub[0] = pad + "  - " + sub[0][indent + 4:]
                lines.extend(sub)
        elif isinstance(v, list):
            lines.append(f"{pad}{k}: [{', '.join(_scalar(x) for x in v)}]")
        else:
            lines.append(f"{pad}{k}: {_scalar(v)}")
    return "\n".join(lines) + "\n"


DEFAULT_TIMEOUTS = {
    "client_header": "5s",
    "idle": "10s",
    "connect": "3s",
    "client_hello": "3s",
    "drain": "5s",
}
DEFAULT_GLOBAL_DENY = ["api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"]


def workspace(id_, group="developers", sources=None, tokens=None) -> dict:
    w = {"id": id_, "group": group}
    if sources is not None:
        w["sources"] = list(sources)
    if tokens is not None:
        w["tokens"] = list(tokens)
    return w


def default_workspaces():
    return [
        workspace("local", sources=[CLIENT_CIDR]),
        workspace("ws-demo", tokens=[DEMO_TOKEN_HASH]),
    ]


def policy(net=None, **over) -> dict:
    """The test policy: origins reachable through allow_cidrs, their ports allowed."""
    http_ports = [80, 8080]
    connect_ports = [443]
    tls_only = [443]
    if net is not None:
        http_ports += [net.http.port, net.closed_port]
        # the plain origin's port is a CONNECT port that is not TLS-only
        connect_ports += [net.tls.port, net.ssh.port, net.tls_local.port, net.http.port]
        tls_only += [net.tls.port, net.ssh.port, net.tls_local.port]
    p = {
        "name": "developers-egress",
        "groups": ["developers"],
        "mode": "enforce",
        "allow_domains": [".github.com", ".pypi.org", "allowed.invalid", ".allowed.invalid"],
        "deny_domains": [".dropbox.com", ".wetransfer.com", ".pastebin.com", "bad.github.com"],
        "allow_cidrs": ["127.0.0.2/32", "127.0.0.3/32"],
        "connect_ports": connect_ports,
        "http_ports": http_ports,
        "tls_only_ports": tls_only,
        "upload": {"alert_bytes": "10MB", "action": "alert"},
    }
    for k, v in over.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    return p


def build_config(
    *,
    egress_port: int,
    admin_port: int,
    audit_path,
    workspaces=None,
    policies=None,
    timeouts=None,
    workspace_subnets=("10.42.0.0/16",),
    deny_domains=tuple(DEFAULT_GLOBAL_DENY),
    workers: int = 2,
    extra=None,
    listeners=None,
) -> str:
    t = dict(DEFAULT_TIMEOUTS)
    t.update(timeouts or {})
    cfg = {
        "version": 1,
        "listeners": {"egress": f"127.0.0.1:{egress_port}", "admin": f"127.0.0.1:{admin_port}"},
        "workers": workers,
        "audit": {"sink": "file", "path": str(audit_path)},
        "timeouts": t,
        "workspace_subnets": list(workspace_subnets),
        "deny_domains": list(deny_domains),
        "workspaces": workspaces if workspaces is not None else default_workspaces(),
        "policies": policies if policies is not None else [policy()],
    }
    if listeners:
        cfg["listeners"].update(listeners)  # e.g. {"gateway": "127.0.0.1:PORT"}
    if extra:
        cfg.update(extra)  # top-level sections, e.g. {"gateway": {...}, "inspect": {...}}
    return "# generated by tests/integration/conftest.py\n" + to_yaml(cfg)


# --------------------------------------------------------------------------- Daemon


class DaemonError(AssertionError):
    pass


class Daemon:
    """One cdeguard process with its own config, audit file and stderr log."""

    def __init__(self, workdir: Path, workers: int = 2):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.egress, self.admin = free_ports(2)
        self.config_path = self.workdir / "cdeguard-test.yaml"
        self.audit_path = self.workdir / "audit.log"
        self.log_path = self.workdir / "stderr.log"
        self.stdout_path = self.workdir / "stdout.log"
        self.workers = workers
        self.proc = None
        self.returncode = None
        self.signals_sent = []
        self._san_checked = 0
        self.env = {}  # extra environment for the process (e.g. provider keys for env:NAME)
        self.wait_ports = []  # more listener ports wait_ready() waits for (gateway, ext_authz)
        _ALL_DAEMONS.append(self)

    # -- config
    def config(self, **kw) -> str:
        return build_config(
            egress_port=self.egress, admin_port=self.admin, audit_path=self.audit_path, **kw
        )

    # -- process
    @property
    def pid(self):
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.signals_sent.append(sig)
        self.proc.send_signal(sig)

    def death_note(self) -> str:
        """Why the process is gone, as far as the tests can tell."""
        if self.alive():
            return "still running"
        text = self.log_text()
        rc = self.proc.returncode if self.proc else None
        for name, sig in (("SIGTERM", signal.SIGTERM), ("SIGINT", signal.SIGINT)):
            if f"received {name}" in text and sig not in self.signals_sent:
                return (f"exit {rc} after a {name} the tests did not send "
                        "(another process on this machine signalled it)")
        return f"exit {rc}"

    def start(self, config_text: str, wait: bool = True, env=None):
        binary = require_bin()
        self.config_path.write_text(config_text)
        extra_env = dict(self.env)
        extra_env.update(env or {})
        env = clean_env(**extra_env)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        with open(self.log_path, "ab") as err, open(self.stdout_path, "ab") as out:
            self.proc = subprocess.Popen(
                [str(binary), "serve", "--config", str(self.config_path),
                 "--workers", str(self.workers)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=self.workdir, env=env,
            )
        self.returncode = None
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = DAEMON_START_TIMEOUT):
        deadline = time.monotonic() + timeout
        pending = [self.egress, self.admin, *self.wait_ports]
        while pending:
            if self.proc.poll() is not None:
                raise DaemonError(
                    f"cdeguard exited with {self.proc.returncode} during start-up:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                raise DaemonError(f"cdeguard did not listen on {pending} within {timeout}s:\n"
                                  + self.log_tail())
            try:
                with socket.create_connection(("127.0.0.1", pending[0]), timeout=0.5):
                    pending.pop(0)
                    continue
            except OSError:
                time.sleep(0.05)

    def stop(self, timeout: float = 15.0, expect_code: int = 0) -> int:
        """SIGTERM, wait (bounded), assert the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise DaemonError(f"cdeguard did not exit within {timeout}s of SIGTERM:\n"
                                  + self.log_tail())
        self.returncode = self.proc.returncode
        if expect_code is not None and self.returncode != expect_code:
            raise DaemonError(
                f"cdeguard exit code {self.returncode}, expected {expect_code}:\n" + self.log_tail()
            )
        return self.returncode

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=5)

    def reload(self, config_text: str, expect_ok: bool = True,
               timeout: float = DAEMON_RELOAD_TIMEOUT):
        """Rewrite the config file and SIGHUP; wait for the log line that says how it went."""
        marker = "config reloaded from" if expect_ok else "reload refused"
        before = self.log_text().count(marker)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(config_text)
        os.replace(tmp, self.config_path)
        self.signal(signal.SIGHUP)
        self.wait_log(marker, count=before + 1, timeout=timeout)

    # -- logs
    def log_text(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_log(self, needle: str, count: int = 1, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if text.count(needle) >= count:
                return text
            if time.monotonic() > deadline:
                raise DaemonError(f"log never showed {needle!r} x{count} within {timeout}s "
                                  f"(daemon: {self.death_note()}):\n" + self.log_tail())
            time.sleep(0.05)

    def sanitizer_findings(self, new_only: bool = False) -> list:
        text = self.log_text()
        start = self._san_checked if new_only else 0
        self._san_checked = len(text)
        seg = text[start:]
        found = [m for m in SANITIZER_MARKERS if m in seg]
        if not found:
            return []
        idx = min(seg.find(m) for m in found)
        return [f"sanitizer report in cdeguard stderr ({', '.join(found)}):\n"
                + seg[max(0, idx - 200): idx + 4000]]

    # -- audit
    def audit_records(self) -> list:
        try:
            data = self.audit_path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in data.split(b"\n")[:-1]:  # a trailing partial line is not complete yet
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError as e:
                    raise AssertionError(f"audit line is not JSON: {line[:300]!r}: {e}")
        return out

    def wait_audit(self, pred, count: int = 1, timeout: float = 3.0) -> list:
        """Records matching pred, waiting (bounded) until at least `count` exist."""
        deadline = time.monotonic() + timeout
        while True:
            recs = [r for r in self.audit_records() if pred(r)]
            if len(recs) >= count or time.monotonic() > deadline:
                return recs
            time.sleep(0.05)

    # -- admin
    def metrics(self) -> dict:
        r = http_get(self.admin, "/metrics")
        assert r.status == 200, r
        return parse_prometheus(r.body.decode())

    # -- resource use
    def rss_kb(self, field: str = "VmRSS") -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError(f"{field} not in /proc/{self.pid}/status")


def finish_daemon(d: Daemon) -> list:
    """Stop (exit 0) and check for sanitizer reports; returns the problems found."""
    problems = []
    try:
        if d.alive():
            d.stop()
        elif d.proc is not None and d.returncode is None and (
                d.proc.returncode != 0
                or not {signal.SIGTERM, signal.SIGINT} & set(d.signals_sent)):
            problems.append(f"cdeguard ended on its own ({d.death_note()}):\n" + d.log_tail())
    except AssertionError as e:
        problems.append(str(e))
    problems += d.sanitizer_findings()
    return problems


@atexit.register
def _kill_leftovers():
    for d in _ALL_DAEMONS:
        try:
            d.kill()
        except Exception:
            pass


@pytest.fixture
def daemon_factory(tmp_path):
    """daemon_factory(name=None) -> Daemon (not started).  Teardown stops every daemon
    made, asserts exit code 0 and fails on sanitizer output."""
    made = []

    def make(name=None, workers=2):
        d = Daemon(tmp_path / (name or f"d{len(made)}"), workers=workers)
        made.append(d)
        return d

    yield make
    problems = []
    for d in made:
        problems += finish_daemon(d)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def daemon(daemon_factory, net):
    """A running daemon with the standard test config."""
    d = daemon_factory("daemon")
    d.start(d.config(policies=[policy(net)]))
    return d


class SharedDaemon:
    """A module-scoped daemon with per-test liveness and sanitizer checks."""

    def __init__(self, workdir: Path, config_fn):
        self.workdir = workdir
        self.config_fn = config_fn
        self.d = None
        self.generation = 0

    def get(self) -> Daemon:
        if self.d is None or not self.d.alive():
            self.generation += 1
            self.d = Daemon(self.workdir / f"gen{self.generation}")
            self.d.start(self.config_fn(self.d))
        return self.d

    def after_test(self):
        d = self.d
        problems = d.sanitizer_findings(new_only=True)
        if not d.alive():
            problems.append(f"cdeguard died during this test ({d.death_note()}):\n"
                            + d.log_tail())
        return problems

    def finish(self):
        return finish_daemon(self.d) if self.d is not None else []


def run_shared(workdir: Path, config_fn):
    """Body of a module fixture: a SharedDaemon, failed at the end of the
    module if its log shows sanitizer reports or it did not exit cleanly."""
    h = SharedDaemon(workdir, config_fn)
    yield h
    problems = h.finish()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def shared_daemon_fixture(config_fn, scope="module"):
    """Make a (module fixture, function fixture) pair for a shared daemon."""

    @pytest.fixture(scope=scope)
    def _holder(tmp_path_factory, net):
        yield from run_shared(tmp_path_factory.mktemp("shared"), lambda d: config_fn(d, net))

    return _holder


def use_shared(holder):
    d = holder.get()
    yield d
    problems = holder.after_test()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------- raw HTTP client


class Closed(Exception):
    pass


class HttpResponse:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version, self.status, self.reason = version, status, reason
        self.headers, self.body, self.raw_head = headers, body, raw_head

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def rule(self):
        return self.header("X-Cdeguard-Rule")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (f"<HttpResponse {self.status} {self.reason!r} rule={self.rule!r} "
                f"headers={self.headers!r} body={self.body[:300]!r}>")


class SockReader:
    """Buffered reads on a socket with a deadline per call."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self, deadline):
        if self.eof:
            raise Closed("connection closed")
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("read deadline")
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(262144)
        except ConnectionResetError:
            self.eof = True
            raise Closed("connection reset")
        if not d:
            self.eof = True
            raise Closed("connection closed")
        self.buf += d

    def readline(self, deadline, limit=1 << 20) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > limit:
                raise AssertionError("line too long")
            self._fill(deadline)

    def read_exact(self, n, deadline) -> bytes:
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_to_eof(self, deadline, limit=1 << 30) -> bytes:
        while len(self.buf) < limit:
            try:
                self._fill(deadline)
            except Closed:
                break
        out = bytes(self.buf)
        self.buf.clear()
        return out


def read_response(reader: SockReader, method: str = "GET", timeout: float = 10.0,
                  sink=None) -> HttpResponse:
    """Read one response.  With sink (callable), the body is streamed into it and
    .body is empty."""
    deadline = time.monotonic() + timeout
    while True:
        line = reader.readline(deadline)
        raw_head = line
        if not line.strip():
            continue  # tolerate stray CRLF
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: ([^\r\n]*))?\r?\n$", line)
        if not m:
            raise AssertionError(f"bad status line {line!r}")
        headers = []
        while True:
            h = reader.readline(deadline)
            raw_head += h
            if h in (b"\r\n", b"\n"):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        status = int(m.group(2))
        if 100 <= status < 200 and status != 101:
            continue
        break
    resp = HttpResponse(m.group(1).decode(), status, (m.group(3) or b"").decode("latin-1"),
                        headers, b"", raw_head)
    out = bytearray()

    def emit(d):
        if sink:
            sink(d)
        else:
            out.extend(d)

    te = ",".join(resp.header_all("Transfer-Encoding")).lower()
    cl = resp.header("Content-Length")
    if method == "HEAD" or status in (204, 304) or (method == "CONNECT" and 200 <= status < 300):
        pass
    elif "chunked" in te:
        while True:
            size = int(reader.readline(deadline).split(b";")[0].strip(), 16)
            if size == 0:
                while reader.readline(deadline) not in (b"\r\n", b"\n"):
                    pass
                break
            left = size
            while left:
                if not reader.buf:
                    reader._fill(deadline)
                take = min(left, len(reader.buf))
                emit(bytes(reader.buf[:take]))
                del reader.buf[:take]
                left -= take
            reader.read_exact(2, deadline)
    elif cl is not None:
        left = int(cl)
        while left:
            if not reader.buf:
                reader._fill(deadline)
            take = min(left, len(reader.buf))
            emit(bytes(reader.buf[:take]))
            del reader.buf[:take]
            left -= take
    else:
        emit(reader.read_to_eof(deadline))
    resp.body = bytes(out)
    return resp


class ProxyClient:
    """A raw HTTP/1.1 connection to the proxy (or any server)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.timeout = timeout
        if ":" not in host:
            self.sock = client_socket(host, port, timeout)
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = SockReader(self.sock)

    def send(self, data: bytes):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def request(self, method: str, target: str, headers=(), body: bytes = None,
                host: str = None, timeout: float = None, sink=None) -> HttpResponse:
        if host is None:
            if method == "CONNECT":
                host = target
            else:
                host = urllib.parse.urlsplit(target).netloc or "localhost"
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
        names = {k.lower() for k, _ in headers}
        lines += [f"{k}: {v}" for k, v in headers]
        if body is not None and "content-length" not in names and "transfer-encoding" not in names:
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        self.send(data)
        return self.response(method, timeout=timeout, sink=sink)

    def response(self, method="GET", timeout=None, sink=None) -> HttpResponse:
        return read_response(self.reader, method, timeout or self.timeout, sink=sink)

    def read_available(self, timeout: float) -> bytes:
        """Everything that arrives until EOF or timeout (no exception on either)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.reader._fill(deadline)
            except (Closed, socket.timeout, OSError):
                break
        out = bytes(self.reader.buf)
        self.reader.buf.clear()
        return out

    def is_closed(self, timeout: float = 3.0) -> bool:
        """True when the peer closes (EOF/RST) within timeout without sending more data."""
        if self.reader.buf:
            return False
        if self.reader.eof:
            return True
        deadline = time.monotonic() + timeout
        try:
            self.reader._fill(deadline)
        except Closed:
            return True
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def http_get(port: int, path: str, host: str = "127.0.0.1", timeout: float = 5.0) -> HttpResponse:
    with ProxyClient(port, host, timeout) as c:
        return c.request("GET", path, headers=[("Connection", "close")], host=f"{host}:{port}")


def proxy_get(d: Daemon, url: str, headers=(), method="GET", body=None, timeout=10.0):
    with ProxyClient(d.egress, timeout=timeout) as c:
        return c.request(method, url, headers=[("Connection", "close"), *headers], body=body)


def raw_exchange(port: int, data: bytes, timeout: float = 5.0, host: str = "127.0.0.1"):
    """Send raw bytes, return (all bytes received until close/timeout, closed?)."""
    c = ProxyClient(port, host, timeout)
    try:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = bytearray()
        deadline = time.monotonic() + timeout
        closed = False
        while True:
            try:
                c.reader._fill(deadline)
                got += c.reader.buf
                c.reader.buf.clear()
            except Closed:
                closed = True
                break
            except (socket.timeout, TimeoutError):
                break
        got += c.reader.buf
        return bytes(got), closed
    finally:
        c.close()


def parse_head(data: bytes):
    """(status, headers list, body) from raw bytes of one response (or (None, [], b''))."""
    m = re.match(rb"^HTTP/\d\.\d (\d{3})[^\r\n]*\r?\n", data)
    if not m:
        return None, [], b""
    end = data.find(b"\r\n\r\n")
    head = data[: end if end >= 0 else len(data)].decode("latin-1").split("\r\n")[1:]
    headers = []
    for h in head:
        k, _, v = h.partition(":")
        headers.append((k.strip(), v.strip()))
    return int(m.group(1)), headers, data[end + 4:] if end >= 0 else b""


def hget(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def open_tunnel(d: Daemon, authority: str, headers=(), timeout=10.0):
    """CONNECT authority; returns (ProxyClient, HttpResponse). The caller closes."""
    c = ProxyClient(d.egress, timeout=timeout)
    r = c.request("CONNECT", authority, headers=headers)
    return c, r


def tls_over(c: ProxyClient, ca: str, server_hostname: str, check_hostname=True,
             timeout=10.0) -> ssl.SSLSocket:
    assert not c.reader.buf, "bytes after the CONNECT response"
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = check_hostname
    if not check_hostname:
        ctx.verify_mode = ssl.CERT_NONE
    c.sock.settimeout(timeout)
    return ctx.wrap_socket(c.sock, server_hostname=server_hostname)


# --------------------------------------------------------------------------- metrics


_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict:
    """{(name, frozenset(labels)): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line)
        if not m:
            raise AssertionError(f"unparsable metrics line {line!r}")
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        v = m.group(4)
        out[(m.group(1), labels)] = float("inf") if v == "+Inf" else float(v)
    return out


def metric(m: dict, name: str, **labels) -> float:
    """Sum of the series called name whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in m.items() if n == name and want <= set(ls))


def wait_metric(d, name: str, expected: float, timeout: float = 2.0, **labels) -> float:
    """Poll /metrics until the series sum equals expected (bounded); returns the last value.
    Counters may be bumped when an exchange is finalised, just after the client saw it."""
    deadline = time.monotonic() + timeout
    while True:
        v = metric(d.metrics(), name, **labels)
        if v == expected or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def metric_names(m: dict) -> set:
    return {n for (n, _) in m}


# --------------------------------------------------------------------------- curl


def curl(args, timeout: float = 60.0, **kw) -> subprocess.CompletedProcess:
    cmd = ["curl", "-sS", "--max-time", str(max(1, int(timeout - 2)))] + list(args)
    return subprocess.run(cmd, env=clean_env(), capture_output=True, timeout=timeout, **kw)


def basic_auth(user: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def wait_for(pred, timeout: float = 3.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


# --------------------------------------------------------------------------- markers


def pytest_configure(config):
    config.addinivalue_line("markers", "gateway: LLM gateway tests (doc/gateway.md)")
    config.addinivalue_line("markers", "sdk: runs an official LLM SDK (node; needs node_modules)")
    config.addinivalue_line("markers", "ext_authz: the Envoy ext_authz listener (doc/gateway.md)")
