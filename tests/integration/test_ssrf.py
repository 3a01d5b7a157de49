"""
SSRF guard (doc/egress.md steps 3 and 6): every spelling of an internal address,
as an absolute-form URL and as a CONNECT authority, is denied with the rule of its
address class, and nothing ever connects to the canary listening on that port on
127.0.0.1, 127.0.0.2, 127.0.0.4 and ::1.  Requests are raw bytes: curl would
normalise several of these spellings itself.
"""

import time

import pytest

from conftest import (
    run_shared,
    ORIGIN_HOST,
    SMALL_BODY,
    CanaryServer,
    ProxyClient,
    policy,
    proxy_get,
    use_shared,
)

POLICY = "developers-egress"
WS_SUBNET_HOST = "127.0.0.4"  # listed in workspace_subnets AND in allow_cidrs

# (host as written in the URL / CONNECT authority, expected rule)
VECTORS = [
    ("127.0.0.1", "ssrf:loopback"),
    ("127.0.0.1.", "ssrf:loopback"),
    ("2130706433", "ssrf:loopback"),
    ("0x7f000001", "ssrf:loopback"),
    ("0X7F000001", "ssrf:loopback"),
    ("0177.0.0.1", "ssrf:loopback"),
    ("0x7f.0.0.1", "ssrf:loopback"),
    ("0x7f.1", "ssrf:loopback"),
    ("127.1", "ssrf:loopback"),
    ("127.0.1", "ssrf:loopback"),
    ("017700000001", "ssrf:loopback"),
    ("127.000.000.001", "ssrf:loopback"),
    ("[::1]", "ssrf:loopback"),
    ("[0:0:0:0:0:0:0:1]", "ssrf:loopback"),
    ("[::ffff:127.0.0.1]", "ssrf:loopback"),
    ("[::ffff:7f00:1]", "ssrf:loopback"),
    ("[0:0:0:0:0:ffff:127.0.0.1]", "ssrf:loopback"),
    ("[64:ff9b::127.0.0.1]", "ssrf:loopback"),
    ("[::127.0.0.1]", "ssrf:loopback"),  # IPv4-compatible
    ("[2002:7f00:1::]", "ssrf:loopback"),  # 6to4 of 127.0.0.1
    ("169.254.169.254", "ssrf:link_local"),
    ("0xa9fea9fe", "ssrf:link_local"),
    ("[::ffff:169.254.169.254]", "ssrf:link_local"),
    ("[fe80::1]", "ssrf:link_local"),
    ("[fe80::1%25eth0]", "ssrf:link_local"),
    ("10.0.0.1", "ssrf:private"),
    ("012.0.0.1", "ssrf:private"),
    ("172.16.0.1", "ssrf:private"),
    ("192.168.0.1", "ssrf:private"),
    ("[::ffff:10.0.0.1]", "ssrf:private"),
    ("100.64.0.1", "ssrf:cgnat"),
    ("0.0.0.0", "ssrf:this_network"),
    ("0", "ssrf:this_network"),
    ("[::]", "ssrf:this_network"),
    ("224.0.0.1", "ssrf:multicast"),
    ("[ff02::1]", "ssrf:multicast"),
    ("255.255.255.255", "ssrf:broadcast"),
    ("240.0.0.1", "ssrf:reserved"),
    ("192.0.2.1", "ssrf:reserved"),
    ("198.18.0.1", "ssrf:reserved"),
    ("[2001:db8::1]", "ssrf:reserved"),
    ("[fd00::1]", "ssrf:ula"),
    ("[fc00::1]", "ssrf:ula"),
    ("localhost", "ssrf:loopback"),  # resolves to loopback
    ("localhost.", "ssrf:loopback"),
    ("LOCALHOST", "ssrf:loopback"),
    ("LocalHost.", "ssrf:loopback"),
    (WS_SUBNET_HOST, "ssrf:workspace_subnet"),
    ("[::ffff:127.0.0.4]", "ssrf:workspace_subnet"),
    ("127.0.0.2", "ssrf:loopback"),  # the origin's address: not in this config's allow_cidrs
    ("1.2.3.4.5", "invalid_host"),
    ("256.1.1.1", "invalid_host"),
    ("0x1g.0.0.1", "invalid_host"),
    ("1.2.3.09", "invalid_host"),
    ("08.0.0.1", "invalid_host"),
]


@pytest.fixture(scope="module")
def canary():
    c = CanaryServer(("127.0.0.1", "127.0.0.2", WS_SUBNET_HOST, "::1"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory, net, canary):
    def cfg(d):
        return d.config(
            workspace_subnets=["10.42.0.0/16", f"{WS_SUBNET_HOST}/32"],
            policies=[policy(
                net,
                allow_domains=["localhost", ".github.com"],
                allow_cidrs=[f"{WS_SUBNET_HOST}/32"],
                http_ports=[80, 8080, canary.port],
                connect_ports=[443, canary.port],
                tls_only_ports=[443],
            )],
        )

    yield from run_shared(tmp_path_factory.mktemp("ssrf"), cfg)


@pytest.fixture
def proxy(shared):
    yield from use_shared(shared)


def _check(proxy, canary, r, rule, lp, method):
    assert r.status == 403, r
    assert r.header("X-Cdeguard-Rule") == rule, r
    assert r.header("X-Cdeguard-Policy") == POLICY, r
    time.sleep(0.05)
    assert canary.hits() == [], f"the denied request reached a listener: {canary.hits()}"
    recs = proxy.wait_audit(lambda x: x.get("client") == f"127.0.0.1:{lp}")
    assert recs and recs[0]["decision"] == "deny" and recs[0]["rule"] == rule, recs
    assert recs[0]["method"] == method, recs


@pytest.mark.parametrize("host,rule", VECTORS, ids=[f"{h}->{r}" for h, r in VECTORS])
def test_ssrf_plain_http(proxy, canary, host, rule):
    url = f"http://{host}:{canary.port}/ssrf-probe"
    with ProxyClient(proxy.egress) as c:
        lp = c.sock.getsockname()[1]
        r = c.request("GET", url, host=f"{host}:{canary.port}", timeout=15)
    _check(proxy, canary, r, rule, lp, "GET")


@pytest.mark.parametrize("host,rule", VECTORS, ids=[f"{h}->{r}" for h, r in VECTORS])
def test_ssrf_connect(proxy, canary, host, rule):
    with ProxyClient(proxy.egress) as c:
        lp = c.sock.getsockname()[1]
        r = c.request("CONNECT", f"{host}:{canary.port}", timeout=15)
    _check(proxy, canary, r, rule, lp, "CONNECT")


def test_ssrf_default_port_forms(proxy, canary):
    """No explicit port: http_ports 80 and connect 443 pass, the address class still denies."""
    for req, rule in ((("GET", "http://[::1]/"), "ssrf:loopback"),
                      (("GET", "http://169.254.169.254/latest/meta-data/"), "ssrf:link_local"),
                      (("CONNECT", "169.254.169.254:443"), "ssrf:link_local")):
        with ProxyClient(proxy.egress) as c:
            r = c.request(*req)
        assert r.status == 403 and r.rule == rule, (req, r)


def test_loopback_origin_allowed_only_through_allow_cidrs(daemon_factory, net):
    url = f"http://{ORIGIN_HOST}:{net.http.port}/small?t=ssrf-allow"
    d = daemon_factory("with")
    d.start(d.config(policies=[policy(net, allow_cidrs=["127.0.0.2/32"])]))
    r = proxy_get(d, url)
    assert (r.status, r.body) == (200, SMALL_BODY), r
    rec = d.wait_audit(lambda x: x.get("host") == ORIGIN_HOST)[0]
    assert rec["decision"] == "allow" and rec["rule"] == "allow_cidrs:127.0.0.2/32", rec

    d2 = daemon_factory("without")
    d2.start(d2.config(policies=[policy(net, allow_cidrs=["127.0.0.3/32"])]))
    n0 = len(net.http.requests_matching("t=ssrf-deny"))
    r = proxy_get(d2, url.replace("ssrf-allow", "ssrf-deny"))
    assert r.status == 403 and r.rule == "ssrf:loopback", r
    with ProxyClient(d2.egress) as c:
        r = c.request("CONNECT", f"{ORIGIN_HOST}:{net.http.port}")
    assert r.status == 403 and r.rule == "ssrf:loopback", r
    assert len(net.http.requests_matching("t=ssrf-deny")) == n0


def test_allow_cidrs_do_not_open_other_loopback(daemon_factory, net):
    """allow_cidrs 127.0.0.2/32 does not cover 127.0.0.1 or [::1]."""
    d = daemon_factory()
    d.start(d.config(policies=[policy(net, allow_cidrs=["127.0.0.2/32"],
                                      http_ports=[80, net.http.port, d.egress])]))
    r = proxy_get(d, f"http://127.0.0.1:{d.egress}/")  # the proxy itself
    assert r.status == 403 and r.rule == "ssrf:loopback", r


def test_ipv6_mapped_form_of_allowed_origin(daemon_factory, net):
    """An IPv4-mapped spelling of an allowed address is the same address (allowed), which
    shows the check and the connect use one parse."""
    d = daemon_factory()
    d.start(d.config(policies=[policy(net, allow_cidrs=["127.0.0.2/32"])]))
    r = proxy_get(d, f"http://[::ffff:127.0.0.2]:{net.http.port}/small?t=mapped")
    assert (r.status, r.body) == (200, SMALL_BODY), r
    r = proxy_get(d, f"http://0x7f000002:{net.http.port}/small?t=hexform")
    assert (r.status, r.body) == (200, SMALL_BODY), r


@pytest.mark.parametrize("host", ["%31%32%37.0.0.1", "%6c%6fcalhost", "127.0.0.1%00.github.com",
                                  "127.0.0.1%2f", "0x7f.0x0.0x0.0x1", "127.0.0.1\t"])
def test_encoded_and_odd_spellings_never_connect(proxy, canary, host):
    """Percent-encoding and control bytes in the authority: refused (400) or denied (403),
    never connected."""
    data = (f"GET http://{host}:{canary.port}/ HTTP/1.1\r\nHost: x\r\n\r\n").encode("latin-1")
    with ProxyClient(proxy.egress) as c:
        c.send(data)
        r = c.response(timeout=5)
    assert r.status in (400, 403), r
    time.sleep(0.05)
    assert canary.hits() == []
