"""
Self-test of the harness, without cdeguard: the origins, the TLS material, the
SSH-like server, the canary and the git smart-HTTP gateway behave as the other
tests assume.  When one of these fails, every other failure is suspect.
"""

import hashlib
import json
import socket
import ssl

from conftest import (
    CHUNKED_PARTS,
    SMALL_BODY,
    SSH_BANNER,
    CanaryServer,
    ProxyClient,
    build_config,
    curl,
    git,
    parse_prometheus,
    metric,
    pattern_sha256,
    policy,
)


def test_small_and_keepalive(net):
    with ProxyClient(net.http.port, host=net.http.host) as c:
        r1 = c.request("GET", "/small")
        r2 = c.request("GET", "/small?again")
    assert (r1.status, r1.body) == (200, SMALL_BODY)
    assert (r2.status, r2.body) == (200, SMALL_BODY)


def test_echo_chunked_upload(net):
    body = b"".join([b"5\r\nhello\r\n", b"6\r\n world\r\n", b"0\r\n\r\n"])
    with ProxyClient(net.http.port, host=net.http.host) as c:
        r = c.request("POST", "/echo", headers=[("Transfer-Encoding", "chunked"), ("X-A", "1")],
                      body=body)
    j = r.json()
    assert j["body"] == "hello world" and j["body_len"] == 11
    assert ["X-A", "1"] in j["headers"]


def test_chunked_and_big(net):
    with ProxyClient(net.http.port, host=net.http.host) as c:
        r = c.request("GET", "/chunked")
        assert r.body == b"".join(CHUNKED_PARTS)
        r = c.request("GET", "/big?n=3000000")
        assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(3000000)
        r = c.request("GET", "/big?n=100001&chunked=1")
        assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(100001)


def test_close_mid_body(net):
    cp = curl([f"http://{net.http.host}:{net.http.port}/close-mid-body", "-o", "/dev/null"],
              timeout=10)
    assert cp.returncode == 18, cp  # partial file


def test_tls_origin_with_test_ca(net):
    cp = curl(["--cacert", net.ca, f"https://{net.tls.host}:{net.tls.port}/small"], timeout=10)
    assert cp.returncode == 0 and cp.stdout == SMALL_BODY, cp
    ctx = ssl.create_default_context(cafile=net.ca)
    with socket.create_connection((net.tls.host, net.tls.port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="origin.test") as t:
            t.sendall(b"GET /small HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                d = t.recv(4096)
                if not d:
                    break
                data += d
    assert data.endswith(SMALL_BODY)
    assert "origin.test" in net.tls.sni_seen


def test_ssh_like_server(net):
    with socket.create_connection((net.ssh.host, net.ssh.port), timeout=5) as s:
        assert s.recv(100) == SSH_BANNER


def test_canary_records():
    c = CanaryServer(("127.0.0.1", "127.0.0.2"))
    try:
        socket.create_connection(("127.0.0.2", c.port), timeout=2).close()
        import time

        for _ in range(50):
            if c.hits():
                break
            time.sleep(0.02)
        assert len(c.hits()) == 1
    finally:
        c.close()


def test_git_backend_direct(net, tmp_path):
    url = f"http://{net.http.host}:{net.http.port}/git/{net.git['name']}"
    cp = git("clone", "-q", url, str(tmp_path / "c"), timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert git("rev-parse", "HEAD", cwd=tmp_path / "c").stdout.strip() == net.git["head"]


def test_config_builder(tmp_path, net):
    text = build_config(egress_port=1, admin_port=2, audit_path=tmp_path / "a.log",
                        policies=[policy(net)])
    assert "  - name: developers-egress\n" in text
    assert '    sources: ["127.0.0.1/32"]' in text or "    sources: [127.0.0.1/32]" in text


def test_prometheus_parser():
    m = parse_prometheus('# HELP x y\nx_total{a="1",b="q\\"r"} 3\nx_total{a="2"} 4\ny 1.5\n')
    assert metric(m, "x_total") == 7 and metric(m, "x_total", a="1") == 3
    assert metric(m, "y") == 1.5
    json.dumps(list(m.values()))
