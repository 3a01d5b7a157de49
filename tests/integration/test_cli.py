"""
Command line (doc/egress.md "Command line"): --version, help, check-config on the
bundled and on broken configs, hash-token, and the start-up line of `serve`.
"""

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from conftest import DEMO_TOKEN_HASH, REPO_ROOT, clean_env, require_bin

LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) (debug|info|warn|error) \S"
)


def run(*args, stdin=None, cwd=REPO_ROOT, timeout=10):
    return subprocess.run(
        [str(require_bin()), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(),
        timeout=timeout,
    )


def makefile_version():
    m = re.search(r"^VERSION\s*:=\s*(\S+)", (REPO_ROOT / "Makefile").read_text(), re.M)
    return m.group(1) if m else None


def test_version():
    cp = run("--version")
    assert cp.returncode == 0, cp
    assert re.search(r"\bcdeguard\b", cp.stdout), cp.stdout
    v = makefile_version()
    assert v and v in cp.stdout, (v, cp.stdout)


@pytest.mark.parametrize("args", [["help"], ["--help"]])
def test_help_lists_subcommands(args):
    cp = run(*args)
    assert cp.returncode == 0, cp
    out = cp.stdout + cp.stderr
    for word in ("serve", "check-config", "hash-token", "scan", "inspect"):
        assert word in out, (word, out)


@pytest.mark.parametrize("sub,word", [("serve", "--config"), ("check-config", "FILE"),
                                      ("hash-token", "TOKEN"), ("scan", "--baseline"),
                                      ("inspect", "--redact")])
def test_subcommand_help(sub, word):
    cp = run(sub, "--help")
    assert cp.returncode == 0, cp
    assert word.lower() in (cp.stdout + cp.stderr).lower(), cp


def test_unknown_subcommand_fails():
    cp = run("no-such-subcommand")
    assert cp.returncode != 0, cp
    assert cp.stderr.strip(), "an unknown subcommand should say why on stderr"


def test_check_config_bundled_example():
    cp = run("check-config", "cdeguard.yaml")
    assert cp.returncode == 0, cp
    # doc: "FILE: ok"; a short parenthetical summary after it is tolerated
    assert re.match(r"^cdeguard\.yaml: ok( \(.*\))?$", cp.stdout.strip()), cp.stdout


# A valid config whose line numbers the broken variants below refer to.
GOOD = f"""\
version: 1
listeners:
  egress: 127.0.0.1:3128
  admin: 127.0.0.1:9090
audit:
  sink: file
  path: audit.log
timeouts:
  client_header: 10s
  idle: 60s
workspace_subnets: [10.42.0.0/16]
deny_domains: [api.openai.com]
workspaces:
  - id: local
    group: developers
    sources: [127.0.0.1/32]
  - id: ws-demo
    group: developers
    tokens: ["{DEMO_TOKEN_HASH}"]
policies:
  - name: developers-egress
    groups: [developers]
    mode: enforce
    allow_domains: [.github.com]
    connect_ports: [443]
    upload:
      alert_bytes: 10MB
      action: alert
"""

# (id, {line: replacement}, [lines that must be reported])
BROKEN = [
    ("version-2", {1: "version: 2"}, [1]),
    ("bad-duration", {9: "  client_header: 10parsecs"}, [9]),
    ("cidr-host-bits", {11: "workspace_subnets: [10.42.0.1/16]"}, [11]),
    ("bad-source-cidr", {16: "    sources: [127.0.0.300/32]"}, [16]),
    ("bad-token", {19: '    tokens: ["sha256:nothex"]'}, [19]),
    ("bad-mode", {23: "    mode: bogus"}, [23]),
    ("port-out-of-range", {25: "    connect_ports: [70000]"}, [25]),
    ("bad-size", {27: "      alert_bytes: lots"}, [27]),
    ("bad-action", {28: "      action: explode"}, [28]),
    ("bad-sink", {6: "  sink: carrier-pigeon"}, [6]),
    ("bad-listener", {3: "  egress: not-an-address"}, [3]),
    ("unknown-key", {12: "deny_domainz: [api.openai.com]"}, [12]),
    ("two-errors", {9: "  client_header: soon", 23: "    mode: bogus"}, [9, 23]),
]


def _variant(changes):
    lines = GOOD.splitlines()
    for ln, text in changes.items():
        lines[ln - 1] = text
    return "\n".join(lines) + "\n"


def test_check_config_good_base(tmp_path):
    p = tmp_path / "good.yaml"
    p.write_text(GOOD)
    cp = run("check-config", str(p))
    assert cp.returncode == 0, cp
    assert re.match(rf"^{re.escape(str(p))}: ok( \(.*\))?$", cp.stdout.strip()), cp.stdout


@pytest.mark.parametrize("name,changes,lines", BROKEN, ids=[b[0] for b in BROKEN])
def test_check_config_broken(tmp_path, name, changes, lines):
    p = tmp_path / f"{name}.yaml"
    p.write_text(_variant(changes))
    cp = run("check-config", str(p))
    assert cp.returncode == 1, cp
    for ln in lines:
        assert re.search(rf"^{re.escape(str(p))}:{ln}: \S", cp.stderr, re.M), (ln, cp.stderr)
    assert "ok" not in cp.stdout.split(), cp.stdout


def test_check_config_yaml_syntax_error(tmp_path):
    p = tmp_path / "syntax.yaml"
    p.write_text(_variant({24: "    allow_domains: [.github.com"}))
    cp = run("check-config", str(p))
    assert cp.returncode == 1, cp
    assert re.search(rf"^{re.escape(str(p))}:\d+: \S", cp.stderr, re.M), cp.stderr


def test_check_config_missing_file(tmp_path):
    cp = run("check-config", str(tmp_path / "absent.yaml"))
    assert cp.returncode == 1, cp
    assert str(tmp_path / "absent.yaml") in cp.stderr


BAD_DIR = REPO_ROOT / "tests" / "configs" / "bad"
BAD_FILES = sorted(BAD_DIR.glob("*.yaml")) if BAD_DIR.is_dir() else []


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.name for p in BAD_FILES])
def test_check_config_repo_bad_configs(path: Path):
    cp = run("check-config", str(path))
    assert cp.returncode == 1, cp
    assert re.search(rf"^{re.escape(str(path))}:\d+: \S", cp.stderr, re.M), cp.stderr


def test_serve_refuses_broken_config(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(_variant({23: "    mode: bogus"}))
    cp = run("serve", "--config", str(p), "--workers", "1", timeout=10)
    assert cp.returncode != 0, cp
    assert f"{p}:23:" in cp.stderr, cp.stderr


@pytest.mark.parametrize("token", ["demo-token-change-me", "t", "x" * 200, "sp ace"])
def test_hash_token_argument(token):
    cp = run("hash-token", token)
    assert cp.returncode == 0, cp
    assert cp.stdout.strip() == "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def test_hash_token_matches_bundled_example():
    cp = run("hash-token", "demo-token-change-me")
    assert cp.stdout.strip() in (REPO_ROOT / "cdeguard.yaml").read_text()


def test_hash_token_stdin():
    cp = run("hash-token", stdin="from-stdin-token\n")
    assert cp.returncode == 0, cp
    assert cp.stdout.strip() == "sha256:" + hashlib.sha256(b"from-stdin-token").hexdigest()


def test_serve_start_line_and_log_format(daemon):
    text = daemon.wait_log("listening", timeout=5)
    want = (f"listening egress=127.0.0.1:{daemon.egress} gateway=off ext_authz=off "
            f"admin=127.0.0.1:{daemon.admin} workers=2")
    line = next((ln for ln in text.splitlines() if "listening" in ln), "")
    assert want in line, line
    assert re.search(r"\bcdeguard \S+ listening", line), line
    for ln in text.splitlines():
        if ln.strip():
            assert LOG_LINE.match(ln), f"log line without RFC 3339 time + level: {ln!r}"
