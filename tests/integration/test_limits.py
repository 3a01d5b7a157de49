"""
Rate limits and budgets (src/limits/limiter.h, doc/config.md "Limits", src/admin/admin.h)
end to end: curl -> cdeguard's gateway (or egress proxy) -> the mock providers of
tests/integration/mock_llm.py.

What the mock answers is fixed (mock_llm.FIGURES / USAGE), so the figures every
assertion below uses are exact:
  OpenAI chat (gpt-4o*)      input 11 (3 of them cached), output 7      -> 18 tokens
  Anthropic (claude-*)       input 23 (6 cache read, 4 cache write), output 17 -> 40 tokens
  Mistral                    input 9, output 5                           -> 14 tokens
The gateway's estimate of a call is ceil(prompt bytes / 4) + 4 per message + the
max output tokens (4096 when the body sets none): every call here sends the one
16-byte prompt P16, estimated at EST_P = 8 tokens (checked against the audit
record), so "max_tokens = X" reserves X + 8 tokens.

Daemons:
  * `emb`   one shared daemon (module scope) with the embedded (SQLite) store; each
            test uses workspaces / teams / projects of its own (table below), so the
            tests do not see each other's counters.
  * `free`  a second embedded daemon with `unpriced: free` and no admin_token.
  * short-lived daemons for the restart and CLI tests.
  * two replicas (A: on_error fail_closed, B: fail_open) sharing one redis-server
    that the module starts itself on a free port (never skipped: a missing
    redis-server is a failure).

Time: every daemon runs with CDEGUARD_TEST_CLOCK_FILE (LimClock).  A test that
counts per minute first moves the limiter's clock to 1 s after the start of a
minute nobody has used (and away from the end of the UTC day, so day budgets do
not roll over mid-test); "+60 s" moves to the next minute without sleeping.
The clock only ever moves forward (Redis expires counters at absolute times).

Workspaces of `emb` (all in group developers):
  ws-demo    team platform, project checkout   agent ws-demo/agent-a: 2 requests/minute
  ws-tok     team t-tok                        tokens_per_day 200
  ws-conc    team t-conc                       tokens_per_day 350
  ws-cost    team t-cost, project p-cost       p-cost: cost_per_month $1.00
  ws-anth    team t-anth                       requests_per_minute 2 (replaces "*")
  ws-stream  team t-stream                     tokens_per_day 3000
  ws-soft    team t-soft                       t-soft: tokens_per_day 100 (soft 80%)
  ws-gauge   team t-gauge, project p-gauge     t-gauge: tokens_per_day 5000,
                                               p-gauge: cost_per_day $5.00
  ws-post    team t-post                       t-post: tokens_per_day 100000
  local      source 127.0.0.1 (egress)         egress: 3 requests/minute, 1MB/minute
  "*" workspaces: requests_per_minute 1000
"""

import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import (
    CLIENT_CIDR,
    DEMO_TOKEN,
    ORIGIN_HOST,
    Daemon,
    ProxyClient,
    build_config,
    clean_env,
    finish_daemon,
    free_port,
    free_ports,
    metric,
    policy,
    proxy_get,
    SharedDaemon,
    TLS_HOST,
    open_tunnel,
    require_bin,
    tls_over,
    to_yaml,
    use_shared,
    wait_for,
    workspace,
)
from mock_llm import KEYS, USAGE
from test_gateway import (  # noqa: F401  (gw_pki and mock are fixtures)
    ANTHROPIC_VERSION,
    ENV_KEYS,
    TEST_RULES,
    _read_until_events,
    anth_body,
    audit_for,
    chat_body,
    gateway_section,
    gw_curl,
    gw_pki,
    mock,
    new_task,
)

pytestmark = pytest.mark.gateway

REDIS_SERVER = "/usr/bin/redis-server"

ADMIN_TOKEN = "itest-limits-admin-token-5b7e1c"
ADMIN_HASH = "sha256:" + hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()

P16 = "abcd" * 4  # 16 bytes, one message: ceil(16 / 4) + 4 = 8 tokens
EST_P = 8
DEFAULT_OUT = 4096  # the estimate of a body without max_tokens

OA_TOKENS = USAGE["openai"]["input"] + USAGE["openai"]["output"]  # 18
AN_TOKENS = USAGE["anthropic"]["input"] + USAGE["anthropic"]["output"]  # 40
MI_TOKENS = USAGE["mistral"]["input"] + USAGE["mistral"]["output"]  # 14

PRICES = [
    {"model": "gpt-4o*", "input": "2.50", "output": "10.00", "cache_read": "1.25"},
    {"model": "claude-*", "input": "3.00", "output": "15.00", "cache_read": "0.30",
     "cache_write": "3.75"},
]
STAR = '"*"'  # a YAML key (a plain * would be an alias)

GEMINI_PATH = "/gemini/v1beta/models/gemini-2.5-flash:generateContent"


def tok(ws: str) -> str:
    return DEMO_TOKEN if ws == "ws-demo" else f"itest-lim-{ws}-token"


def thash(t: str) -> str:
    return "sha256:" + hashlib.sha256(t.encode()).hexdigest()


# --------------------------------------------------------------------------- money


def _pico(usd: str) -> int:
    """USD per million tokens -> pico-USD per token (exact)."""
    return int(Decimal(usd) * 1000000)


def cost_nano(price: dict, u: dict) -> int:
    """The cost of one call (limits/price.h): input includes the cached tokens."""
    cin = _pico(price["input"])
    cr = _pico(price.get("cache_read", price["input"]))
    cw = _pico(price.get("cache_write", price["input"]))
    uncached = max(0, u["input"] - u["cache_read"] - u["cache_write"])
    pico = (uncached * cin + u["cache_read"] * cr + u["cache_write"] * cw
            + u["output"] * _pico(price["output"]))
    return pico // 1000 + (1 if pico % 1000 >= 500 else 0)


def usd(nano: int) -> str:
    micro = nano // 1000 + (1 if nano % 1000 >= 500 else 0)
    return f"{micro // 1000000}.{micro % 1000000:06d}"


OA_COST = cost_nano(PRICES[0], USAGE["openai"])  # 93 750 nano-USD
AN_COST = cost_nano(PRICES[1], USAGE["anthropic"])  # 310 800 nano-USD


# --------------------------------------------------------------------------- clock


class LimClock:
    """The limiter's test clock: wall clock + the offset in a file the daemon
    re-reads when its mtime changes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self._mtime = 0
        self._write()

    def _write(self):
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(f"{self.offset}\n")
        os.replace(tmp, self.path)
        # a distinct mtime even on a file system with a coarse clock
        ns = max(time.time_ns(), self._mtime + 1_000_000)
        self._mtime = ns
        os.utime(self.path, ns=(ns, ns))

    def now(self) -> int:
        return int(time.time()) + self.offset

    def advance(self, seconds: int):
        assert seconds > 0, "the test clock only moves forward"
        self.offset += seconds
        self._write()

    def fresh_minute(self, day_margin: int = 900) -> int:
        """Move to 1 s after the start of a minute nobody has used yet, at least
        day_margin s before the end of the UTC day (else into the next day)."""
        t = self.now()
        target = (t // 60 + 1) * 60 + 1
        day_end = (target // 86400 + 1) * 86400
        if day_end - target < day_margin:
            target = day_end + 1
        self.offset = target - int(time.time())
        self._write()
        return target

    def minute_end(self) -> int:
        return (self.now() // 60 + 1) * 60

    def day_start(self) -> int:
        return self.now() // 86400 * 86400

    def day_end(self) -> int:
        return self.day_start() + 86400


# --------------------------------------------------------------------------- config


def lim_workspaces(*specs):
    """[local (egress, by source)] + (id, team, project) gateway workspaces."""
    out = [workspace("local", sources=[CLIENT_CIDR])]
    for id_, team, project in specs:
        w = {"id": id_, "group": "developers", "tokens": [thash(tok(id_))]}
        if team:
            w["team"] = team
        if project:
            w["project"] = project
        out.append(w)
    return out


def sqlite_store(d, interval="50ms"):
    return {"type": "sqlite", "path": str(d.workdir / "usage.db"), "flush_interval": interval}


def lim_config(d, mock, pki, *, limits, workspaces, net=None, clock=None) -> str:
    """Config text for d: the gateway listener, the mock providers and a limits section."""
    d.gateway = free_ports(1)[0]
    while d.gateway in (d.egress, d.admin):
        d.gateway = free_ports(1)[0]
    d.wait_ports = [d.gateway]
    d.env.update(ENV_KEYS)
    if clock is not None:
        d.env["CDEGUARD_TEST_CLOCK_FILE"] = str(clock.path)
        d.clock = clock
    keyfile = d.workdir / "groq.key"
    keyfile.write_text(KEYS["groq"] + "\n")
    os.chmod(keyfile, 0o600)
    gw = gateway_section(mock, pki)
    for p in gw["providers"]:
        if p.get("key") == "file:GROQ_KEY_FILE":
            p["key"] = f"file:{keyfile}"
    return d.config(
        workspaces=workspaces,
        policies=[policy(net)],
        listeners={"gateway": f"127.0.0.1:{d.gateway}"},
        extra={"gateway": gw, "inspect": {"disable": ["email-address"], "rules": TEST_RULES},
               "limits": limits},
    )


EMB_WORKSPACES = [
    ("ws-demo", "platform", "checkout"),
    ("ws-tok", "t-tok", None),
    ("ws-conc", "t-conc", None),
    ("ws-cost", "t-cost", "p-cost"),
    ("ws-anth", "t-anth", None),
    ("ws-stream", "t-stream", None),
    ("ws-soft", "t-soft", None),
    ("ws-gauge", "t-gauge", "p-gauge"),
    ("ws-post", "t-post", None),
]
TOK_MAX, CONC_MAX, STREAM_MAX, SOFT_MAX = 200, 350, 3000, 100
GAUGE_TOKENS, GAUGE_COST = 5000, "5.00"


def emb_limits(d):
    return {
        "time_zone": "UTC",
        "soft_threshold": 80,
        "store": sqlite_store(d),
        "admin_token": ADMIN_HASH,
        "unpriced": "refuse",
        "prices": PRICES,
        "workspaces": {
            STAR: {"requests_per_minute": 1000},
            "ws-tok": {"tokens_per_day": TOK_MAX},
            "ws-conc": {"tokens_per_day": CONC_MAX},
            "ws-anth": {"requests_per_minute": 2},
            "ws-stream": {"tokens_per_day": STREAM_MAX},
        },
        "agents": {"ws-demo/agent-a": {"requests_per_minute": 2}},
        "projects": {"p-cost": {"cost_per_month": "1.00"},
                     "p-gauge": {"cost_per_day": GAUGE_COST}},
        "teams": {"platform": {"tokens_per_minute": 100000},
                  "t-soft": {"tokens_per_day": SOFT_MAX},
                  "t-gauge": {"tokens_per_day": GAUGE_TOKENS},
                  "t-post": {"tokens_per_day": 100000}},
        "egress": {"local": {"requests_per_minute": 3, "bytes_per_minute": "1MB"}},
    }


def prestart(holders):
    """Start the daemons of SharedDaemon holders side by side (a start compiles the
    inspection rules: seconds under the sanitizers)."""
    for h in holders:
        h.generation += 1
        h.d = Daemon(h.workdir / f"gen{h.generation}")
        h.d.start(h.config_fn(h.d), wait=False)
    for h in holders:
        h.d.wait_ready()


@pytest.fixture(scope="module")
def emb_holders(tmp_path_factory, mock, gw_pki, net):
    """`emb` and `free`, started together."""
    base_e = tmp_path_factory.mktemp("lim-emb")
    clock_e = LimClock(base_e / "clock")
    base_f = tmp_path_factory.mktemp("lim-free")
    clock_f = LimClock(base_f / "clock")

    def cfg_emb(d):
        return lim_config(d, mock, gw_pki, limits=emb_limits(d),
                          workspaces=lim_workspaces(*EMB_WORKSPACES), net=net, clock=clock_e)

    def cfg_free(d):
        limits = {"store": sqlite_store(d), "unpriced": "free", "prices": PRICES,
                  "projects": {"p-cost": {"cost_per_month": "1.00"}}}
        return lim_config(d, mock, gw_pki, limits=limits, clock=clock_f,
                          workspaces=lim_workspaces(("ws-cost", "t-cost", "p-cost")))

    holders = SimpleNamespace(emb=SharedDaemon(base_e, cfg_emb),
                              free=SharedDaemon(base_f, cfg_free))
    try:
        prestart([holders.emb, holders.free])
        yield holders
    finally:
        problems = holders.emb.finish() + holders.free.finish()
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def emb(emb_holders):
    """The shared daemon with the embedded store."""
    yield from use_shared(emb_holders.emb)


@pytest.fixture
def free(emb_holders):
    """unpriced: free, no admin_token."""
    yield from use_shared(emb_holders.free)


@pytest.fixture(autouse=True)
def _mock_reset(request):
    if "mock" in request.fixturenames:
        request.getfixturevalue("mock").reset()
    yield


# --------------------------------------------------------------------------- clients


def call(d, ws, *, max_tokens=None, model="gpt-4o-mini", stream=False, agent=None,
         prompt=P16, timeout=20.0, **extra):
    """An OpenAI chat call of workspace ws."""
    body = chat_body(model, prompt=prompt, stream=stream, **extra)
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return gw_curl(d.gateway, "/openai/v1/chat/completions", body, token=tok(ws), agent=agent,
                   timeout=timeout)


def anth_call(d, ws, *, max_tokens=64, model="claude-sonnet-4-5", stream=False):
    body = anth_body(model, prompt=P16, stream=stream, max_tokens=max_tokens)
    return gw_curl(d.gateway, "/anthropic/v1/messages", body, token=tok(ws), auth="x-api-key",
                   headers=[ANTHROPIC_VERSION])


def gemini_call(d, ws):
    body = {"contents": [{"role": "user", "parts": [{"text": P16}]}],
            "generationConfig": {"maxOutputTokens": 64}}
    return gw_curl(d.gateway, GEMINI_PATH, body, token=tok(ws), auth="x-goog-api-key")


def admin(d, method, path, body=None, token=ADMIN_TOKEN, timeout=15.0):
    """One request to the admin listener (the admin token by default)."""
    headers = [("Connection", "close")]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        headers.append(("Content-Type", "application/json"))
    with ProxyClient(d.admin, timeout=timeout) as c:
        return c.request(method, path, headers=headers, body=data, host=f"127.0.0.1:{d.admin}")


def budgets(d) -> dict:
    r = admin(d, "GET", "/v1/budgets")
    assert r.status == 200, r
    return r.json()


def budget(d, scope, name, limit) -> dict:
    j = budgets(d)
    rows = [x for x in j["limits"]
            if x.get("scope") == scope and x.get("name") == name and x.get("limit") == limit]
    assert len(rows) == 1, f"want one {scope} {name} {limit} in GET /v1/budgets: {j!r}"
    return rows[0]


def wait_used(d, scope, name, limit, want, timeout=3.0):
    """Poll GET /v1/budgets until `used` of that rule is `want` (a settlement lands
    right after the audit record); returns the last row."""
    deadline = time.monotonic() + timeout
    while True:
        row = budget(d, scope, name, limit)
        if row["used"] == want or time.monotonic() > deadline:
            return row
        time.sleep(0.05)


def usage(d, by, **q) -> dict:
    qs = "&".join(f"{k}={v}" for k, v in dict(by=by, **q).items())
    r = admin(d, "GET", f"/v1/usage?{qs}")
    assert r.status == 200, r
    return r.json()


def usage_row(report, key, name):
    rows = [x for x in report["rows"] if x.get(key) == name]
    assert len(rows) == 1, f"want one row {key}={name}: {report!r}"
    return rows[0]


def assert_limited(r, fmt="openai", reason="cdeguard_rate_limited", needles=(), status=429):
    """A refusal in the provider's own error shape with Retry-After; returns
    (retry_after, message)."""
    assert r.status == status, r
    ra = r.header("Retry-After")
    assert ra is not None and ra.isdigit() and int(ra) >= 1, f"Retry-After {ra!r}: {r!r}"
    j = r.json()
    if fmt == "openai":
        e = j["error"]
        assert set(e) >= {"message", "type", "param", "code"}, j
        if status == 429:
            assert e["type"] == "rate_limit_error", j
        assert e["code"] == reason, j
        msg = e["message"]
    elif fmt == "anthropic":
        assert j["type"] == "error", j
        if status == 429:
            assert j["error"]["type"] == "rate_limit_error", j
        msg = j["error"]["message"]
    else:
        e = j["error"]
        assert e["code"] == status, j
        if status == 429:
            assert e["status"] == "RESOURCE_EXHAUSTED", j
        msg = e["message"]
    for n in needles:
        assert n in msg, f"{n!r} not in the message {msg!r}"
    return int(ra), msg


def assert_audit_refused(d, task, status, reason):
    a = audit_for(d, task)
    assert a["status"] == status and a["reason"] == reason, a
    return a


def parallel(fns, timeout=90.0):
    """Run the callables at once; [(result, finished at monotonic)]."""
    out = [None] * len(fns)
    barrier = threading.Barrier(len(fns))

    def run(i):
        try:
            barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        try:
            r = fns[i]()
        except Exception as e:  # reported below
            r = e
        out[i] = (r, time.monotonic())

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(fns))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "parallel calls did not finish in time"
    for r, _ in out:
        if isinstance(r, Exception):
            raise r
    return out


def soft_records(d, scope):
    return [r for r in d.audit_records()
            if r.get("type") == "limit_soft_threshold" and r.get("scope") == scope]


# =========================================================================== config errors


def _base_config(tmp_path):
    return build_config(
        egress_port=3128, admin_port=9090, audit_path=tmp_path / "audit.log",
        workspaces=[{"id": "ws-demo", "group": "developers", "team": "platform",
                     "project": "checkout", "tokens": [thash(DEMO_TOKEN)]}],
        policies=[policy()],
    )


BAD_LIMITS = [
    # (id, limits text, [offsets of the lines that must be reported])
    ("entries", [
        "limits:",                                          # 1
        "  store:",                                         # 2
        "    type: sqlite",                                 # 3
        "    path: /tmp/cdeguard-itest-never-opened.db",    # 4
        "    flush_interval: 5ms",                          # 5  below 10ms
        "  workspaces:",                                    # 6
        "    ws-nope:",                                     # 7  unknown workspace
        "      tokens_per_day: 100",                        # 8
        "  teams:",                                         # 9
        "    platform:",                                    # 10
        "      tokens_per_day: -5",                         # 11 not a positive integer
        "  egress:",                                        # 12
        '    "*":',                                         # 13
        "      tokens_per_day: 10",                         # 14 not an egress limit
    ], [5, 7, 11, 14]),
    ("store-and-prices", [
        "limits:",                                          # 1
        "  store:",                                         # 2
        "    type: redis",                                  # 3
        "    url: http://127.0.0.1:6379",                   # 4  not redis://
        "    on_error: shrug",                              # 5  not an on_error value
        "  admin_token: plain-text-token",                  # 6  not sha256:HEX
        "  prices:",                                        # 7
        '    - {model: "gpt-4o*", input: "cheap", output: "10.00"}',  # 8 not a price
        "  projects:",                                      # 9
        "    checkout:",                                    # 10
        "      cost_per_month: 0",                          # 11 not positive
    ], [4, 5, 6, 8, 11]),
]


@pytest.mark.parametrize("name,lines,bad", BAD_LIMITS, ids=[b[0] for b in BAD_LIMITS])
def test_check_config_limits_errors(tmp_path, name, lines, bad):
    """16. A bad limits section: exit 1, one FILE:LINE message per mistake."""
    base = _base_config(tmp_path)
    n0 = len(base.rstrip("\n").split("\n"))
    p = tmp_path / f"{name}.yaml"
    p.write_text(base.rstrip("\n") + "\n" + "\n".join(lines) + "\n")
    cp = subprocess.run([str(require_bin()), "check-config", str(p)], capture_output=True,
                        text=True, env=clean_env(), timeout=20)
    assert cp.returncode == 1, cp
    for off in bad:
        ln = n0 + off
        assert re.search(rf"^{re.escape(str(p))}:{ln}: \S", cp.stderr, re.M), (
            f"no message for line {ln} ({lines[off - 1].strip()!r}):\n{cp.stderr}")
    assert "ok" not in cp.stdout.split(), cp.stdout


def test_check_config_limits_good(tmp_path):
    base = _base_config(tmp_path)
    p = tmp_path / "good.yaml"
    d = SimpleNamespace(workdir=tmp_path)
    limits = emb_limits(d)
    limits["workspaces"] = {STAR: {"requests_per_minute": 10},
                            "ws-demo": {"tokens_per_day": 5000, "soft_threshold": 90}}
    limits["agents"] = {"ws-demo/agent-a": {"requests_per_minute": 2}}
    limits["projects"] = {"checkout": {"cost_per_month": "1.00"}}
    limits["teams"] = {"platform": {"tokens_per_minute": 100000}}
    limits["egress"] = {STAR: {"requests_per_minute": 3, "bytes_per_minute": "10MB"}}
    p.write_text(base + to_yaml({"limits": limits}))
    cp = subprocess.run([str(require_bin()), "check-config", str(p)], capture_output=True,
                        text=True, env=clean_env(), timeout=20)
    assert cp.returncode == 0, cp
    assert cp.stdout.startswith(f"{p}: ok"), cp.stdout


# =========================================================================== embedded store


def test_agent_requests_per_minute(emb, mock):
    """1. 2 requests/minute for ws-demo/agent-a: the 3rd is a 429 (OpenAI shape,
    Retry-After, the scope and limit named); other agents and calls without an agent
    are not limited by it; the next minute the agent may call again."""
    clock = emb.clock
    clock.fresh_minute()
    m0 = metric(emb.metrics(), "cdeguard_limit_refusals_total", scope="agent",
                metric="requests", period="minute")
    for _ in range(2):
        r = call(emb, "ws-demo", agent="agent-a", max_tokens=16)
        assert r.status == 200, r
    mk = mock.mark()
    r = call(emb, "ws-demo", agent="agent-a", max_tokens=16)
    ra, msg = assert_limited(r, "openai", "cdeguard_rate_limited",
                             ["agent ws-demo/agent-a", "requests_per_minute"])
    left = clock.minute_end() - clock.now()
    assert abs(ra - left) <= 3 and ra <= 60, (ra, left)
    assert mock.since(mk) == [], "a refused call reached the provider"
    assert_audit_refused(emb, r.task, 429, "cdeguard_rate_limited")
    m1 = metric(emb.metrics(), "cdeguard_limit_refusals_total", scope="agent",
                metric="requests", period="minute")
    assert m1 - m0 == 1, (m0, m1)
    # not this agent: not limited by its rule
    for _ in range(3):
        assert call(emb, "ws-demo", max_tokens=16).status == 200
        assert call(emb, "ws-demo", agent="agent-b", max_tokens=16).status == 200
    assert call(emb, "ws-demo", agent="agent-a", max_tokens=16).status == 429
    # the next minute
    clock.advance(60)
    for _ in range(2):
        r = call(emb, "ws-demo", agent="agent-a", max_tokens=16)
        assert r.status == 200, r
    assert call(emb, "ws-demo", agent="agent-a", max_tokens=16).status == 429


def test_token_budget_reservation(emb, mock):
    """2. tokens_per_day 200 of ws-tok: a call whose estimate (prompt + max_tokens)
    does not fit is refused although used < max; one that fits exactly is not;
    `used` is the sum of the provider's usage."""
    emb.clock.fresh_minute()
    r = call(emb, "ws-tok", max_tokens=100)  # reserves 108
    assert r.status == 200, r
    a = audit_for(emb, r.task)
    assert a["prompt_tokens_est"] == EST_P, a
    assert a["usage"]["input"] + a["usage"]["output"] == OA_TOKENS, a
    row = wait_used(emb, "workspace", "ws-tok", "tokens_per_day", OA_TOKENS)
    assert (row["used"], row["max"], row["remaining"]) == (OA_TOKENS, TOK_MAX, TOK_MAX - OA_TOKENS)
    # max_completion_tokens counts like max_tokens: 18 + 108 <= 200
    r = call(emb, "ws-tok", max_completion_tokens=100)
    assert r.status == 200, r
    wait_used(emb, "workspace", "ws-tok", "tokens_per_day", 2 * OA_TOKENS)
    # 36 used: a call of up to 8 + 160 = 168 tokens would overrun (36 + 168 > 200)
    mk = mock.mark()
    r = call(emb, "ws-tok", max_tokens=160)
    ra, msg = assert_limited(r, "openai", "cdeguard_budget_exceeded",
                             ["workspace ws-tok", "168", "tokens_per_day", "36", "200"])
    left = emb.clock.day_end() - emb.clock.now()
    assert abs(ra - left) <= 5, (ra, left)
    assert mock.since(mk) == []
    assert_audit_refused(emb, r.task, 429, "cdeguard_budget_exceeded")
    # no max_tokens: the estimate is 8 + 4096
    r = call(emb, "ws-tok")
    assert_limited(r, "openai", "cdeguard_budget_exceeded", [str(EST_P + DEFAULT_OUT)])
    # exactly what is left: 36 + 8 + 156 = 200 is allowed
    r = call(emb, "ws-tok", max_tokens=156)
    assert r.status == 200, r
    row = wait_used(emb, "workspace", "ws-tok", "tokens_per_day", 3 * OA_TOKENS)
    assert row["used"] == 3 * OA_TOKENS and row["remaining"] == TOK_MAX - 3 * OA_TOKENS, row
    assert row["override"] is False, row
    assert isinstance(row["window_start"], str) and isinstance(row["window_end"], str), row
    # refused calls used nothing
    rep = usage(emb, "workspace")
    u = usage_row(rep, "workspace", "ws-tok")
    assert (u["requests"], u["tokens"]) == (3, 3 * OA_TOKENS), u


def test_concurrent_reservations(emb, mock):
    """3. Six concurrent slow streams, a budget of 350 and estimates of 100: three
    reserve, three are refused while the first ones are still streaming."""
    emb.clock.fresh_minute()
    mock.slow_events, mock.slow_delay = 30, 0.1  # ~3 s per stream
    wait_used(emb, "workspace", "ws-conc", "tokens_per_day", 0)
    t0 = time.monotonic()
    res = parallel([lambda: call(emb, "ws-conc", model="gpt-4o-fault-slow", stream=True,
                                 max_tokens=100 - EST_P, timeout=40)] * 6)
    ok = [(r, t) for r, t in res if r.status == 200]
    refused = [(r, t) for r, t in res if r.status != 200]
    assert len(ok) == 3 and len(refused) == 3, [r for r, _ in res]
    for r, _ in refused:
        assert_limited(r, "openai", "cdeguard_budget_exceeded", ["workspace ws-conc"])
    for r, _ in ok:
        assert r.rc == 0 and b"[DONE]" in r.body, r
    first_done = min(t for _, t in ok)
    assert all(t < first_done for _, t in refused), \
        "a refusal came after a stream had ended: the calls did not overlap"
    assert first_done - t0 >= 2.0, "the streams were not slow"
    row = wait_used(emb, "workspace", "ws-conc", "tokens_per_day", 3 * OA_TOKENS)
    assert row["used"] == 3 * OA_TOKENS, row
    # every reservation was released: 54 + 100 fits again, 54 + 297 does not
    assert call(emb, "ws-conc", max_tokens=100 - EST_P).status == 200
    row = wait_used(emb, "workspace", "ws-conc", "tokens_per_day", 4 * OA_TOKENS)
    assert row["used"] == 4 * OA_TOKENS, row
    left = CONC_MAX - 4 * OA_TOKENS
    assert call(emb, "ws-conc", max_tokens=left - EST_P + 1).status == 429
    assert call(emb, "ws-conc", max_tokens=left - EST_P).status == 200


def test_cost_budget_and_prices(emb, mock):
    """4. cost_per_month of project p-cost: the usage report's cost is the price
    formula (cached tokens at their own price); an unpriced model under a cost rule
    is a 403; a call whose estimated cost would overrun is a 429."""
    emb.clock.fresh_minute()
    for _ in range(2):
        r = call(emb, "ws-cost", max_tokens=100)
        assert r.status == 200, r
    r = anth_call(emb, "ws-cost", max_tokens=100)
    assert r.status == 200, r
    want_nano = 2 * OA_COST + AN_COST
    assert want_nano == 498300  # 2 x 93 750 + 310 800 nano-USD
    assert usd(want_nano) == "0.000498"

    def report():
        return usage_row(usage(emb, "project"), "project", "p-cost")

    u = wait_for(lambda: (lambda x: x if x["requests"] == 3 else None)(report()), timeout=3) \
        or report()
    ua, uo = USAGE["openai"], USAGE["anthropic"]
    assert u == {
        "project": "p-cost", "requests": 3,
        "input_tokens": 2 * ua["input"] + uo["input"],
        "output_tokens": 2 * ua["output"] + uo["output"],
        "cache_read_tokens": 2 * ua["cache_read"] + uo["cache_read"],
        "cache_write_tokens": 2 * ua["cache_write"] + uo["cache_write"],
        "tokens": 2 * OA_TOKENS + AN_TOKENS,
        "cost_usd": usd(want_nano),
    }, u
    row = wait_used(emb, "project", "p-cost", "cost_per_month", usd(want_nano))
    assert row["used"] == usd(want_nano) and row["max"] == "1.000000", row
    assert row["remaining"] == usd(1_000_000_000 - want_nano), row
    # by model / provider: the same calls
    m = usage(emb, "model")
    assert usage_row(m, "model", "claude-sonnet-4-5")["cost_usd"] == usd(AN_COST)
    # an unpriced model (mistral-*) with a cost rule: 403
    mk = mock.mark()
    r = gw_curl(emb.gateway, "/mistral/v1/chat/completions",
                chat_body("mistral-small-latest", prompt=P16), token=tok("ws-cost"))
    assert r.status == 403, r
    j = r.json()
    assert j["error"]["type"] == "permission_error" and j["error"]["code"] == \
        "cdeguard_unpriced_model", j
    assert "mistral-small-latest" in j["error"]["message"], j
    assert mock.since(mk) == []
    a = audit_for(emb, r.task)
    assert a["status"] == 403 and a["reason"] == "cdeguard_unpriced_model", a
    # no cost rule for ws-tok's scopes: the unpriced model is fine there
    r = gw_curl(emb.gateway, "/mistral/v1/chat/completions",
                chat_body("mistral-small-latest", prompt=P16, max_tokens=10), token=tok("ws-tok"))
    assert r.status == 200, r
    # 200 000 output tokens of claude cost $3 > $1: refused by the estimate
    r = anth_call(emb, "ws-cost", max_tokens=200000)
    assert_limited(r, "anthropic", needles=["project p-cost", "cost_per_month"])
    assert_audit_refused(emb, r.task, 429, "cdeguard_budget_exceeded")


def test_unpriced_free(free, mock):
    """4b. unpriced: free: the unpriced model is allowed under a cost rule, at cost 0."""
    r = gw_curl(free.gateway, "/mistral/v1/chat/completions",
                chat_body("mistral-small-latest", prompt=P16, max_tokens=10),
                token=tok("ws-cost"))
    assert r.status == 200, r
    r = call(free, "ws-cost", max_tokens=10)
    assert r.status == 200, r

    def rows():
        rep = usage(free, "model", since="1d")
        return {x["model"]: x for x in rep["rows"]}

    got = wait_for(lambda: (lambda x: x if len(x) == 2 else None)(rows()), timeout=3) or rows()
    assert got["mistral-small-latest"]["tokens"] == MI_TOKENS, got
    assert got["mistral-small-latest"]["cost_usd"] == "0.000000", got
    assert got["gpt-4o-mini"]["cost_usd"] == usd(OA_COST), got


def test_admin_without_admin_token(free):
    """11b. No admin_token: the GETs are open, POST /v1/budgets is a 403."""
    r = admin(free, "GET", "/v1/budgets", token=None)
    assert r.status == 200, r
    assert r.json()["store"] == "sqlite"
    r = admin(free, "GET", "/v1/usage?by=team", token=None)
    assert r.status == 200, r
    r = admin(free, "POST", "/v1/budgets",
              {"scope": "project", "name": "p-cost", "limits": {"cost_per_day": "2"}},
              token=ADMIN_TOKEN)
    assert r.status == 403, r


def test_anthropic_and_gemini_shaped_429(emb, mock):
    """5. The 429 in Anthropic's (and Gemini's) error shape."""
    emb.clock.fresh_minute()
    assert anth_call(emb, "ws-anth").status == 200
    assert gemini_call(emb, "ws-anth").status == 200
    r = anth_call(emb, "ws-anth")
    assert_limited(r, "anthropic", needles=["workspace ws-anth", "requests_per_minute"])
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert_audit_refused(emb, r.task, 429, "cdeguard_rate_limited")
    r = gemini_call(emb, "ws-anth")
    assert_limited(r, "gemini", needles=["workspace ws-anth", "requests_per_minute"])


def _abort_anthropic_stream(d, ws, max_tokens, events=6):
    task = new_task()
    body = json.dumps(anth_body("claude-fault-slow", prompt=P16, stream=True,
                                max_tokens=max_tokens)).encode()
    c = ProxyClient(d.gateway, timeout=10)
    try:
        c.send((f"POST /anthropic/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{d.gateway}\r\n"
                f"x-api-key: {tok(ws)}\r\nanthropic-version: 2023-06-01\r\n"
                f"x-task-id: {task}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        got = _read_until_events(c, events)
        assert got.startswith(b"HTTP/1.1 200"), got[:300]
    finally:
        c.close()
    return task


def test_streams_and_client_abort_settle(emb, mock):
    """6. Streamed calls count their usage; a client that aborts mid-stream has its
    input and output so far counted and its reservation released."""
    emb.clock.fresh_minute()
    mock.slow_events, mock.slow_delay = 60, 0.1
    r = call(emb, "ws-stream", stream=True, max_tokens=100)
    assert r.status == 200 and b"[DONE]" in r.body, r
    assert audit_for(emb, r.task)["usage"]["total"] == OA_TOKENS
    r = anth_call(emb, "ws-stream", stream=True, max_tokens=100)
    assert r.status == 200 and b"message_stop" in r.body, r
    assert audit_for(emb, r.task)["usage"]["total"] == AN_TOKENS
    wait_used(emb, "workspace", "ws-stream", "tokens_per_day", OA_TOKENS + AN_TOKENS)
    # aborted: reserves 8 + 2000, uses input 23 + the output so far
    task = _abort_anthropic_stream(emb, "ws-stream", max_tokens=2000)
    a = audit_for(emb, task, timeout=10)
    assert a["client_aborted"] is True, a
    aborted = a["usage"]["input"] + a["usage"]["output"]
    assert a["usage"]["input"] == USAGE["anthropic"]["input"] and a["usage"]["output"] > 0, a
    used = OA_TOKENS + AN_TOKENS + aborted
    row = wait_used(emb, "workspace", "ws-stream", "tokens_per_day", used)
    assert row["used"] == used, (row, a["usage"])
    # what is left, exactly: one more token is refused, the whole of it is allowed
    left = STREAM_MAX - used
    r = call(emb, "ws-stream", max_tokens=left - EST_P + 1)
    assert_limited(r, "openai", "cdeguard_budget_exceeded", [f"up to {left + 1}"])
    r = call(emb, "ws-stream", max_tokens=left - EST_P)
    assert r.status == 200, r
    wait_used(emb, "workspace", "ws-stream", "tokens_per_day", used + OA_TOKENS)


def test_soft_threshold_once(emb, mock):
    """7. Team t-soft (100 tokens/day, soft 80%): one limit_soft_threshold record
    when a settlement crosses 80, never again in that window; the metric counts it."""
    emb.clock.fresh_minute()
    scope = "team:t-soft"
    m0 = metric(emb.metrics(), "cdeguard_limit_soft_threshold_total", scope="team",
                metric="tokens", period="day")
    assert soft_records(emb, scope) == []
    for i in range(4):  # 18, 36, 54, 72
        r = call(emb, "ws-soft", max_tokens=1)
        assert r.status == 200, r
        wait_used(emb, "team", "t-soft", "tokens_per_day", (i + 1) * OA_TOKENS)
    assert soft_records(emb, scope) == [], "reported before 80% was crossed"
    r = call(emb, "ws-soft", max_tokens=1)  # 90
    assert r.status == 200, r
    recs = emb.wait_audit(lambda x: x.get("type") == "limit_soft_threshold"
                          and x.get("scope") == scope, timeout=3)
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["limit"] == "tokens_per_day" and rec["threshold_pct"] == 80, rec
    assert str(rec["used"]) == str(5 * OA_TOKENS) and str(rec["max"]) == str(SOFT_MAX), rec
    # 90 + 9 <= 100: one more call, 108 used; then nothing fits
    assert call(emb, "ws-soft", max_tokens=1).status == 200
    wait_used(emb, "team", "t-soft", "tokens_per_day", 6 * OA_TOKENS)
    r = call(emb, "ws-soft", max_tokens=1)
    assert_limited(r, "openai", "cdeguard_budget_exceeded", ["team t-soft", "tokens_per_day"])
    time.sleep(0.3)
    assert len(soft_records(emb, scope)) == 1, soft_records(emb, scope)
    m1 = metric(emb.metrics(), "cdeguard_limit_soft_threshold_total", scope="team",
                metric="tokens", period="day")
    assert m1 - m0 == 1, (m0, m1)


def test_budget_gauges(emb, mock):
    """8. cdeguard_budget_remaining / cdeguard_budget_limit of team and project
    budgets on /metrics follow the calls (refreshed every second)."""
    emb.clock.fresh_minute()
    team = dict(scope="team", name="t-gauge", metric="tokens", period="day")
    proj = dict(scope="project", name="p-gauge", metric="cost", period="day")

    def series(m, family, labels):
        # conftest.metric() cannot take a label called "name"
        want = set(labels.items())
        got = [v for (n, ls), v in m.items() if n == family and want <= set(ls)]
        return got[0] if len(got) == 1 else tuple(got)

    def gauges():
        m = emb.metrics()
        return (series(m, "cdeguard_budget_remaining", team),
                series(m, "cdeguard_budget_limit", team),
                series(m, "cdeguard_budget_remaining", proj),
                series(m, "cdeguard_budget_limit", proj))

    want0 = (GAUGE_TOKENS, GAUGE_TOKENS, 5.0, 5.0)
    got = wait_for(lambda: gauges() == want0, timeout=4) and want0 or gauges()
    assert got == want0, got
    for _ in range(2):
        assert call(emb, "ws-gauge", max_tokens=10).status == 200
    left_nano = 5_000_000_000 - 2 * OA_COST
    want1 = (GAUGE_TOKENS - 2 * OA_TOKENS, GAUGE_TOKENS, float(usd(left_nano)), 5.0)
    assert want1[2] == 4.999813
    got = wait_for(lambda: gauges() == want1, timeout=4) and want1 or gauges()
    assert got == want1, got


def test_post_budgets(emb, mock):
    """11. POST /v1/budgets: a run-time override of a team's tokens_per_day applies
    to the next call; null removes it; errors are 401 / 400 / 404."""
    emb.clock.fresh_minute()
    assert call(emb, "ws-post", max_tokens=16).status == 200
    body = {"scope": "team", "name": "t-post", "limits": {"tokens_per_day": 20}}
    r = admin(emb, "POST", "/v1/budgets", body)
    assert r.status == 200, r
    j = r.json()
    assert j["scope"] == "team" and j["name"] == "t-post", j
    assert j["override"] == {"tokens_per_day": 20}, j
    row = budget(emb, "team", "t-post", "tokens_per_day")
    assert row["max"] == 20 and row["override"] is True, row
    # 18 used + 8 + 1 > 20
    r = call(emb, "ws-post", max_tokens=1)
    assert_limited(r, "openai", "cdeguard_budget_exceeded", ["team t-post", "tokens_per_day"])
    # removed: the config's 100000 again
    r = admin(emb, "POST", "/v1/budgets", {"scope": "team", "name": "t-post", "limits": None})
    assert r.status == 200, r
    assert r.json()["override"] is None, r
    row = budget(emb, "team", "t-post", "tokens_per_day")
    assert row["max"] == 100000 and row["override"] is False, row
    assert call(emb, "ws-post", max_tokens=1).status == 200
    # authorisation: POST and GET need the admin token
    r = admin(emb, "POST", "/v1/budgets", body, token=None)
    assert r.status == 401, r
    r = admin(emb, "POST", "/v1/budgets", body, token="not-the-admin-token")
    assert r.status == 401, r
    assert admin(emb, "GET", "/v1/budgets", token=None).status == 401
    assert admin(emb, "GET", "/v1/usage?by=team", token="wrong").status == 401
    assert budget(emb, "team", "t-post", "tokens_per_day")["max"] == 100000
    # bad bodies
    for bad in (
        {"scope": "team", "name": "t-post", "limits": {"tokens_per_year": 5}},
        {"scope": "team", "name": "t-post", "limits": {"tokens_per_day": -5}},
        {"scope": "team", "name": "t-post", "limits": {"tokens_per_day": "-5"}},
        {"scope": "team", "name": "t-post", "limits": {"tokens_per_day": 0}},
        {"scope": "team", "name": "t-post", "limits": {"bytes_per_minute": "1MB"}},
        {"scope": "team", "name": "t-post", "limits": {}},
        {"scope": "galaxy", "name": "t-post", "limits": {"tokens_per_day": 5}},
        {"scope": "team", "limits": {"tokens_per_day": 5}},
        "{not json",
    ):
        r = admin(emb, "POST", "/v1/budgets", bad)
        assert r.status == 400, (bad, r)
    r = admin(emb, "POST", "/v1/budgets",
              {"scope": "team", "name": "no-such-team", "limits": {"tokens_per_day": 5}})
    assert r.status == 404, r
    # none of that changed anything
    row = budget(emb, "team", "t-post", "tokens_per_day")
    assert row["max"] == 100000 and row["override"] is False, row


def test_egress_rate_and_byte_limits(emb, net):
    """12. Egress limits of workspace `local`: the 4th request of a minute is a 429
    with Retry-After and X-Cdeguard-Rule: rate_limit; a download bigger than
    bytes_per_minute exhausts it and the next request is refused."""
    clock = emb.clock
    clock.fresh_minute()
    url = f"http://{ORIGIN_HOST}:{net.http.port}/small"
    n0 = len(net.http.requests_matching("lim-egress"))
    for i in range(3):
        r = proxy_get(emb, f"{url}?lim-egress={i}")
        assert r.status == 200, r
    r = proxy_get(emb, f"{url}?lim-egress=3")
    assert r.status == 429, r
    assert r.header("X-Cdeguard-Rule") == "rate_limit", r
    ra = r.header("Retry-After")
    assert ra and ra.isdigit() and 1 <= int(ra) <= 60, r
    assert abs(int(ra) - (clock.minute_end() - clock.now())) <= 3, r
    assert b"requests_per_minute" in r.body, r
    assert len(net.http.requests_matching("lim-egress")) - n0 == 3, "a refused request went out"
    # the next minute: one download of 3 MB exhausts 1MB/minute
    clock.advance(60)
    with ProxyClient(emb.egress, timeout=20) as c:
        port = c.sock.getsockname()[1]
        r = c.request("GET", f"http://{ORIGIN_HOST}:{net.http.port}/big?n=3000000",
                      headers=[("Connection", "close")])
    assert r.status == 200 and len(r.body) == 3000000, r
    recs = emb.wait_audit(lambda x: x.get("client") == f"127.0.0.1:{port}", timeout=5)
    assert recs and recs[0]["bytes_down"] >= 3000000, recs
    r = proxy_get(emb, f"{url}?lim-egress=bytes")
    assert r.status == 429, r
    assert r.header("X-Cdeguard-Rule") == "rate_limit", r
    assert r.header("Retry-After") and r.header("Retry-After").isdigit(), r
    assert b"bytes_per_minute" in r.body, r
    row = budget(emb, "egress", "local", "bytes_per_minute")
    assert row["used"] >= 3000000 and row["remaining"] == 0, row
    # and the minute after that, allowed again
    clock.advance(60)
    assert proxy_get(emb, f"{url}?lim-egress=again").status == 200


def _read_body(t, pause=0.0, deadline=20.0) -> int:
    """Read from t until EOF, a reset or the deadline, pausing after each read;
    the number of bytes read (a count only: a 64 MiB body is not kept)."""
    got, end = 0, time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            b = t.recv(65536)
        except (ssl.SSLError, OSError):
            break
        if not b:
            break
        got += len(b)
        if pause:
            time.sleep(pause)
    return got


def test_egress_tunnel_charged_while_open(emb, net):
    """13. A tunnel's bytes are charged to the minute they move in, while it
    runs: one opened in the minute before sees its download counted in the
    current minute's bytes_per_minute before it closes."""
    clock = emb.clock
    clock.fresh_minute()
    c, r = open_tunnel(emb, f"{TLS_HOST}:{net.tls.port}")
    with c:
        assert r.status == 200, r
        t = tls_over(c, net.ca, TLS_HOST, timeout=20)
        clock.advance(60)
        n = 600000
        t.sendall(f"GET /big?n={n} HTTP/1.1\r\nHost: origin.test\r\n\r\n".encode())
        assert _read_body(t, deadline=10) >= n
        # the tunnel is still open (the client has not closed its side)
        assert wait_for(lambda: budget(emb, "egress", "local", "bytes_per_minute")["used"] >= n,
                        5), budget(emb, "egress", "local", "bytes_per_minute")
        t.close()
    clock.advance(60)


def _tunnel_cut_at_byte_limit(d, net, others=()):
    """A tunnel through d that moves more than bytes_per_minute (1MB) is cut
    within about a second, recorded as a rate_limit denial, and the bytes it
    moved exhaust the minute for the workspace's next request (through d and
    through the other replicas sharing its store)."""
    d.clock.fresh_minute()
    c, r = open_tunnel(d, f"{TLS_HOST}:{net.tls.port}")
    with c:
        assert r.status == 200, r
        port = c.sock.getsockname()[1]
        t = tls_over(c, net.ca, TLS_HOST, timeout=20)
        n = 64 * 1024 * 1024
        t.sendall(f"GET /big?n={n} HTTP/1.1\r\nHost: origin.test\r\n\r\n".encode())
        t0 = time.monotonic()
        got = _read_body(t, pause=0.005)
        took = time.monotonic() - t0
    assert got < n, f"a {n}-byte download went through a 1MB/minute limit ({took:.1f} s)"
    assert took < 10, f"the tunnel was cut after {took:.1f} s"
    recs = d.wait_audit(lambda x: x.get("client") == f"127.0.0.1:{port}", timeout=5)
    assert recs, "no audit record for the tunnel"
    rec = recs[0]
    assert (rec["decision"], rec["rule"], rec["reason"]) == (
        "deny", "rate_limit", "cdeguard_rate_limited"), rec
    assert 1000000 < rec["bytes_down"] < n, rec
    for x in (d, *others):
        r = proxy_get(x, f"http://{ORIGIN_HOST}:{net.http.port}/small?lim-egress=after-cut")
        assert r.status == 429 and b"bytes_per_minute" in r.body, r
    d.clock.advance(60)


def test_egress_tunnel_cut_at_byte_limit(emb, net):
    """14. The embedded store: see _tunnel_cut_at_byte_limit."""
    _tunnel_cut_at_byte_limit(emb, net)


# =========================================================================== persistence and CLI


PERSIST_MAX = 100


PERSIST_WORKSPACES = [("ws-demo", "platform", "checkout"), ("ws-b", "backend", None)]


def _persist_limits(d):
    return {"store": sqlite_store(d), "admin_token": ADMIN_HASH, "prices": PRICES,
            "workspaces": {"ws-demo": {"tokens_per_day": PERSIST_MAX}}}


def _persist_config(d, mock, gw_pki, clock):
    return lim_config(d, mock, gw_pki, limits=_persist_limits(d), clock=clock,
                      workspaces=lim_workspaces(*PERSIST_WORKSPACES))


def test_restart_keeps_usage(daemon_factory, mock, gw_pki, tmp_path):
    """9. SQLite: the counters survive a SIGTERM and a restart on the same database."""
    clock = LimClock(tmp_path / "clock")
    clock.fresh_minute()
    d = daemon_factory("persist")
    text = _persist_config(d, mock, gw_pki, clock)
    d.start(text)
    for _ in range(3):
        assert call(d, "ws-demo", max_tokens=10).status == 200  # reserves 18
    wait_used(d, "workspace", "ws-demo", "tokens_per_day", 3 * OA_TOKENS)
    d.stop()
    d.start(text)  # same config, same database
    row = budget(d, "workspace", "ws-demo", "tokens_per_day")
    assert row["used"] == 3 * OA_TOKENS and row["remaining"] == PERSIST_MAX - 3 * OA_TOKENS, row
    u = usage_row(usage(d, "workspace"), "workspace", "ws-demo")
    assert (u["requests"], u["tokens"], u["cost_usd"]) == (3, 3 * OA_TOKENS, usd(3 * OA_COST)), u
    # 54 + 8 + 39 > 100; 54 + 8 + 38 = 100
    r = call(d, "ws-demo", max_tokens=39)
    assert_limited(r, "openai", "cdeguard_budget_exceeded", ["workspace ws-demo"])
    assert call(d, "ws-demo", max_tokens=38).status == 200


def _cli_usage(d, *args, config=None):
    cp = subprocess.run([str(require_bin()), "usage", "--config", str(config or d.config_path),
                         *args], capture_output=True, text=True, env=clean_env(**d.env),
                        timeout=60)
    return cp


def _lean_config(d) -> Path:
    """The daemon's workspaces and limits (the same store) without the gateway: a
    config that loads without compiling the inspection rules (seconds under ASan)."""
    p = d.workdir / "lean.yaml"
    p.write_text(build_config(egress_port=d.egress, admin_port=d.admin,
                              audit_path=d.workdir / "lean-audit.log",
                              workspaces=lim_workspaces(*PERSIST_WORKSPACES),
                              policies=[policy()], extra={"limits": _persist_limits(d)}))
    return p


def test_cli_usage_report(daemon_factory, mock, gw_pki, tmp_path):
    """10. `cdeguard usage --config FILE --by team --json` reads the store (read-only
    while the daemon runs, and after it stopped) and prints the admin endpoint's
    report; the text table has the teams and a TOTAL row."""
    clock = LimClock(tmp_path / "clock")
    clock.fresh_minute()
    d = daemon_factory("cli")
    d.start(_persist_config(d, mock, gw_pki, clock))
    for _ in range(2):
        assert call(d, "ws-demo", max_tokens=10).status == 200
    assert anth_call(d, "ws-b").status == 200
    want = usage(d, "team")  # the defaults: since today 00:00 UTC
    assert want["by"] == "team", want
    assert usage_row(want, "team", "platform")["requests"] == 2, want
    assert usage_row(want, "team", "backend")["tokens"] == AN_TOKENS, want
    assert want["total"]["requests"] == 3 and want["total"]["tokens"] == 2 * OA_TOKENS + AN_TOKENS
    assert want["total"]["cost_usd"] == usd(2 * OA_COST + AN_COST), want

    def same(j):  # "until" is "now + 1 h" of each process: it may differ by a second
        return {k: j.get(k) for k in ("by", "since", "rows", "total")}

    lean = _lean_config(d)

    def cli_json(config=None):
        cp = _cli_usage(d, "--by", "team", "--json", config=config)
        assert cp.returncode == 0, cp
        return json.loads(cp.stdout)

    # while the daemon runs, with the daemon's own config (the CLI sees what is
    # flushed: every 50 ms)
    got = wait_for(lambda: (lambda j: j if same(j) == same(want) else None)(cli_json()),
                   timeout=5) or cli_json()
    assert same(got) == same(want), (got, want)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", got["until"]), got
    cp = _cli_usage(d, "--by", "team", "--since", "1d", config=lean)
    assert cp.returncode == 0, cp
    lines = cp.stdout.splitlines()
    assert any(ln.split()[:1] == ["platform"] for ln in lines), cp.stdout
    assert any(ln.split()[:1] == ["backend"] for ln in lines), cp.stdout
    total = [ln.split() for ln in lines if ln.split()[:1] == ["TOTAL"]]
    assert len(total) == 1 and total[0][1] == "3", cp.stdout
    assert total[0][-1] == usd(2 * OA_COST + AN_COST), cp.stdout
    # after the daemon stopped
    d.stop()
    assert same(cli_json(lean)) == same(want)
    cp = _cli_usage(d, "--by", "nonsense")
    assert cp.returncode != 0, cp


# =========================================================================== Redis


class RedisServer:
    """A redis-server of this module on a free loopback port (no persistence)."""

    def __init__(self, workdir: Path):
        if not os.access(REDIS_SERVER, os.X_OK):
            pytest.fail(f"{REDIS_SERVER} not found: the limits tests need it "
                        "(scripts/install-deps installs it)")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout=10.0):
        log = open(self.workdir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
             "--protected-mode", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited with {self.proc.returncode}:\n"
                            + (self.workdir / "redis.log").read_text(errors="replace")[-2000:])
            try:
                if self.cmd("PING") == "PONG":
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"redis-server did not answer on port {self.port} within {timeout}s")
            time.sleep(0.05)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def cmd(self, *args, timeout=3.0):
        """One command over RESP; a simple reply as str / int / None."""
        data = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in map(str, args))
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            buf = b""
            while b"\r\n" not in buf:
                d = s.recv(65536)
                if not d:
                    raise OSError("redis closed the connection")
                buf += d
            line, _, rest = buf.partition(b"\r\n")
            kind, val = line[:1], line[1:].decode()
            if kind == b"+":
                return val
            if kind == b":":
                return int(val)
            if kind == b"-":
                raise AssertionError(f"redis error: {val}")
            if kind == b"$":
                n = int(val)
                if n < 0:
                    return None
                while len(rest) < n + 2:
                    d = s.recv(65536)
                    if not d:
                        raise OSError("redis closed the connection")
                    rest += d
                return rest[:n].decode()
            raise AssertionError(f"unexpected redis reply {buf[:100]!r}")


REDIS_WORKSPACES = [
    ("ws-r1", "t-r1", None),   # one shared tokens budget
    ("ws-r2", "t-r2", None),   # requests_per_minute 4 over both replicas
    ("ws-r3", "t-r3", None),   # per-minute reset with the clock
    ("ws-r4", "t-r4", None),   # limits after a redis restart
    ("ws-r5", "t-r5", None),   # only the "*" rule
]
R1_MAX, R1_EST = 500, 100


@pytest.fixture(scope="module")
def redis_env(tmp_path_factory, mock, gw_pki, net):
    """redis-server + replicas A (fail_closed) and B (fail_open), one key prefix,
    one test clock."""
    base = tmp_path_factory.mktemp("lim-redis")
    srv = RedisServer(base / "redis")
    srv.start()
    clock = LimClock(base / "clock")
    prefix = "itest" + uuid.uuid4().hex[:8]
    made = []

    def replica(name, on_error):
        d = Daemon(base / name)
        made.append(d)
        limits = {
            "store": {"type": "redis", "url": srv.url, "key_prefix": prefix, "timeout": "200ms",
                      "on_error": on_error},
            "admin_token": ADMIN_HASH,
            "prices": PRICES,
            "workspaces": {STAR: {"requests_per_minute": 1000},
                           "ws-r1": {"tokens_per_day": R1_MAX},
                           "ws-r2": {"requests_per_minute": 4},
                           "ws-r3": {"requests_per_minute": 2},
                           "ws-r4": {"requests_per_minute": 2}},
            "egress": {"local": {"bytes_per_minute": "1MB"}},
        }
        d.start(lim_config(d, mock, gw_pki, limits=limits, clock=clock, net=net,
                           workspaces=lim_workspaces(*REDIS_WORKSPACES)), wait=False)
        return d

    try:
        env = SimpleNamespace(redis=srv, clock=clock, prefix=prefix,
                              a=replica("replica-a", "fail_closed"),
                              b=replica("replica-b", "fail_open"))
        env.a.wait_ready()
        env.b.wait_ready()
        yield env
    finally:
        problems = []
        for d in made:
            problems += finish_daemon(d)
        srv.stop()
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def rx(redis_env):
    """The Redis replicas, checked for life and sanitizer reports after the test."""
    yield redis_env
    problems = []
    for d in (redis_env.a, redis_env.b):
        problems += d.sanitizer_findings(new_only=True)
        if not d.alive():
            problems.append(f"cdeguard died during this test ({d.death_note()}):\n"
                            + d.log_tail())
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def test_redis_shared_token_budget(rx, mock):
    """13. Two replicas, one budget: 12 concurrent slow streams (6 per replica) with
    estimates of 100 under tokens_per_day 500: exactly 5 go through; the settled
    usage is theirs, the same on both replicas and in Redis."""
    rx.clock.fresh_minute()
    mock.slow_events, mock.slow_delay = 30, 0.1

    def one(d):
        return lambda: call(d, "ws-r1", model="gpt-4o-fault-slow", stream=True,
                            max_tokens=R1_EST - EST_P, timeout=40)

    res = parallel([one(rx.a)] * 6 + [one(rx.b)] * 6)
    ok = [r for r, _ in res if r.status == 200]
    refused = [r for r, _ in res if r.status != 200]
    assert len(ok) == R1_MAX // R1_EST, [r for r, _ in res]
    for r in refused:
        assert_limited(r, "openai", "cdeguard_budget_exceeded", ["workspace ws-r1"])
    want = len(ok) * OA_TOKENS
    for d in (rx.a, rx.b):
        row = wait_used(d, "workspace", "ws-r1", "tokens_per_day", want)
        assert row["used"] == want, row
        assert row["used"] <= R1_MAX + 2 * R1_EST
    assert budgets(rx.a)["store"] == "redis"
    key = f"{rx.prefix}:c:workspace:ws-r1|tokens|day|{rx.clock.day_start()}"
    assert rx.redis.cmd("GET", key) == str(want), key


def test_redis_requests_per_minute_across_replicas(rx, mock):
    """13b. requests_per_minute 4 counts the calls to both replicas together."""
    rx.clock.fresh_minute()
    for d in (rx.a, rx.a, rx.b, rx.b):
        r = call(d, "ws-r2", max_tokens=10)
        assert r.status == 200, r
    for d in (rx.a, rx.b):
        r = call(d, "ws-r2", max_tokens=10)
        assert_limited(r, "openai", "cdeguard_rate_limited",
                       ["workspace ws-r2", "requests_per_minute"])
        assert_audit_refused(d, r.task, 429, "cdeguard_rate_limited")


def test_redis_per_minute_reset_with_clock(rx, mock):
    """15. Both replicas follow the test clock: the next minute starts afresh."""
    rx.clock.fresh_minute()
    assert call(rx.a, "ws-r3", max_tokens=10).status == 200
    assert call(rx.b, "ws-r3", max_tokens=10).status == 200
    r = call(rx.a, "ws-r3", max_tokens=10)
    ra, _ = assert_limited(r, "openai", "cdeguard_rate_limited", ["workspace ws-r3"])
    assert abs(ra - (rx.clock.minute_end() - rx.clock.now())) <= 3, ra
    rx.clock.advance(60)
    assert call(rx.b, "ws-r3", max_tokens=10).status == 200
    assert call(rx.a, "ws-r3", max_tokens=10).status == 200
    assert call(rx.b, "ws-r3", max_tokens=10).status == 429
    assert call(rx.a, "ws-r3", max_tokens=10).status == 429


def test_redis_tunnel_cut_at_byte_limit(rx, net):
    """A tunnel's meter calls go through Redis (answered later, on the loop):
    the same cut, and replica B refuses the next request too."""
    _tunnel_cut_at_byte_limit(rx.a, net, others=[rx.b])


def test_redis_settlement_survives_shutdown(rx, mock, daemon_factory, gw_pki):
    """13d. Settlements are summed per worker for a few milliseconds before they go
    to Redis; a replica stopped right after a call still delivers its settlement
    (it waits for Redis's answer on the way out): the counter holds the call's
    actual tokens, not its reservation, and the usage row is there."""
    rx.clock.fresh_minute()
    d = daemon_factory("r-stop")
    prefix = "itest" + uuid.uuid4().hex[:8]
    limits = {"store": {"type": "redis", "url": rx.redis.url, "key_prefix": prefix},
              "prices": PRICES,
              "workspaces": {"ws-r5": {"tokens_per_day": 100000}}}
    d.start(lim_config(d, mock, gw_pki, limits=limits, clock=rx.clock,
                       workspaces=lim_workspaces(*REDIS_WORKSPACES)))
    r = call(d, "ws-r5", max_tokens=500)
    assert r.status == 200, r
    d.stop()
    key = f"{prefix}:c:workspace:ws-r5|tokens|day|{rx.clock.day_start()}"
    assert rx.redis.cmd("GET", key) == str(OA_TOKENS), key
    hour = rx.clock.now() // 3600 * 3600
    assert rx.redis.cmd("EXISTS", f"{prefix}:u:{hour}") == 1


def test_redis_outage_and_recovery(rx, mock):
    """14. redis-server killed: the fail_closed replica answers 503
    cdeguard_limits_unavailable at once, the fail_open one lets calls through; after
    redis-server is back on the same port both recover by themselves and the
    limits apply again."""
    rx.clock.fresh_minute()
    assert call(rx.a, "ws-r5", max_tokens=10).status == 200
    rx.redis.kill()
    mk = mock.mark()
    t0 = time.monotonic()
    r = call(rx.a, "ws-r5", max_tokens=10)
    took = time.monotonic() - t0
    assert r.status == 503, r
    assert_limited(r, "openai", "cdeguard_limits_unavailable", status=503)
    assert took < 0.2 + 2.5, f"the 503 took {took:.2f}s (store timeout 200ms)"
    assert_audit_refused(rx.a, r.task, 503, "cdeguard_limits_unavailable")
    assert mock.since(mk) == [], "a fail_closed call reached the provider"
    n_open = rx.b.log_text().count("fail_open")
    r = call(rx.b, "ws-r5", max_tokens=10)
    assert r.status == 200, r
    rx.b.wait_log("fail_open", count=n_open + 1, timeout=3)
    # back on the same port (empty: no persistence)
    rx.redis.start()
    deadline = time.monotonic() + 12
    while True:
        r = call(rx.a, "ws-r5", max_tokens=10)
        if r.status == 200:
            break
        assert r.status == 503, r
        assert time.monotonic() < deadline, "replica A did not recover within 12 s"
        time.sleep(0.25)
    # B counts again when a call through it no longer logs fail_open
    deadline = time.monotonic() + 12
    while True:
        n = rx.b.log_text().count("fail_open")
        assert call(rx.b, "ws-r5", max_tokens=10).status == 200
        time.sleep(0.1)
        if rx.b.log_text().count("fail_open") == n:
            break
        assert time.monotonic() < deadline, "replica B did not recover within 12 s"
        time.sleep(0.25)
    rx.clock.fresh_minute()
    assert call(rx.a, "ws-r4", max_tokens=10).status == 200
    assert call(rx.b, "ws-r4", max_tokens=10).status == 200
    for d in (rx.a, rx.b):
        r = call(d, "ws-r4", max_tokens=10)
        assert_limited(r, "openai", "cdeguard_rate_limited", ["workspace ws-r4"])
