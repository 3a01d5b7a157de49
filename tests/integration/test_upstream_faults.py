"""
Fault injection on the upstream side (STYLE.md "upstreams that reset, stall or send
garbage"): a scripted raw origin on 127.0.0.2 answers each path with fixed bytes.
doc/egress.md does not spell these out; the expectations are the conservative
ones every forward proxy meets: an unusable upstream answer becomes `502`, a
response is never framed differently from what the client is told, bytes an
origin sends beyond its declared body never reach the client as a later
response, and the daemon keeps serving.
"""

import socket
import threading
import time

import pytest

from conftest import (
    run_shared,
    ORIGIN_HOST,
    SMALL_BODY,
    ProxyClient,
    policy,
    use_shared,
)

SCRIPTS = {
    "/garbage": b"NOT HTTP AT ALL\r\n\r\n",
    "/dup-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello!!",
    "/cl-te": (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n\r\n"),
    "/extra-after-body": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                          b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle"),
    "/no-length": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody-until-close",
    "/continue": (b"HTTP/1.1 100 Continue\r\n\r\n"
                  b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "/huge-head": (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000)
                                                     for i in range(80))
                   + b"Content-Length: 2\r\n\r\nok"),
    "/bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
}


class ScriptedOrigin:
    """Reads one request head per connection and answers from SCRIPTS, then closes
    (or resets for /reset, or closes silently for /close)."""

    def __init__(self, host=ORIGIN_HOST):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.paths = []
        self.stop = False
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(5)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                d = c.recv(4096)
                if not d:
                    return
                buf += d
            path = buf.split(b" ", 2)[1].decode("latin-1")
            self.paths.append(path)
            if path == "/reset":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return
            if path == "/close":
                return
            c.sendall(SCRIPTS.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
            time.sleep(0.3)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()


@pytest.fixture(scope="module")
def scripted():
    o = ScriptedOrigin()
    yield o
    o.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory, net, scripted):
    def cfg(d):
        return d.config(policies=[policy(net, http_ports=[80, net.http.port, scripted.port])])

    yield from run_shared(tmp_path_factory.mktemp("faults"), cfg)


@pytest.fixture
def proxy(shared):
    yield from use_shared(shared)


def get(proxy, scripted, path, timeout=10):
    with ProxyClient(proxy.egress, timeout=timeout) as c:
        lp = c.sock.getsockname()[1]
        r = c.request("GET", f"http://{ORIGIN_HOST}:{scripted.port}{path}")
        return r, lp


def still_serves(proxy, net):
    with ProxyClient(proxy.egress) as c:
        r = c.request("GET", f"http://{ORIGIN_HOST}:{net.http.port}/small?t=after-fault")
    assert (r.status, r.body) == (200, SMALL_BODY), r


@pytest.mark.parametrize("path", ["/garbage", "/dup-cl", "/reset", "/close", "/huge-head"])
def test_unusable_upstream_answer_is_502(proxy, scripted, net, path):
    r, lp = get(proxy, scripted, path)
    assert r.status == 502, r
    recs = proxy.wait_audit(lambda x: x.get("client") == f"127.0.0.1:{lp}")
    assert recs and recs[0]["status"] == 502, recs
    still_serves(proxy, net)


def test_cl_and_te_from_upstream(proxy, scripted, net):
    """RFC 9112 6.3: Transfer-Encoding overrides Content-Length (or the proxy refuses)."""
    r, _ = get(proxy, scripted, "/cl-te")
    assert r.status == 502 or (r.status == 200 and r.body == b"hello"), r
    still_serves(proxy, net)


def test_bytes_after_upstream_body_are_not_a_response(proxy, scripted, net):
    with ProxyClient(proxy.egress) as c:
        r = c.request("GET", f"http://{ORIGIN_HOST}:{scripted.port}/extra-after-body")
        assert (r.status, r.body) == (200, b"hello"), r
        try:
            r2 = c.request("GET", f"http://{ORIGIN_HOST}:{net.http.port}/small?t=after-extra")
        except Exception:  # noqa: BLE001 - closing the client connection is fine
            return
        assert b"smuggle" not in r2.body and (r2.status, r2.body) == (200, SMALL_BODY), r2


def test_close_delimited_upstream_body(proxy, scripted):
    with ProxyClient(proxy.egress) as c:
        r = c.request("GET", f"http://{ORIGIN_HOST}:{scripted.port}/no-length")
    assert (r.status, r.body) == (200, b"body-until-close"), r


def test_upstream_100_continue_then_200(proxy, scripted):
    r, _ = get(proxy, scripted, "/continue")
    assert (r.status, r.body) == (200, b"ok"), r


def test_bad_chunked_from_upstream(proxy, scripted, net):
    with ProxyClient(proxy.egress) as c:
        try:
            r = c.request("GET", f"http://{ORIGIN_HOST}:{scripted.port}/bad-chunk", timeout=5)
        except Exception:  # noqa: BLE001 - cut mid-response: acceptable
            r = None
        if r is not None:
            assert r.status == 502 or b"hello" not in r.body, r
    still_serves(proxy, net)
