"""
CONNECT tunnels (doc/egress.md step 4 and 8): TLS through curl, port rules,
TLS-only ports (not_tls with an SSH-like peer), SNI checks, a 100 MB download,
the active-tunnel gauge and the upload threshold on tunnels.
"""

import hashlib
import socket
import ssl
import time

import pytest

from conftest import (
    ORIGIN_HOST,
    SMALL_BODY,
    SSH_BANNER,
    TLS_HOST,
    binary_is_sanitized,
    curl,
    unique_local_port,
    metric,
    wait_metric,
    open_tunnel,
    pattern_chunks,
    pattern_sha256,
    policy,
    shared_daemon_fixture,
    tls_over,
    use_shared,
    wait_for,
)

POLICY = "developers-egress"

shared = shared_daemon_fixture(lambda d, net: d.config(policies=[policy(net)]))


@pytest.fixture
def proxy(shared):
    yield from use_shared(shared)


def audit_for_port(d, port, timeout=5.0):
    recs = d.wait_audit(lambda r: r.get("client") == f"127.0.0.1:{port}", timeout=timeout)
    assert recs, f"no audit record for client port {port}: {d.audit_records()[-5:]}"
    return recs[0]


def assert_subset(rec, **want):
    bad = {k: (rec.get(k, "<missing>"), v) for k, v in want.items() if rec.get(k, "<missing>") != v}
    assert not bad, f"audit fields (got, want): {bad}\nrecord: {rec}"


def assert_denied(r, rule):
    assert r.status == 403, r
    assert r.header("X-Cdeguard-Rule") == rule, r
    assert r.header("X-Cdeguard-Policy") == POLICY, r
    assert r.body == f'cdeguard: denied by policy "{POLICY}" rule "{rule}"\n'.encode(), r


def https_get(sock_tls: ssl.SSLSocket, path: str, host: str, timeout=30.0) -> bytes:
    sock_tls.settimeout(timeout)
    sock_tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            d = sock_tls.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError):
            break
        if not d:
            break
        data += d
    return bytes(data)


def peer_closed(sock, timeout=5.0) -> (bool, bytes):
    """Read until EOF/RST or timeout: (closed, bytes received)."""
    got = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, bytes(got)
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False, bytes(got)
        except OSError:
            return True, bytes(got)
        if not d:
            return True, bytes(got)
        got += d


# --------------------------------------------------------------------------- allow


def test_curl_https_through_tunnel(proxy, net):
    lp = unique_local_port()
    cp = curl(["-x", f"http://127.0.0.1:{proxy.egress}", "--local-port", str(lp), "--cacert",
               net.ca, f"https://{TLS_HOST}:{net.tls.port}/small?t=curl-tls"], timeout=30)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == SMALL_BODY
    assert net.tls.requests_matching("t=curl-tls")
    rec = audit_for_port(proxy, lp)
    assert_subset(rec, kind="egress", method="CONNECT", host=TLS_HOST, port=net.tls.port,
                  resolved=TLS_HOST, decision="allow", rule="allow_cidrs:127.0.0.3/32",
                  workspace="local", policy=POLICY, mode="enforce", status=200)
    assert rec.get("sni") in (None, ""), rec  # curl sends no SNI for an IP literal
    assert rec["bytes_up"] > 0 and rec["bytes_down"] > len(SMALL_BODY), rec


def test_connect_with_matching_sni(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net, allow_domains=["localhost"],
                                      allow_cidrs=["127.0.0.1/32"])]))
    c, r = open_tunnel(d, f"localhost:{net.tls_local.port}")
    with c:
        lp = c.sock.getsockname()[1]
        assert r.status == 200, r
        t = tls_over(c, net.ca, "localhost")
        data = https_get(t, "/small?t=sni-ok", "localhost")
        t.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(SMALL_BODY), data[:300]
    rec = audit_for_port(d, lp)
    assert_subset(rec, method="CONNECT", host="localhost", sni="localhost", decision="allow",
                  resolved="127.0.0.1", status=200)
    assert rec["rule"] in ("allow_domains:localhost", "allow_cidrs:127.0.0.1/32"), rec


def test_curl_https_by_name_through_tunnel(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net, allow_domains=["localhost"],
                                      allow_cidrs=["127.0.0.1/32"])]))
    cp = curl(["-x", f"http://127.0.0.1:{d.egress}", "--cacert", net.ca,
               f"https://localhost:{net.tls_local.port}/small"], timeout=30)
    assert cp.returncode == 0 and cp.stdout == SMALL_BODY, cp.stderr


def test_plain_tcp_tunnel_on_non_tls_port(proxy, net):
    """A CONNECT port that is not TLS-only relays whatever the client speaks."""
    c, r = open_tunnel(proxy, f"{ORIGIN_HOST}:{net.http.port}")
    with c:
        assert r.status == 200, r
        r2 = c.request("GET", "/small?t=plain-tunnel", host=ORIGIN_HOST)
        assert (r2.status, r2.body) == (200, SMALL_BODY), r2


# --------------------------------------------------------------------------- denials


@pytest.mark.parametrize("authority,rule", [
    ("127.0.0.3:22", "port:connect"),
    ("github.com:22", "port:connect"),
    ("127.0.0.2:8080", "port:connect"),  # an http_port is not a CONNECT port
    ("x.dropbox.com:443", "deny_domains:.dropbox.com"),
    ("api.openai.com:443", "global_deny_domains:api.openai.com"),
    ("example.com:443", "default_deny"),
])
def test_connect_denials(proxy, authority, rule):
    c, r = open_tunnel(proxy, authority)
    with c:
        lp = c.sock.getsockname()[1]
    assert_denied(r, rule)
    rec = audit_for_port(proxy, lp)
    assert_subset(rec, method="CONNECT", decision="deny", rule=rule, status=403)


def test_connect_port_denied_never_reaches_ssh(proxy, net):
    """CONNECT to the SSH-like server's port is fine only because it is listed; 22 is not."""
    before = len(net.ssh.events)
    c, r = open_tunnel(proxy, f"{TLS_HOST}:22")
    c.close()
    assert_denied(r, "port:connect")
    time.sleep(0.2)
    assert len(net.ssh.events) == before


def test_ssh_on_tls_only_port_is_cut(proxy, net):
    c, r = open_tunnel(proxy, f"{TLS_HOST}:{net.ssh.port}")
    with c:
        lp = c.sock.getsockname()[1]
        assert r.status == 200, r
        c.send(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        closed, got = peer_closed(c.sock, timeout=5)
    assert closed, "proxy kept a non-TLS tunnel open on a TLS-only port"
    assert SSH_BANNER not in got, "upstream bytes were relayed before the client's bytes passed"
    rec = audit_for_port(proxy, lp)
    assert_subset(rec, method="CONNECT", decision="deny", rule="not_tls")
    time.sleep(0.3)
    assert not any(b"SSH-2.0-OpenSSH_9.2p1" in e for e in net.ssh.events), \
        "the client's SSH banner reached the upstream"


def test_plain_http_on_tls_only_port_is_cut(proxy, net):
    c, r = open_tunnel(proxy, f"{TLS_HOST}:{net.tls.port}")
    with c:
        lp = c.sock.getsockname()[1]
        assert r.status == 200, r
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        closed, got = peer_closed(c.sock, timeout=5)
    assert closed and not got.startswith(b"HTTP/"), got[:200]
    assert_subset(audit_for_port(proxy, lp), decision="deny", rule="not_tls")


def test_sni_mismatch(proxy, net):
    c, r = open_tunnel(proxy, f"{TLS_HOST}:{net.tls.port}")
    with c:
        lp = c.sock.getsockname()[1]
        assert r.status == 200, r
        with pytest.raises((ssl.SSLError, OSError)):
            t = tls_over(c, net.ca, "evil.example", check_hostname=False, timeout=5)
            https_get(t, "/small?t=sni-mismatch", "evil.example", timeout=5)
            raise AssertionError("TLS session with a mismatching SNI was relayed")
    rec = audit_for_port(proxy, lp)
    assert_subset(rec, method="CONNECT", decision="deny", rule="sni_mismatch")
    assert rec.get("sni") in ("evil.example", None), rec
    assert "evil.example" not in net.tls.sni_seen, "the ClientHello reached the origin"
    assert not net.tls.requests_matching("t=sni-mismatch")


def test_sni_mismatch_with_name_authority(daemon_factory, net):
    """CONNECT localhost:P, SNI origin.test (valid for the cert) is still a mismatch."""
    d = daemon_factory()
    d.start(d.config(policies=[policy(net, allow_domains=["localhost"],
                                      allow_cidrs=["127.0.0.1/32"])]))
    c, r = open_tunnel(d, f"localhost:{net.tls_local.port}")
    with c:
        lp = c.sock.getsockname()[1]
        assert r.status == 200, r
        with pytest.raises((ssl.SSLError, OSError)):
            t = tls_over(c, net.ca, "origin.test", timeout=5)
            https_get(t, "/small", "origin.test", timeout=5)
            raise AssertionError("mismatching SNI relayed")
    assert_subset(audit_for_port(d, lp), decision="deny", rule="sni_mismatch")


def test_client_hello_timeout(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)], timeouts={"client_hello": "1s"}))
    c, r = open_tunnel(d, f"{TLS_HOST}:{net.tls.port}")
    with c:
        assert r.status == 200, r
        t0 = time.monotonic()
        closed, _ = peer_closed(c.sock, timeout=5)
        took = time.monotonic() - t0
    assert closed and took < 4, f"silent tunnel on a TLS-only port open for {took:.1f}s"


# --------------------------------------------------------------------------- volume


def test_100mb_download_through_tunnel(proxy, net, tmp_path):
    n = 100 * 1024 * 1024
    out = tmp_path / "big.bin"
    lp = unique_local_port()
    base = proxy.rss_kb()
    cp = curl(["-x", f"http://127.0.0.1:{proxy.egress}", "--local-port", str(lp), "--cacert",
               net.ca, "-o", str(out), f"https://{TLS_HOST}:{net.tls.port}/big?n={n}"],
              timeout=120)
    assert cp.returncode == 0, cp.stderr
    h = hashlib.sha256()
    with open(out, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    assert out.stat().st_size == n and h.hexdigest() == pattern_sha256(n)
    rec = audit_for_port(proxy, lp)
    assert rec["bytes_down"] >= n and rec["decision"] == "allow", rec
    if not binary_is_sanitized():
        grown = (proxy.rss_kb("VmHWM") - base) / 1024
        assert grown < 30, f"proxy RSS peak grew {grown:.1f} MB relaying a 100 MB tunnel"


def test_active_tunnels_gauge(proxy, net):
    g0 = metric(proxy.metrics(), "cdeguard_egress_active_tunnels")
    c, r = open_tunnel(proxy, f"{TLS_HOST}:{net.tls.port}")
    try:
        assert r.status == 200, r
        t = tls_over(c, net.ca, TLS_HOST)  # IP literal: no SNI is sent
        g1 = metric(proxy.metrics(), "cdeguard_egress_active_tunnels")
        assert g1 == g0 + 1, (g0, g1)
        t.close()
    finally:
        c.close()
    assert wait_for(lambda: metric(proxy.metrics(), "cdeguard_egress_active_tunnels") == g0, 3), \
        "active tunnel gauge did not go back down after the tunnel closed"


def _tunnel_upload(d, net, n, marker):
    c, r = open_tunnel(d, f"{TLS_HOST}:{net.tls.port}")
    lp = c.sock.getsockname()[1]
    assert r.status == 200, r
    t = tls_over(c, net.ca, TLS_HOST, timeout=30)
    t.sendall(f"POST /echo?t={marker} HTTP/1.1\r\nHost: origin.test\r\nContent-Length: {n}\r\n"
              "Connection: close\r\n\r\n".encode())
    for chunk in pattern_chunks(n):
        t.sendall(chunk)
    return c, t, lp


def test_tunnel_upload_alert(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net, upload={"alert_bytes": "1MB", "action": "alert"})]))
    m0 = d.metrics()
    n = 2_000_000
    c, t, lp = _tunnel_upload(d, net, n, "tunnel-up-alert")
    with c:
        data = b""
        t.settimeout(30)
        while True:
            x = t.recv(65536)
            if not x:
                break
            data += x
        t.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert pattern_sha256(n).encode() in data
    rec = audit_for_port(d, lp)
    assert_subset(rec, method="CONNECT", alert="upload_threshold", decision="allow")
    want = metric(m0, "cdeguard_egress_upload_alerts_total", policy=POLICY) + 1
    assert wait_metric(d, "cdeguard_egress_upload_alerts_total", want, policy=POLICY) == want


def test_tunnel_upload_block(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net, upload={"alert_bytes": "1MB", "action": "block"})]))
    n = 4_000_000
    cut = False
    try:
        c, t, lp = _tunnel_upload(d, net, n, "tunnel-up-block")
        with c:
            t.settimeout(10)
            data = t.recv(65536)
            cut = not data.startswith(b"HTTP/1.1 200")
    except (OSError, ssl.SSLError):
        cut = True
    assert cut, "a tunnel over the blocking upload limit was not cut"
    recs = d.wait_audit(lambda r: r.get("alert") == "upload_threshold" and
                        r.get("method") == "CONNECT")
    assert recs, d.audit_records()
    time.sleep(0.3)
    done = [r for r in net.tls.requests_matching("t=tunnel-up-block") if r["complete"]]
    assert not done, "the origin received the whole over-limit upload"


def test_connect_host_case_and_trailing_dot_vs_sni(daemon_factory, net):
    """SNI must equal the CONNECT host case-insensitively, ignoring a trailing dot."""
    d = daemon_factory()
    d.start(d.config(policies=[policy(net, allow_domains=["localhost"],
                                      allow_cidrs=["127.0.0.1/32"])]))
    for authority in (f"LocalHost.:{net.tls_local.port}", f"LOCALHOST:{net.tls_local.port}"):
        c, r = open_tunnel(d, authority)
        with c:
            assert r.status == 200, (authority, r)
            t = tls_over(c, net.ca, "localhost")
            data = https_get(t, "/small?t=sni-case", "localhost")
            t.close()
        assert data.endswith(SMALL_BODY), (authority, data[:200])


def _monitor_daemon(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net, mode="monitor")]))
    return d


def test_monitor_mode_relays_non_tls_on_tls_only_port(daemon_factory, net):
    d = _monitor_daemon(daemon_factory, net)
    c, r = open_tunnel(d, f"{TLS_HOST}:{net.ssh.port}")
    with c:
        lp = c.sock.getsockname()[1]
        assert r.status == 200, r
        c.send(b"SSH-2.0-OpenSSH_9.2p1 monitor\r\n")
        closed, got = peer_closed(c.sock, timeout=1.5)
    assert SSH_BANNER in got, f"monitor mode did not relay the tunnel: {got[:100]!r}"
    rec = audit_for_port(d, lp)
    assert_subset(rec, method="CONNECT", decision="monitor", rule="not_tls", mode="monitor")


def test_monitor_mode_relays_sni_mismatch(daemon_factory, net):
    d = _monitor_daemon(daemon_factory, net)
    c, r = open_tunnel(d, f"{TLS_HOST}:{net.tls.port}")
    with c:
        lp = c.sock.getsockname()[1]
        assert r.status == 200, r
        t = tls_over(c, net.ca, "monitor-evil.example", check_hostname=False)
        data = https_get(t, "/small?t=monitor-sni", "x")
        t.close()
    assert data.endswith(SMALL_BODY), data[:200]
    rec = audit_for_port(d, lp)
    assert_subset(rec, decision="monitor", rule="sni_mismatch", sni="monitor-evil.example")


def test_parallel_tunnels(proxy, net):
    """30 concurrent TLS tunnels, each downloading 1 MB: all intact, gauge back to start."""
    import threading

    n = 1 << 20
    g0 = metric(proxy.metrics(), "cdeguard_egress_active_tunnels")
    results = []
    lock = threading.Lock()

    def one(i):
        try:
            c, r = open_tunnel(proxy, f"{TLS_HOST}:{net.tls.port}", timeout=30)
            with c:
                assert r.status == 200, r
                t = tls_over(c, net.ca, TLS_HOST, timeout=30)
                data = https_get(t, f"/big?n={n}&t=par{i}", TLS_HOST, timeout=30)
                t.close()
            body = data.split(b"\r\n\r\n", 1)[1]
            ok = hashlib.sha256(body).hexdigest() == pattern_sha256(n)
        except Exception as e:  # noqa: BLE001
            ok = repr(e)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results.count(True) == 30, [r for r in results if r is not True][:5]
    assert wait_for(lambda: metric(proxy.metrics(), "cdeguard_egress_active_tunnels") == g0, 5)
