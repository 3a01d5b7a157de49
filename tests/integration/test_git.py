"""
`git clone` through the proxy: smart HTTP (git http-backend behind the test
origin), the dumb protocol, and HTTPS through a CONNECT tunnel to the TLS origin.
The clone's HEAD must equal the source repository's.
"""

import pytest

from conftest import ORIGIN_HOST, TLS_HOST, git, policy, shared_daemon_fixture, use_shared

shared = shared_daemon_fixture(lambda d, net: d.config(policies=[policy(net)]))


@pytest.fixture
def proxy(shared):
    yield from use_shared(shared)


def clone(proxy, url, dest, **env):
    return git("-c", f"http.proxy=http://127.0.0.1:{proxy.egress}", "-c", "http.lowSpeedLimit=1",
               "-c", "http.lowSpeedTime=20", "clone", "-q", url, str(dest), timeout=90, env=env)


def head_of(path):
    return git("rev-parse", "HEAD", cwd=path).stdout.strip()


def test_clone_smart_http(proxy, net, tmp_path):
    url = f"http://{ORIGIN_HOST}:{net.http.port}/git/{net.git['name']}"
    cp = clone(proxy, url, tmp_path / "c")
    assert cp.returncode == 0, cp.stderr
    assert head_of(tmp_path / "c") == net.git["head"]
    assert git("fsck", "--full", cwd=tmp_path / "c").returncode == 0
    recs = proxy.wait_audit(lambda r: r.get("host") == ORIGIN_HOST and r.get("method") == "POST")
    assert recs and recs[0]["decision"] == "allow", proxy.audit_records()[-5:]
    assert net.http.requests_matching("git-upload-pack")


def test_clone_dumb_http(proxy, net, tmp_path):
    url = f"http://{ORIGIN_HOST}:{net.http.port}/dumb/{net.git['name']}"
    cp = clone(proxy, url, tmp_path / "c", GIT_SMART_HTTP="0")
    assert cp.returncode == 0, cp.stderr
    assert head_of(tmp_path / "c") == net.git["head"]


def test_clone_https_through_tunnel(proxy, net, tmp_path):
    url = f"https://{TLS_HOST}:{net.tls.port}/git/{net.git['name']}"
    cp = clone(proxy, url, tmp_path / "c", GIT_SSL_CAINFO=net.ca)
    assert cp.returncode == 0, cp.stderr
    assert head_of(tmp_path / "c") == net.git["head"]
    recs = proxy.wait_audit(lambda r: r.get("method") == "CONNECT" and r.get("host") == TLS_HOST
                            and r.get("port") == net.tls.port)
    assert recs and all(r["decision"] == "allow" for r in recs), recs


def test_clone_from_denied_host_fails_with_403(proxy, tmp_path):
    cp = clone(proxy, "http://git.dropbox.com/repo.git", tmp_path / "c")
    assert cp.returncode != 0
    assert "403" in cp.stderr, cp.stderr
    cp = clone(proxy, "https://x.pastebin.com/repo.git", tmp_path / "d", GIT_SSL_CAINFO="/dev/null")
    assert cp.returncode != 0
    assert "403" in cp.stderr, cp.stderr
