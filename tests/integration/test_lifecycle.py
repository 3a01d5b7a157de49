"""
Process lifecycle (doc/egress.md "Command line"): SIGHUP reload under load,
refused reloads, SIGTERM/SIGINT drain, client-side timeouts (slow request head,
idle keep-alive, idle tunnel) and peers that vanish mid-transfer.
"""

import hashlib
import json
import re
import signal
import socket
import threading
import time

import pytest

from conftest import (
    DEMO_TOKEN,
    ORIGIN_HOST,
    SMALL_BODY,
    Closed,
    ProxyClient,
    basic_auth,
    build_config,
    metric,
    wait_metric,
    open_tunnel,
    pattern_sha256,
    policy,
    proxy_get,
    wait_for,
    workspace,
)


def origin_url(net, path):
    return f"http://{ORIGIN_HOST}:{net.http.port}{path}"


def cfg_with_deny(d, net, extra_deny, **kw):
    return d.config(policies=[policy(net, deny_domains=[".dropbox.com", extra_deny])], **kw)


# --------------------------------------------------------------------------- reload


def test_sighup_reload_under_load(daemon_factory, net):
    d = daemon_factory()
    cfg_a = cfg_with_deny(d, net, ".reload-a.example")
    cfg_b = cfg_with_deny(d, net, ".reload-b.example")
    d.start(cfg_a)
    m0 = d.metrics()

    failures, done = [], []
    reloads_done = threading.Event()
    lock = threading.Lock()

    def worker(idx, keepalive):
        n = 0
        c = None
        deadline = time.monotonic() + 60
        while (n < 60 or not reloads_done.is_set()) and n < 400 and time.monotonic() < deadline:
            try:
                if c is None:
                    c = ProxyClient(d.egress, timeout=10)
                r = c.request("GET", origin_url(net, f"/small?t=load-{idx}-{n}"),
                              headers=[] if keepalive else [("Connection", "close")])
                if (r.status, r.body) != (200, SMALL_BODY):
                    with lock:
                        failures.append((idx, n, repr(r)))
                if not keepalive or (r.header("Connection") or "").lower() == "close":
                    c.close()
                    c = None
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                with lock:
                    failures.append((idx, n, repr(e)))
                if c:
                    c.close()
                c = None
            n += 1
        if c:
            c.close()
        with lock:
            done.append(n)

    threads = [threading.Thread(target=worker, args=(i, i % 2 == 0), daemon=True)
               for i in range(5)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.2)
        for i in range(5):
            d.reload(cfg_b if i % 2 == 0 else cfg_a)  # ends on B
            time.sleep(0.15)
    finally:
        reloads_done.set()
        for t in threads:
            t.join(70)
    total = sum(done)
    assert total >= 300, f"only {total} requests ran"
    assert not failures, f"{len(failures)} of {total} requests failed during reloads: {failures[:5]}"
    # config B is in force
    r = proxy_get(d, "http://x.reload-b.example/")
    assert r.status == 403 and r.rule == "deny_domains:.reload-b.example", r
    r = proxy_get(d, "http://x.reload-a.example/")
    assert r.status == 403 and r.rule == "default_deny", r
    assert d.log_text().count(f"config reloaded from {d.config_path}") >= 5
    want = metric(m0, "cdeguard_config_reloads_total") + 5
    assert wait_metric(d, "cdeguard_config_reloads_total", want) == want


def test_invalid_reload_keeps_old_config(daemon_factory, net):
    d = daemon_factory()
    good = cfg_with_deny(d, net, ".old-rule.example")
    d.start(good)
    lines = good.splitlines()
    idx = next(i for i, ln in enumerate(lines) if ln.strip() == "mode: enforce")
    lines[idx] = lines[idx].replace("enforce", "bogus")
    bad = "\n".join(lines).replace(".old-rule.example", ".new-rule.example") + "\n"
    m0 = d.metrics()
    d.reload(bad, expect_ok=False)
    log = d.log_text()
    assert re.search(rf"reload refused: {re.escape(str(d.config_path))}:{idx + 1}: \S", log), \
        d.log_tail()
    assert d.alive()
    r = proxy_get(d, "http://x.old-rule.example/")
    assert r.status == 403 and r.rule == "deny_domains:.old-rule.example", r
    r = proxy_get(d, "http://x.new-rule.example/")
    assert r.rule == "default_deny", r
    r = proxy_get(d, origin_url(net, "/small?t=after-bad-reload"))
    assert (r.status, r.body) == (200, SMALL_BODY), r
    want = metric(m0, "cdeguard_config_reloads_total") + 1
    assert wait_metric(d, "cdeguard_config_reloads_total", want) == want
    # a good file afterwards applies
    d.reload(cfg_with_deny(d, net, ".new-rule.example"))
    r = proxy_get(d, "http://x.new-rule.example/")
    assert r.rule == "deny_domains:.new-rule.example", r


def test_reload_cannot_move_listener(daemon_factory, net):
    d = daemon_factory()
    d.start(cfg_with_deny(d, net, ".first.example"))
    moved = cfg_with_deny(d, net, ".second.example").replace(
        f"127.0.0.1:{d.egress}", f"127.0.0.1:{d.egress + 1 if d.egress < 65000 else d.egress - 1}")
    n_warn = len(re.findall(r" warn ", d.log_text()))
    d.reload(moved)
    assert len(re.findall(r" warn ", d.log_text())) > n_warn, d.log_tail()
    r = proxy_get(d, "http://x.second.example/")  # still on the old port, new rules
    assert r.status == 403 and r.rule == "deny_domains:.second.example", r


def test_sighup_reopens_audit_file(daemon_factory, net):
    d = daemon_factory()
    cfg = d.config(policies=[policy(net)])
    d.start(cfg)
    assert proxy_get(d, origin_url(net, "/small?t=before-rotate")).status == 200
    assert d.wait_audit(lambda r: True)
    rotated = d.audit_path.with_suffix(".log.1")
    d.audit_path.rename(rotated)
    d.reload(cfg)
    assert proxy_get(d, origin_url(net, "/small?t=after-rotate")).status == 200
    assert d.wait_audit(lambda r: True), "no audit record in the reopened file"


# --------------------------------------------------------------------------- drain


def _read_body_into(c, hasher, deadline):
    """Read one Content-Length response from c, hashing the body.  Returns (status, n)."""
    r = c.response(timeout=max(1, deadline - time.monotonic()), sink=hasher.update)
    return r.status


def test_sigterm_drains_in_flight(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)], timeouts={"drain": "15s"}))
    n = 4 * 1024 * 1024
    results = {}

    def tunnel_download():
        try:
            c, r = open_tunnel(d, f"{ORIGIN_HOST}:{net.http.port}", timeout=20)
            with c:
                assert r.status == 200, r
                h = hashlib.sha256()
                rr = c.request("GET", f"/big?n={n}&ms=2500", host=ORIGIN_HOST, timeout=20,
                               sink=h.update)
                results["tunnel"] = (rr.status, h.hexdigest())
        except Exception as e:  # noqa: BLE001
            results["tunnel"] = repr(e)

    def http_download():
        try:
            with ProxyClient(d.egress, timeout=20) as c:
                h = hashlib.sha256()
                rr = c.request("GET", origin_url(net, f"/big?n={n}&ms=2500"), sink=h.update)
                results["http"] = (rr.status, h.hexdigest())
        except Exception as e:  # noqa: BLE001
            results["http"] = repr(e)

    idle = ProxyClient(d.egress)
    assert idle.request("GET", origin_url(net, "/small?t=idle-before-term")).status == 200
    threads = [threading.Thread(target=f, daemon=True) for f in (tunnel_download, http_download)]
    for t in threads:
        t.start()
    time.sleep(0.7)  # both downloads are flowing
    t_term = time.monotonic()
    d.signal(signal.SIGTERM)
    # the idle keep-alive connection is closed promptly
    assert idle.is_closed(timeout=2.0), "idle keep-alive connection not closed on SIGTERM"
    idle.close()
    # new connections are refused (or closed without an answer)
    time.sleep(0.2)
    try:
        with ProxyClient(d.egress, timeout=2) as c:
            c.send(f"GET {origin_url(net, '/small?t=after-term')} HTTP/1.1\r\nHost: x\r\n\r\n"
                   .encode())
            got = c.read_available(2)
            assert got == b"", f"a new connection was served after SIGTERM: {got[:200]!r}"
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        pass
    for t in threads:
        t.join(25)
    want = (200, pattern_sha256(n))
    assert results.get("tunnel") == want, results.get("tunnel")
    assert results.get("http") == want, results.get("http")
    assert not net.http.requests_matching("t=after-term")
    rc = d.proc.wait(timeout=15)
    assert rc == 0, d.log_tail()
    assert time.monotonic() - t_term < 12
    assert "drained, exiting" in d.log_text()


def test_drain_timeout_bounds_shutdown(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)], timeouts={"drain": "1s"}))
    c, r = open_tunnel(d, f"{ORIGIN_HOST}:{net.http.port}")
    with c:
        assert r.status == 200
        c.send(f"GET /big?n={8 << 20}&ms=10000 HTTP/1.1\r\nHost: {ORIGIN_HOST}\r\n\r\n".encode())
        time.sleep(0.3)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        rc = d.proc.wait(timeout=10)
        took = time.monotonic() - t0
    assert rc == 0, d.log_tail()
    assert took < 4, f"exit took {took:.1f}s with drain 1s"


def test_sigint_exits_cleanly(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)]))
    assert proxy_get(d, origin_url(net, "/small?t=sigint")).status == 200
    d.signal(signal.SIGINT)
    assert d.proc.wait(timeout=10) == 0, d.log_tail()
    assert "drained, exiting" in d.log_text()


# --------------------------------------------------------------------------- timeouts


def test_slowloris_head_timeout(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)], timeouts={"client_header": "1s", "idle": "30s"}))
    s = socket.create_connection(("127.0.0.1", d.egress), timeout=5)
    t0 = time.monotonic()
    closed_after = None
    try:
        s.sendall(f"GET {origin_url(net, '/small?t=slowloris')} HTTP/1.1\r\n".encode())
        trickle = b"X-Slow: " + b"a" * 100
        for i in range(40):  # up to ~6 s
            time.sleep(0.15)
            try:
                s.sendall(trickle[i % len(trickle): i % len(trickle) + 1])
                s.settimeout(0.01)
                try:
                    s.recv(4096)  # EOF, or an error response such as 408: the proxy gave up
                    closed_after = time.monotonic() - t0
                    break
                except (socket.timeout, BlockingIOError):
                    pass
            except OSError:
                closed_after = time.monotonic() - t0
                break
    finally:
        s.close()
    assert closed_after is not None, "slow request head never timed out"
    assert closed_after < 3.5, f"closed only after {closed_after:.1f}s (client_header 1s)"
    assert not net.http.requests_matching("t=slowloris")


def test_idle_keepalive_closed(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)], timeouts={"idle": "1s"}))
    with ProxyClient(d.egress) as c:
        assert c.request("GET", origin_url(net, "/small?t=idle")).status == 200
        t0 = time.monotonic()
        assert not c.is_closed(0.4), "keep-alive connection closed immediately"
        assert c.is_closed(3.5), "idle keep-alive connection still open"
        took = time.monotonic() - t0
    assert 0.4 <= took < 3.5, took


def test_idle_tunnel_closed(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)], timeouts={"idle": "1s"}))
    c, r = open_tunnel(d, f"{ORIGIN_HOST}:{net.http.port}")
    with c:
        assert r.status == 200
        r2 = c.request("GET", "/small?t=idle-tunnel", host=ORIGIN_HOST)
        assert r2.body == SMALL_BODY
        assert c.is_closed(4.0), "idle tunnel still open after 4 s with idle 1s"


def test_active_transfer_outlives_idle_timeout(daemon_factory, net):
    """idle is inactivity, not a total deadline: a 2.5 s steady download survives idle 1s."""
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)], timeouts={"idle": "1s"}))
    n = 1 << 20
    with ProxyClient(d.egress, timeout=15) as c:
        h = hashlib.sha256()
        r = c.request("GET", origin_url(net, f"/big?n={n}&ms=2500"), sink=h.update)
    assert r.status == 200 and h.hexdigest() == pattern_sha256(n)


# --------------------------------------------------------------------------- vanishing peers


def test_client_disconnects_mid_upload(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)]))
    c = ProxyClient(d.egress)
    lp = c.sock.getsockname()[1]
    c.send(f"POST {origin_url(net, '/echo?t=abort-up')} HTTP/1.1\r\nHost: x\r\n"
           "Content-Length: 1000000\r\n\r\n".encode() + b"u" * 100_000)
    time.sleep(0.3)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()  # RST
    recs = d.wait_audit(lambda r: r.get("client") == f"127.0.0.1:{lp}", timeout=5)
    assert recs and recs[0]["method"] == "POST", d.audit_records()[-3:]
    assert d.alive()
    r = proxy_get(d, origin_url(net, "/small?t=after-abort-up"))
    assert (r.status, r.body) == (200, SMALL_BODY), r
    done = [x for x in net.http.requests_matching("t=abort-up") if x["complete"]]
    assert not done


def test_origin_closes_mid_body(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)]))
    with ProxyClient(d.egress) as c:
        lp = c.sock.getsockname()[1]
        c.send(f"GET {origin_url(net, '/close-mid-body')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = c.read_available(5)
        assert c.reader.eof, "client connection not closed after the origin died mid-body"
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    assert len(got.split(b"\r\n\r\n", 1)[1]) < 100000
    recs = d.wait_audit(lambda r: r.get("client") == f"127.0.0.1:{lp}", timeout=5)
    assert recs and recs[0]["method"] == "GET", d.audit_records()[-3:]
    r = proxy_get(d, origin_url(net, "/small?t=after-close-mid"))
    assert (r.status, r.body) == (200, SMALL_BODY), r


def test_client_gone_during_download(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)]))
    for i in range(5):
        c = ProxyClient(d.egress)
        c.send(f"GET {origin_url(net, f'/big?n={20 << 20}&t=gone{i}')} HTTP/1.1\r\nHost: x\r\n\r\n"
               .encode())
        try:
            c.reader._fill(time.monotonic() + 5)
        except (Closed, OSError):
            pass
        c.close()
    r = proxy_get(d, origin_url(net, "/small?t=after-gone"))
    assert (r.status, r.body) == (200, SMALL_BODY), r


def test_many_parallel_connections(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)]))
    clients = [ProxyClient(d.egress) for _ in range(100)]
    try:
        for i, c in enumerate(clients):
            c.send(f"GET {origin_url(net, f'/small?t=par-{i}')} HTTP/1.1\r\nHost: x\r\n\r\n"
                   .encode())
        for c in clients:
            r = c.response(timeout=20)
            assert (r.status, r.body) == (200, SMALL_BODY), r
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("garbage", [b"\x16\x03\x01\x02\x00" + b"\x00" * 50, b"\xff" * 100,
                                     b"\r\n\r\n\r\n", b"GET\r\n\r\n"])
def test_garbage_does_not_kill_daemon(daemon_factory, net, garbage):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)]))
    with ProxyClient(d.egress, timeout=3) as c:
        c.send(garbage)
        c.read_available(1.5)
    r = proxy_get(d, origin_url(net, "/small?t=after-garbage"))
    assert r.status == 200, r


def test_reload_applies_tokens_mode_and_audit_path(daemon_factory, net):
    d = daemon_factory()
    d.start(d.config(policies=[policy(net)]))
    new_token = "rotated-token-42"
    new_audit = d.workdir / "audit-after-reload.log"
    cfg2 = build_config(
        egress_port=d.egress, admin_port=d.admin, audit_path=new_audit,
        workspaces=[workspace("local", sources=["127.0.0.9/32"]),
                    workspace("ws-demo", tokens=["sha256:" + hashlib.sha256(new_token.encode())
                                                 .hexdigest()])],
        policies=[policy(net, mode="monitor", allow_cidrs=[])],
    )
    url = origin_url(net, "/small?t=reload-apply")
    assert proxy_get(d, url, headers=[("Proxy-Authorization",
                                       basic_auth("ws-demo", DEMO_TOKEN))]).status == 200
    d.reload(cfg2)
    r = proxy_get(d, url, headers=[("Proxy-Authorization", basic_auth("ws-demo", DEMO_TOKEN))])
    assert r.status == 407, r  # old token gone
    assert proxy_get(d, url).status == 407  # source no longer attributed
    r = proxy_get(d, url, headers=[("Proxy-Authorization", "Bearer " + new_token)])
    assert (r.status, r.body) == (200, SMALL_BODY), r  # monitor: ssrf:loopback relaxed

    def recs():
        try:
            lines = new_audit.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(x) for x in lines if x.strip()]

    got = wait_for(lambda: [x for x in recs() if x.get("decision") == "monitor"], timeout=3)
    assert got and got[0]["rule"] == "ssrf:loopback" and got[0]["workspace"] == "ws-demo", recs()
