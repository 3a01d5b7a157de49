"""
The LLM gateway (doc/gateway.md) end to end: official SDKs and curl -> cdeguard's
gateway listener -> mock providers over verified TLS (tests/integration/mock_llm.py).

Layout of the module:
  * the mock's own tests (test_mock_*): the official SDKs pointed straight at the mock
    over TLS (NODE_EXTRA_CA_CERTS), and raw checks of its fault modes.  They need no
    cdeguard binary and prove that what the gateway is tested against is what the
    SDKs accept.
  * one shared daemon (module scope) with the gateway and ext_authz listeners; the
    providers' endpoints are the mock's listeners ("main", "eu" behind a base path
    for Anthropic, "badtls" with a certificate from an untrusted CA, a closed port);
    keys come from env: references (one file:), upstream.ca_file is the test CA.
  * separate short-lived daemons for the TLS/mTLS listener and other content knobs.

Workspaces (tokens are stored as sha256 in the config):
  ws-demo        developers, unpinned (the SDK tests)
  ws-eu          developers, region eu
  ws-dead        developers, region dead (openai's "dead" endpoint: a closed port)
  ws-badtls      developers, region badtls (openai's endpoint with an untrusted cert)
  ws-restricted  restricted: providers [openai], models [gpt-4o-mini]
  ws-nogw        contractors: a group without a gateway `groups` entry

Every gateway call carries a unique x-task-id; its audit record is found by "task".
The SDK tests are skipped only when node_modules is missing (run `npm ci`).
"""

import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
import http.client
from pathlib import Path

import pytest

from conftest import (
    DEMO_TOKEN,
    DEMO_TOKEN_HASH,
    REPO_ROOT,
    ProxyClient,
    clean_env,
    free_ports,
    make_client_cert,
    make_test_pki,
    metric,
    metric_names,
    policy,
    run_shared,
    use_shared,
    wait_for,
)
from mock_llm import (
    FIGURES,
    KEYS,
    TEXT,
    USAGE,
    MockLLM,
    error_body,
    header,
    header_all,
    parse_sse,
)

pytestmark = pytest.mark.gateway

SDK_DIR = Path(__file__).resolve().parent / "sdk"
NODE_MODULES = REPO_ROOT / "node_modules"

TOKENS = {
    "ws-demo": DEMO_TOKEN,
    "ws-eu": "itest-gw-eu-token-8d21f0",
    "ws-dead": "itest-gw-dead-token-1b7c",
    "ws-badtls": "itest-gw-badtls-token-4e90",
    "ws-restricted": "itest-gw-restricted-token-77aa",
    "ws-nogw": "itest-gw-nogw-token-3c15",
}
ENV_KEYS = {
    "ITEST_OPENAI_KEY": KEYS["openai"],
    "ITEST_AZURE_KEY": KEYS["azure"],
    "ITEST_ANTHROPIC_KEY": KEYS["anthropic"],
    "ITEST_GEMINI_KEY": KEYS["gemini"],
    "ITEST_MISTRAL_KEY": KEYS["mistral"],
}
# the header and value each provider's key must arrive in (doc/gateway.md "Routes")
KEY_HEADER = {
    "openai": ("authorization", "Bearer " + KEYS["openai"]),
    "azure": ("api-key", KEYS["azure"]),
    "anthropic": ("x-api-key", KEYS["anthropic"]),
    "gemini": ("x-goog-api-key", KEYS["gemini"]),
    "mistral": ("authorization", "Bearer " + KEYS["mistral"]),
    "groq": ("authorization", "Bearer " + KEYS["groq"]),
}
CRED_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key", "proxy-authorization")
ANTHROPIC_VERSION = ("anthropic-version", "2023-06-01")

# content inspection: deterministic test rules (the built-in e-mail rule is disabled)
SECRET = "cdgtest_Q7xKp2LmZr9TvB4nWc8HdY3s"
EMAIL = "alice.smith@corp.internal"
TEST_RULES = [
    {"id": "cdgtest-token", "description": "cdeguard test vendor token", "category": "secret",
     "regex": r"\b(cdgtest_[A-Za-z0-9]{24})\b", "secret_group": 1, "keywords": ["cdgtest_"]},
    {"id": "cdgtest-email", "description": "test e-mail address", "category": "pii",
     "regex": r"\b([a-z0-9._-]+@corp\.internal)\b", "secret_group": 1,
     "keywords": ["@corp.internal"]},
    {"id": "cdgtest-dotenv", "description": "dotenv file (test rule)", "category": "path",
     "globs": [".env", ".env.*"], "exclude": [".env.example"]},
]

MAX_BODY = 1 << 20  # gateway.max_body in the shared config
MAX_PROMPT_TOKENS = 50000
FIRST_BYTE_TIMEOUT = 2.0
IDLE_TIMEOUT = 2.0

# endpoint names in the audit record (assumed: llm_request_kind_name())
ENDPOINT = {
    "chat": "openai-chat", "responses": "openai-responses", "embeddings": "openai-embeddings",
    "messages": "anthropic-messages", "count_tokens": "anthropic-count-tokens",
    "generate": "gemini-generate",
}


def thash(t: str) -> str:
    return "sha256:" + hashlib.sha256(t.encode()).hexdigest()


def new_task() -> str:
    return "t-" + uuid.uuid4().hex[:20]


# --------------------------------------------------------------------------- PKI and mock


@pytest.fixture(scope="session")
def gw_pki(tmp_path_factory):
    base = tmp_path_factory.mktemp("gw-pki")
    pki = make_test_pki(base / "ca")                # the test CA: mock, gateway listener, clients
    other = make_test_pki(base / "other")           # an untrusted CA
    pki["other"] = other
    pki["client_demo"] = make_client_cert(base / "ca", "ws-demo")
    pki["client_eu"] = make_client_cert(base / "ca", "ws-eu")
    pki["client_unknown"] = make_client_cert(base / "ca", "ws-nobody")
    pki["client_untrusted"] = make_client_cert(base / "other", "ws-demo")
    pki["dir"] = base
    return pki


@pytest.fixture(scope="session")
def mock(gw_pki):
    m = MockLLM({
        "main": (gw_pki["cert"], gw_pki["key"]),
        "eu": (gw_pki["cert"], gw_pki["key"]),
        "badtls": (gw_pki["other"]["cert"], gw_pki["other"]["key"]),
    })
    yield m
    m.close()


@pytest.fixture(autouse=True)
def _mock_defaults(request):
    """Every test starts with the mock's defaults (no forced fault)."""
    if "mock" in request.fixturenames:
        request.getfixturevalue("mock").reset()
    yield


# --------------------------------------------------------------------------- config


def provider_list(mock):
    main, eu = mock.url("main"), mock.url("eu")
    return [
        {"name": "openai", "type": "openai", "key": "env:ITEST_OPENAI_KEY", "endpoints": [
            {"url": main},
            {"url": eu, "region": "eu"},
            {"url": f"https://127.0.0.1:{mock.closed_port}", "region": "dead"},
            {"url": mock.url("badtls"), "region": "badtls"},
        ]},
        {"name": "azure", "type": "azure", "key": "env:ITEST_AZURE_KEY",
         "endpoints": [{"url": main}]},
        {"name": "anthropic", "type": "anthropic", "key": "env:ITEST_ANTHROPIC_KEY", "endpoints": [
            {"url": main},
            {"url": eu + "/eu-base", "region": "eu"},
        ]},
        {"name": "gemini", "type": "gemini", "key": "env:ITEST_GEMINI_KEY",
         "endpoints": [{"url": main}]},
        {"name": "mistral", "type": "mistral", "key": "env:ITEST_MISTRAL_KEY",
         "endpoints": [{"url": main}]},
        {"name": "groq", "type": "groq", "key": "file:GROQ_KEY_FILE",
         "endpoints": [{"url": main}]},
    ]


def gateway_workspaces():
    return [
        {"id": "ws-demo", "group": "developers", "tokens": [DEMO_TOKEN_HASH]},
        {"id": "ws-eu", "group": "developers", "region": "eu", "tokens": [thash(TOKENS["ws-eu"])]},
        {"id": "ws-dead", "group": "developers", "region": "dead",
         "tokens": [thash(TOKENS["ws-dead"])]},
        {"id": "ws-badtls", "group": "developers", "region": "badtls",
         "tokens": [thash(TOKENS["ws-badtls"])]},
        {"id": "ws-restricted", "group": "restricted", "team": "audit-team",
         "tokens": [thash(TOKENS["ws-restricted"])]},
        {"id": "ws-nogw", "group": "contractors", "tokens": [thash(TOKENS["ws-nogw"])]},
    ]


def gateway_section(mock, pki, *, content=None, providers=None, tls=None, **over):
    g = {
        "max_body": "1MiB",
        "upstream": {
            "ca_file": pki["ca"],
            "connect_timeout": "2s",
            "first_byte_timeout": f"{int(FIRST_BYTE_TIMEOUT)}s",
            "idle_timeout": f"{int(IDLE_TIMEOUT)}s",
            "pool_size": 4,
        },
        "content": {
            "block_secrets": True,
            "pii": "redact",
            "restricted_files": "block",
            "max_prompt_tokens": MAX_PROMPT_TOKENS,
            "log_prompts": "metadata_only",
        },
        "providers": providers if providers is not None else provider_list(mock),
        "groups": [
            {"name": "developers",
             "providers": ["openai", "azure", "anthropic", "gemini", "mistral", "groq"],
             "models": ["gpt-4o*", "text-embedding-3-*", "claude-*", "gemini-*", "mistral-*",
                        "llama-*"]},
            {"name": "restricted", "providers": ["openai"], "models": ["gpt-4o-mini"]},
        ],
    }
    g["content"].update(content or {})
    if tls:
        g["tls"] = tls
    g.update(over)
    return g


def gateway_config(d, mock, pki, **kw) -> str:
    """Config text for daemon d with the gateway and ext_authz listeners; sets d.gateway,
    d.ext_authz, the ports to wait for and the provider keys' environment."""
    d.gateway, d.ext_authz = free_ports(2)
    d.wait_ports = [d.gateway, d.ext_authz]
    d.env.update(ENV_KEYS)
    keyfile = d.workdir / "groq.key"
    keyfile.write_text(KEYS["groq"] + "\n")
    os.chmod(keyfile, 0o600)
    gw = gateway_section(mock, pki, **kw)
    for p in gw["providers"]:
        if p.get("key") == "file:GROQ_KEY_FILE":
            p["key"] = f"file:{keyfile}"
    return d.config(
        workspaces=gateway_workspaces(),
        policies=[policy(groups=["developers", "restricted", "contractors"])],
        listeners={"gateway": f"127.0.0.1:{d.gateway}", "ext_authz": f"127.0.0.1:{d.ext_authz}"},
        extra={"gateway": gw, "inspect": {"disable": ["email-address"], "rules": TEST_RULES}},
    )


@pytest.fixture(scope="module")
def gw_holder(tmp_path_factory, mock, gw_pki):
    yield from run_shared(tmp_path_factory.mktemp("gw"), lambda d: gateway_config(d, mock, gw_pki))


@pytest.fixture
def gw(gw_holder):
    """The shared gateway daemon (started on first use; checked after each test)."""
    yield from use_shared(gw_holder)


# --------------------------------------------------------------------------- clients


class GwResp:
    def __init__(self, status, headers, body, rc, err, task):
        self.status, self.headers, self.body, self.rc, self.err, self.task = (
            status, headers, body, rc, err, task)

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def json(self):
        return json.loads(self.body)

    def events(self):
        return parse_sse(self.body)

    def __repr__(self):
        return (f"<GwResp {self.status} rc={self.rc} headers={self.headers!r} "
                f"body={self.body[:400]!r} err={self.err[-300:]!r}>")


AUTH_HEADER = {
    "bearer": lambda t: ("Authorization", f"Bearer {t}"),
    "x-api-key": lambda t: ("x-api-key", t),
    "x-goog-api-key": lambda t: ("x-goog-api-key", t),
    "api-key": lambda t: ("api-key", t),
}


def gw_curl(port, path, body=None, *, token=DEMO_TOKEN, auth="bearer", headers=(),
            method="POST", task=None, agent=None, scheme="http", host="127.0.0.1",
            curl_args=(), timeout=20.0, content_type="application/json") -> GwResp:
    """One request with curl (HTTP/1.1); body: dict (JSON), str or bytes."""
    task = task or new_task()
    hdrs = []
    if token is not None and auth:
        hdrs.append(AUTH_HEADER[auth](token))
    if task:
        hdrs.append(("x-task-id", task))
    if agent:
        hdrs.append(("x-agent-id", agent))
    if content_type and body is not None:
        hdrs.append(("Content-Type", content_type))
    hdrs += list(headers)
    with tempfile.TemporaryDirectory(prefix="gwcurl-") as td:
        td = Path(td)
        args = ["curl", "-sS", "--http1.1", "--max-time", str(timeout), "-o", str(td / "body"),
                "-D", str(td / "head"), "-w", "%{http_code}", "-X", method, "-H", "Expect:"]
        if body is not None:
            data = body if isinstance(body, bytes) else (
                body.encode() if isinstance(body, str) else json.dumps(body).encode())
            (td / "req").write_bytes(data)
            args += ["--data-binary", f"@{td / 'req'}"]
        for k, v in hdrs:
            args += ["-H", f"{k}: {v}"]
        args += list(curl_args)
        args.append(f"{scheme}://{host}:{port}{path}")
        cp = subprocess.run(args, env=clean_env(), capture_output=True, timeout=timeout + 10)
        status = int(cp.stdout.decode() or 0) if cp.stdout.decode().isdigit() else 0
        head = (td / "head").read_bytes().decode("latin-1") if (td / "head").exists() else ""
        out = (td / "body").read_bytes() if (td / "body").exists() else b""
    headers_out = []
    for block in re.split(r"\r?\n\r?\n", head.strip()):  # the last head (after 100 Continue)
        if block.startswith("HTTP/"):
            headers_out = []
            for line in block.splitlines()[1:]:
                k, _, v = line.partition(":")
                headers_out.append((k.strip(), v.strip()))
    return GwResp(status, headers_out, out, cp.returncode, cp.stderr.decode("utf-8", "replace"), task)


def chat_body(model="gpt-4o-mini", prompt="Say hello.", stream=False, **extra):
    b = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        b["stream"] = True
    b.update(extra)
    return b


def anth_body(model="claude-sonnet-4-5", prompt="Say hello.", stream=False, **extra):
    b = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        b["stream"] = True
    b.update(extra)
    return b


def gem_body(prompt="Say hello."):
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}


def audit_for(d, task, timeout=5.0) -> dict:
    recs = d.wait_audit(lambda r: r.get("type") == "llm" and r.get("task") == task, timeout=timeout)
    assert len(recs) == 1, f"expected one llm audit record for task {task}, got {recs!r}"
    return recs[0]


def all_tokens():
    return list(TOKENS.values())


def assert_upstream_clean(rec, vendor):
    """The provider key arrived in its header; no workspace token and no other
    credential header went upstream; Accept-Encoding: identity."""
    name, value = KEY_HEADER[vendor]
    assert header_all(rec, name) == [value], rec["headers"]
    for h in CRED_HEADERS:
        if h != name:
            assert header(rec, h) is None, f"{h} forwarded upstream: {rec['headers']!r}"
    blob = repr(rec["headers"]) + rec["body"].decode("latin-1")
    for t in all_tokens():
        assert t not in blob, "a workspace token reached the provider"
    assert (header(rec, "accept-encoding") or "").lower() == "identity", rec["headers"]


def assert_shape(fmt, body: bytes, status: int, code=None):
    """A refusal in the provider's own error JSON (src/llm/errors.h)."""
    j = json.loads(body)
    if fmt == "openai":
        e = j["error"]
        assert set(e) >= {"message", "type", "param", "code"}, j
        assert isinstance(e["message"], str) and e["message"]
        want = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "invalid_request_error"}.get(status)
        if want:
            assert e["type"] == want, j
        if code is not None:
            assert e["code"] == code, j
    elif fmt == "anthropic":
        assert j["type"] == "error", j
        want = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large"}.get(status)
        if want:
            assert j["error"]["type"] == want, j
        assert isinstance(j["error"]["message"], str) and j["error"]["message"]
    else:
        e = j["error"]
        assert e["code"] == status, j
        want = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 413: "INVALID_ARGUMENT", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
                504: "DEADLINE_EXCEEDED"}.get(status)
        if want:
            assert e["status"] == want, j
    return j


# --------------------------------------------------------------------------- SDK runner


def have_sdks() -> bool:
    return (shutil.which("node") is not None
            and all((NODE_MODULES / p / "package.json").is_file()
                    for p in ("openai", "@anthropic-ai/sdk", "@google/genai")))


@pytest.fixture
def sdk(tmp_path):
    """run(script, args, ca=None) -> the script's JSON result.  Skips without node_modules."""
    if not have_sdks():
        pytest.skip("SDK tests need node and node_modules (openai, @anthropic-ai/sdk, "
                    "@google/genai): run `npm ci` at the repository root "
                    "(scripts/install-deps does it)")

    def run(script, args, ca=None, timeout=60):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
               "NODE_NO_WARNINGS": "1", "NO_COLOR": "1"}
        if ca:
            env["NODE_EXTRA_CA_CERTS"] = ca
        cp = subprocess.run(["node", str(SDK_DIR / f"{script}.mjs"), json.dumps(args)],
                            capture_output=True, timeout=timeout, env=env, cwd=str(REPO_ROOT))
        out = cp.stdout.decode("utf-8", "replace").strip().splitlines()
        assert cp.returncode == 0 and out, (
            f"{script}.mjs failed (rc {cp.returncode}):\n{cp.stdout[-2000:]!r}\n"
            f"{cp.stderr.decode('utf-8', 'replace')[-3000:]}")
        return json.loads(out[-1])

    return run


def ok(res):
    assert res.get("ok") is True, f"SDK call failed: {res!r}"
    return res


def err(res):
    assert res.get("ok") is False, f"SDK call succeeded unexpectedly: {res!r}"
    return res["error"]


def gw_base(d, vendor):
    return {
        "openai": f"http://127.0.0.1:{d.gateway}/openai/v1",
        "mistral": f"http://127.0.0.1:{d.gateway}/mistral/v1",
        "groq": f"http://127.0.0.1:{d.gateway}/groq/openai/v1",
        "anthropic": f"http://127.0.0.1:{d.gateway}/anthropic",
        "gemini": f"http://127.0.0.1:{d.gateway}/gemini",
    }[vendor]


# =========================================================================== the mock itself


MODELS = {"openai": "gpt-4o-mini", "mistral": "mistral-small-latest",
          "groq": "llama-3.3-70b-versatile", "anthropic": "claude-sonnet-4-5",
          "gemini": "gemini-2.5-flash"}


@pytest.mark.sdk
def test_mock_openai_sdk_direct(sdk, mock, gw_pki):
    """The OpenAI SDK accepts the mock's chat, stream, Responses and embeddings answers."""
    base = mock.url() + "/v1"
    a = {"base_url": base, "token": KEYS["openai"], "model": "gpt-4o-mini"}
    r = ok(sdk("openai", dict(a, op="chat"), ca=gw_pki["ca"]))
    assert r["text"] == TEXT["openai"] and r["usage"] == FIGURES["openai"]
    r = ok(sdk("openai", dict(a, op="chat_stream"), ca=gw_pki["ca"]))
    assert r["text"] == TEXT["openai"] and r["usage_chunks"] == 0 and r["usage"] is None
    assert r["finish_reason"] == "stop"
    r = ok(sdk("openai", dict(a, op="chat_stream", stream_options={"include_usage": True}),
               ca=gw_pki["ca"]))
    assert r["usage_chunks"] == 1 and r["usage"] == FIGURES["openai"]
    assert r["null_usage_chunks"] == r["chunks"] - 1
    r = ok(sdk("openai", dict(a, op="responses"), ca=gw_pki["ca"]))
    assert r["text"] == TEXT["responses"] and r["usage"] == FIGURES["responses"]
    r = ok(sdk("openai", dict(a, op="responses_stream"), ca=gw_pki["ca"]))
    assert r["text"] == TEXT["responses"] and r["usage"] == FIGURES["responses"]
    assert r["events"][0] == "response.created" and r["events"][-1] == "response.completed"
    r = ok(sdk("openai", dict(a, op="embeddings", model="text-embedding-3-small"), ca=gw_pki["ca"]))
    assert r["dims"] == 8 and r["first"] == [0.125, -0.25, 0.375]  # base64 decoded by the SDK
    assert r["usage"] == FIGURES["embeddings"]
    e = err(sdk("openai", dict(a, op="chat", token="sk-wrong"), ca=gw_pki["ca"]))
    assert e["status"] == 401
    e = err(sdk("openai", dict(a, op="chat", model="gpt-4o-fault-500"), ca=gw_pki["ca"]))
    assert e["status"] == 500 and "server had an error" in e["message"]


@pytest.mark.sdk
def test_mock_compatible_sdk_direct(sdk, mock, gw_pki):
    """Mistral (usage in the last content chunk) and Groq (x_groq.usage) through the
    OpenAI SDK."""
    r = ok(sdk("openai", {"base_url": mock.url() + "/v1", "token": KEYS["mistral"],
                          "op": "chat_stream", "model": MODELS["mistral"]}, ca=gw_pki["ca"]))
    assert r["text"] == TEXT["mistral"] and r["usage"] == FIGURES["mistral"]
    r = ok(sdk("openai", {"base_url": mock.url() + "/openai/v1", "token": KEYS["groq"],
                          "op": "chat_stream", "model": MODELS["groq"]}, ca=gw_pki["ca"]))
    assert r["text"] == TEXT["groq"]
    assert {k: r["usage"][k] for k in FIGURES["groq"]} == FIGURES["groq"]
    r = ok(sdk("openai", {"base_url": mock.url() + "/openai/v1", "token": KEYS["groq"],
                          "op": "chat", "model": MODELS["groq"]}, ca=gw_pki["ca"]))
    assert r["text"] == TEXT["groq"]


@pytest.mark.sdk
def test_mock_anthropic_sdk_direct(sdk, mock, gw_pki):
    a = {"base_url": mock.url(), "token": KEYS["anthropic"], "model": MODELS["anthropic"]}
    r = ok(sdk("anthropic", dict(a, op="messages"), ca=gw_pki["ca"]))
    assert r["text"] == TEXT["anthropic"]
    assert {k: r["usage"][k] for k in FIGURES["anthropic"]} == FIGURES["anthropic"]
    for op in ("messages_stream", "stream_helper"):
        r = ok(sdk("anthropic", dict(a, op=op), ca=gw_pki["ca"]))
        assert r["text"] == TEXT["anthropic"], op
        assert {k: r["usage"][k] for k in FIGURES["anthropic"]} == FIGURES["anthropic"], op
    r = ok(sdk("anthropic", dict(a, op="count_tokens"), ca=gw_pki["ca"]))
    assert r["input_tokens"] == 42
    e = err(sdk("anthropic", dict(a, op="messages", token="bad"), ca=gw_pki["ca"]))
    assert e["status"] == 401 and e["type"] == "authentication_error"


@pytest.mark.sdk
def test_mock_gemini_sdk_direct(sdk, mock, gw_pki):
    a = {"base_url": mock.url(), "token": KEYS["gemini"], "model": MODELS["gemini"]}
    for extra in ({}, {"api_version": "v1beta"}):
        r = ok(sdk("gemini", dict(a, op="generate", **extra), ca=gw_pki["ca"]))
        assert r["text"] == TEXT["gemini"] and r["finish_reason"] == "STOP"
        assert {k: r["usage"][k] for k in FIGURES["gemini"]} == FIGURES["gemini"]
        r = ok(sdk("gemini", dict(a, op="generate_stream", **extra), ca=gw_pki["ca"]))
        assert r["text"] == TEXT["gemini"] and r["chunks"] >= 2
        assert {k: r["usage"][k] for k in FIGURES["gemini"]} == FIGURES["gemini"]
    e = err(sdk("gemini", dict(a, op="generate", token="bad"), ca=gw_pki["ca"]))
    assert e["status"] == 401 and e["body"]["error"]["status"] == "UNAUTHENTICATED"


def _mock_conn(mock, gw_pki, label="main", timeout=5.0):
    ctx = ssl.create_default_context(cafile=gw_pki["ca"])
    return http.client.HTTPSConnection("127.0.0.1", mock.port(label), context=ctx, timeout=timeout)


def _mock_post(mock, gw_pki, path, body, headers, label="main", timeout=5.0):
    c = _mock_conn(mock, gw_pki, label, timeout)
    c.request("POST", path, body=json.dumps(body).encode(),
              headers=dict({"Content-Type": "application/json"}, **headers))
    return c, c.getresponse()


def test_mock_faults(mock, gw_pki):
    """The fault modes do what the gateway tests rely on."""
    oa = {"Authorization": "Bearer " + KEYS["openai"]}
    # reset: no response byte, an RST
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, ssl.SSLError)):
        _mock_post(mock, gw_pki, "/v1/chat/completions", chat_body("gpt-4o-fault-reset"), oa)
    # close: no response byte, a FIN
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _mock_post(mock, gw_pki, "/v1/chat/completions", chat_body("gpt-4o-fault-close"), oa)
    # garbage: not HTTP
    with pytest.raises((http.client.BadStatusLine, http.client.HTTPException, OSError)):
        _mock_post(mock, gw_pki, "/v1/chat/completions", chat_body("gpt-4o-fault-garbage"), oa)
    # stall: no answer; the mock notices when the client gives up
    m0 = mock.mark()
    c = _mock_conn(mock, gw_pki, timeout=0.5)
    c.request("POST", "/v1/chat/completions", body=json.dumps(chat_body("gpt-4o-fault-stall")).encode(),
              headers=dict({"Content-Type": "application/json"}, **oa))
    with pytest.raises((socket.timeout, TimeoutError)):
        c.getresponse()
    c.close()
    stalled = mock.wait(lambda x: x["fault"] == "stall", m0)[0]
    assert wait_for(lambda: stalled["closed_early"] is True, timeout=5), stalled
    # 500 in the vendor's shape
    c, r = _mock_post(mock, gw_pki, "/v1/messages", anth_body("claude-fault-500"),
                      {"x-api-key": KEYS["anthropic"], "anthropic-version": "2023-06-01"})
    assert r.status == 500 and json.loads(r.read())["error"]["type"] == "api_error"
    c.close()
    # Gemini without alt=sse: a JSON array of the chunks
    c, r = _mock_post(mock, gw_pki, "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                      gem_body(), {"x-goog-api-key": KEYS["gemini"]})
    arr = json.loads(r.read())
    assert r.status == 200 and isinstance(arr, list) and len(arr) >= 2
    assert "".join(x["candidates"][0]["content"]["parts"][0]["text"] for x in arr) == TEXT["gemini"]
    c.close()
    # Gemini SSE events end in CRLF CRLF
    c, r = _mock_post(mock, gw_pki, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                      gem_body(), {"x-goog-api-key": KEYS["gemini"]})
    raw = r.read()
    assert raw.startswith(b"data: {") and raw.endswith(b"\r\n\r\n") and b"\n\n" not in raw.replace(b"\r\n\r\n", b"")
    c.close()
    # reset_mid: the head and two events, then an RST
    c, r = _mock_post(mock, gw_pki, "/v1/chat/completions",
                      chat_body("gpt-4o-fault-reset_mid", stream=True), oa)
    assert r.status == 200
    with pytest.raises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
        r.read()
    c.close()
    # slow: the mock records that the client went away early
    mock.slow_events, mock.slow_delay = 50, 0.1
    m0 = mock.mark()
    c, r = _mock_post(mock, gw_pki, "/v1/chat/completions",
                      chat_body("gpt-4o-fault-slow", stream=True), oa)
    assert r.status == 200
    got = b""
    while got.count(b"data:") < 3:
        got += r.read1(4096)
    c.sock.close()
    c.close()
    recs = mock.wait(lambda x: x["closed_early"] is True, m0, timeout=5)
    assert recs and recs[0]["events_sent"] < 50, mock.since(m0)
    # keep-alive: two requests on one connection
    n0 = mock.connections()
    c = _mock_conn(mock, gw_pki)
    for _ in range(2):
        c.request("POST", "/v1/chat/completions", body=json.dumps(chat_body()).encode(),
                  headers=dict({"Content-Type": "application/json"}, **oa))
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["usage"] == FIGURES["openai"]
    c.close()
    assert mock.connections() - n0 == 1
    # an untrusted listener fails verification
    with pytest.raises(ssl.SSLCertVerificationError):
        _mock_post(mock, gw_pki, "/v1/chat/completions", chat_body(), oa, label="badtls")
    # a closed port refuses
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", mock.closed_port), timeout=2).close()


# =========================================================================== SDKs through the gateway


SDK_CASES = [
    # id, script, vendor (base URL), op, model, usage key, stream, endpoint
    ("openai-chat", "openai", "openai", "chat", "gpt-4o-mini", "openai", False, "chat"),
    ("openai-chat-stream", "openai", "openai", "chat_stream", "gpt-4o-mini", "openai", True, "chat"),
    ("openai-responses", "openai", "openai", "responses", "gpt-4o-mini", "responses", False,
     "responses"),
    ("openai-responses-stream", "openai", "openai", "responses_stream", "gpt-4o-mini",
     "responses", True, "responses"),
    ("openai-embeddings", "openai", "openai", "embeddings", "text-embedding-3-small",
     "embeddings", False, "embeddings"),
    ("anthropic-messages", "anthropic", "anthropic", "messages", "claude-sonnet-4-5",
     "anthropic", False, "messages"),
    ("anthropic-stream", "anthropic", "anthropic", "messages_stream", "claude-sonnet-4-5",
     "anthropic", True, "messages"),
    ("anthropic-stream-helper", "anthropic", "anthropic", "stream_helper", "claude-sonnet-4-5",
     "anthropic", True, "messages"),
    ("gemini-generate", "gemini", "gemini", "generate", "gemini-2.5-flash", "gemini", False,
     "generate"),
    ("gemini-stream", "gemini", "gemini", "generate_stream", "gemini-2.5-flash", "gemini", True,
     "generate"),
    ("mistral-chat", "openai", "mistral", "chat", "mistral-small-latest", "mistral", False, "chat"),
    ("mistral-stream", "openai", "mistral", "chat_stream", "mistral-small-latest", "mistral", True,
     "chat"),
    ("mistral-embeddings", "openai", "mistral", "embeddings", "mistral-embed", "embeddings", False,
     "embeddings"),
    ("groq-chat", "openai", "groq", "chat", "llama-3.3-70b-versatile", "groq", False, "chat"),
    ("groq-stream", "openai", "groq", "chat_stream", "llama-3.3-70b-versatile", "groq", True,
     "chat"),
]


@pytest.mark.sdk
@pytest.mark.parametrize("case", SDK_CASES, ids=[c[0] for c in SDK_CASES])
def test_sdk_through_gateway(case, sdk, gw, mock):
    """Plain and streamed calls through each official SDK: the SDK's result, the
    audit usage (cached/reasoning included), the key the provider received."""
    _id, script, vendor, op, model, ukey, stream, endpoint = case
    task = new_task()
    m0 = mock.mark()
    r = ok(sdk(script, {"base_url": gw_base(gw, vendor), "token": DEMO_TOKEN, "op": op,
                        "model": model, "task": task, "agent": "agent-sdk"}))
    if op == "embeddings":
        assert r["dims"] == 8 and r["usage"] == FIGURES["embeddings"]
    else:
        assert r["text"] == TEXT["responses" if endpoint == "responses" else vendor]
    if op in ("chat_stream",) and vendor == "openai":
        assert r["usage_chunks"] == 0, "the usage chunk the gateway added reached the client"
    ups = mock.since(m0)
    assert len(ups) == 1, ups
    up = ups[0]
    assert up["vendor"] == vendor and up["listener"] == "main" and up["status"] == 200
    assert_upstream_clean(up, vendor)
    assert up["json"] is not None
    a = audit_for(gw, task)
    assert a["usage"] == USAGE[ukey], a
    assert a["listener"] == "gateway" and a["workspace"] == "ws-demo"
    assert a["group"] == "developers" and a["team"] == "developers"
    assert a["agent"] == "agent-sdk" and a["task"] == task
    assert a["provider"] == vendor and a["model"] == model and a["stream"] is stream
    assert a["decision"] == "allow" and a["reason"] is None and a["status"] == 200
    assert a["endpoint"] == ENDPOINT[endpoint], a
    assert a["upstream"] == f"127.0.0.1:{mock.port('main')}", a
    assert a["region"] in ("", None), a
    assert a["client_aborted"] is False and a["findings"] == [] and a["prompt"] is None
    assert a["bytes_up"] > 0 and a["bytes_down"] > 0
    assert a["duration_ms"] >= a["gateway_ms"] >= 0
    assert a["client"].startswith("127.0.0.1:")
    assert isinstance(a["prompt_tokens_est"], int) and a["prompt_tokens_est"] > 0


@pytest.mark.sdk
def test_sdk_gemini_v1beta_path(sdk, gw, mock):
    """@google/genai 3.x calls /v1/models/...; with apiVersion v1beta the documented
    /gemini/v1beta/models/{m}:generateContent path works too."""
    task = new_task()
    m0 = mock.mark()
    r = ok(sdk("gemini", {"base_url": gw_base(gw, "gemini"), "token": DEMO_TOKEN,
                          "op": "generate_stream", "model": "gemini-2.5-flash",
                          "api_version": "v1beta", "task": task}))
    assert r["text"] == TEXT["gemini"]
    up = mock.since(m0)[0]
    assert up["path"] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert audit_for(gw, task)["usage"] == USAGE["gemini"]


@pytest.mark.sdk
def test_sdk_anthropic_count_tokens(sdk, gw, mock):
    task = new_task()
    m0 = mock.mark()
    r = ok(sdk("anthropic", {"base_url": gw_base(gw, "anthropic"), "token": DEMO_TOKEN,
                             "op": "count_tokens", "model": "claude-sonnet-4-5", "task": task}))
    assert r["input_tokens"] == 42
    up = mock.since(m0)[0]
    assert up["path"] == "/v1/messages/count_tokens"
    assert_upstream_clean(up, "anthropic")
    a = audit_for(gw, task)
    assert a["status"] == 200 and a["endpoint"] == ENDPOINT["count_tokens"]


def test_azure_deployment_route(gw, mock):
    """Azure: the deployment names the model, ?api-version is kept, the key goes in api-key."""
    m0 = mock.mark()
    body = {"messages": [{"role": "user", "content": "hi"}]}
    r = gw_curl(gw.gateway, "/azure/openai/deployments/gpt-4o-mini/chat/completions"
                "?api-version=2024-10-21", body, auth="api-key")
    assert r.status == 200, r
    assert r.json()["choices"][0]["message"]["content"] == TEXT["azure"]
    up = mock.since(m0)[0]
    assert up["path"] == "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    assert_upstream_clean(up, "azure")
    a = audit_for(gw, r.task)
    assert a["provider"] == "azure" and a["model"] == "gpt-4o-mini"
    assert a["usage"] == USAGE["azure"]


# =========================================================================== include_usage


@pytest.mark.sdk
def test_include_usage_added_and_stripped(sdk, gw, mock):
    """A stream without stream_options: the gateway asks for the usage chunk upstream,
    counts it, and the SDK never sees it."""
    task = new_task()
    m0 = mock.mark()
    r = ok(sdk("openai", {"base_url": gw_base(gw, "openai"), "token": DEMO_TOKEN,
                          "op": "chat_stream", "model": "gpt-4o-mini", "task": task}))
    assert r["text"] == TEXT["openai"] and r["finish_reason"] == "stop"
    assert r["usage_chunks"] == 0 and r["usage"] is None
    up = mock.since(m0)[0]
    assert up["json"]["stream_options"]["include_usage"] is True
    assert up["json"]["messages"] == [{"role": "user", "content": "Say hello."}]
    assert up["events_sent"] > 0 and up["complete"]
    assert audit_for(gw, task)["usage"] == USAGE["openai"]


def test_include_usage_stripped_on_the_wire(gw, mock):
    """The same with curl: no `"choices": []` event, everything else relayed, [DONE] last."""
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body(stream=True))
    assert r.status == 200, r
    assert (r.header("content-type") or "").startswith("text/event-stream")
    evs = r.events()
    assert evs[-1][1] == "[DONE]"
    datas = [json.loads(d) for _, d in evs[:-1]]
    assert all(d["choices"] for d in datas), datas
    assert "".join(c["delta"].get("content") or "" for d in datas for c in d["choices"]) == \
        TEXT["openai"]
    up = mock.since(m0)[0]
    assert up["events_sent"] == len(evs) + 1  # the mock sent one more: the usage chunk
    assert audit_for(gw, r.task)["usage"] == USAGE["openai"]


@pytest.mark.sdk
def test_include_usage_kept_when_asked(sdk, gw, mock):
    task = new_task()
    m0 = mock.mark()
    r = ok(sdk("openai", {"base_url": gw_base(gw, "openai"), "token": DEMO_TOKEN,
                          "op": "chat_stream", "model": "gpt-4o-mini", "task": task,
                          "stream_options": {"include_usage": True}}))
    assert r["usage_chunks"] == 1 and r["usage"] == FIGURES["openai"]
    assert mock.since(m0)[0]["json"]["stream_options"] == {"include_usage": True}
    assert audit_for(gw, task)["usage"] == USAGE["openai"]


def test_include_usage_false_is_overridden(gw, mock):
    """include_usage: false is "did not ask": set to true upstream, stripped for the client."""
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions",
                chat_body(stream=True, stream_options={"include_usage": False}))
    assert r.status == 200, r
    assert all(json.loads(d)["choices"] for _, d in r.events()[:-1])
    assert mock.since(m0)[0]["json"]["stream_options"]["include_usage"] is True
    assert audit_for(gw, r.task)["usage"] == USAGE["openai"]


def test_include_usage_not_added_to_non_streams(gw, mock):
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body())
    assert r.status == 200, r
    assert "stream_options" not in mock.since(m0)[0]["json"]
    assert r.json()["usage"] == FIGURES["openai"]


def test_gemini_json_array_stream(gw, mock):
    """streamGenerateContent without alt=sse: a JSON array, relayed and counted."""
    r = gw_curl(gw.gateway, "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                gem_body(), auth="x-goog-api-key")
    assert r.status == 200, r
    arr = r.json()
    assert "".join(x["candidates"][0]["content"]["parts"][0]["text"] for x in arr) == TEXT["gemini"]
    a = audit_for(gw, r.task)
    assert a["usage"] == USAGE["gemini"] and a["stream"] is True


# =========================================================================== identity


@pytest.mark.sdk
def test_bad_token_each_sdk(sdk, gw, mock):
    """A wrong workspace token: 401 in each provider's shape, as the SDK surfaces it."""
    m0 = mock.mark()
    e = err(sdk("openai", {"base_url": gw_base(gw, "openai"), "token": "not-a-token",
                           "op": "chat", "model": "gpt-4o-mini"}))
    assert e["status"] == 401 and e["name"] == "AuthenticationError"
    assert e["type"] == "authentication_error"
    e = err(sdk("anthropic", {"base_url": gw_base(gw, "anthropic"), "token": "not-a-token",
                              "op": "messages", "model": "claude-sonnet-4-5"}))
    assert e["status"] == 401 and e["type"] == "authentication_error"
    e = err(sdk("gemini", {"base_url": gw_base(gw, "gemini"), "token": "not-a-token",
                           "op": "generate", "model": "gemini-2.5-flash"}))
    assert e["status"] == 401 and e["body"]["error"]["status"] == "UNAUTHENTICATED", e
    assert mock.since(m0) == []


@pytest.mark.parametrize("path,fmt,body", [
    ("/openai/v1/chat/completions", "openai", chat_body()),
    ("/anthropic/v1/messages", "anthropic", anth_body()),
    ("/gemini/v1beta/models/gemini-2.5-flash:generateContent", "gemini", gem_body()),
    ("/mistral/v1/chat/completions", "openai", chat_body("mistral-small-latest")),
    ("/groq/openai/v1/chat/completions", "openai", chat_body("llama-3.3-70b-versatile")),
])
@pytest.mark.parametrize("token", [None, "unknown-token-0000"])
def test_missing_or_unknown_token(gw, mock, path, fmt, body, token):
    m0 = mock.mark()
    r = gw_curl(gw.gateway, path, body, token=token, headers=[ANTHROPIC_VERSION])
    assert r.status == 401, r
    assert (r.header("content-type") or "").startswith("application/json"), r
    assert_shape(fmt, r.body, 401)
    assert mock.since(m0) == []


@pytest.mark.parametrize("auth", ["bearer", "x-api-key", "x-goog-api-key", "api-key"])
def test_token_in_any_sdk_key_header(gw, mock, auth):
    """The workspace token is taken from whichever SDK key header carries it."""
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/anthropic/v1/messages", anth_body(), auth=auth,
                headers=[ANTHROPIC_VERSION])
    assert r.status == 200, r
    assert_upstream_clean(mock.since(m0)[0], "anthropic")


def test_two_different_tokens_refused(gw, mock):
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body(),
                headers=[("x-api-key", TOKENS["ws-eu"])])
    assert r.status in (400, 401), r
    assert_shape("openai", r.body, r.status)
    assert mock.since(m0) == []


def test_workspace_group_without_gateway_entry(gw, mock):
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body(), token=TOKENS["ws-nogw"])
    assert r.status == 403, r
    assert_shape("openai", r.body, 403)
    assert mock.since(m0) == []


def test_agent_and_task_recorded(gw, mock):
    task = "task-" + uuid.uuid4().hex[:8]
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body(), task=task,
                agent="agent-7/build")
    assert r.status == 200, r
    a = audit_for(gw, task)
    assert a["agent"] == "agent-7/build" and a["task"] == task


def test_team_recorded(gw, mock):
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body(),
                token=TOKENS["ws-restricted"])
    assert r.status == 200, r
    a = audit_for(gw, r.task)
    assert a["workspace"] == "ws-restricted" and a["group"] == "restricted"
    assert a["team"] == "audit-team"


# =========================================================================== route and policy


@pytest.mark.sdk
def test_model_not_allowed_sdk(sdk, gw, mock):
    task = new_task()
    m0 = mock.mark()
    e = err(sdk("openai", {"base_url": gw_base(gw, "openai"), "token": DEMO_TOKEN,
                           "op": "chat", "model": "o3-pro", "task": task}))
    assert e["status"] == 403 and e["code"] == "cdeguard_model_not_allowed", e
    assert mock.since(m0) == []
    a = audit_for(gw, task)
    assert a["decision"] == "deny" and a["reason"] == "cdeguard_model_not_allowed"
    assert a["status"] == 403


@pytest.mark.parametrize("path,body,fmt", [
    ("/openai/v1/chat/completions", chat_body("gpt-4o"), "openai"),      # restricted: gpt-4o-mini only
    ("/anthropic/v1/messages", anth_body(), "anthropic"),                 # provider not allowed
    ("/gemini/v1beta/models/gemini-2.5-flash:generateContent", gem_body(), "gemini"),
])
def test_restricted_group(gw, mock, path, body, fmt):
    m0 = mock.mark()
    r = gw_curl(gw.gateway, path, body, token=TOKENS["ws-restricted"], headers=[ANTHROPIC_VERSION])
    assert r.status == 403, r
    assert_shape(fmt, r.body, 403, code="cdeguard_model_not_allowed" if fmt == "openai" else None)
    assert mock.since(m0) == []
    a = audit_for(gw, r.task)
    assert a["reason"] == ("cdeguard_model_not_allowed" if fmt == "openai"
                           else "cdeguard_provider_not_allowed"), a


def test_unknown_provider_endpoint_and_method(gw, mock):
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/cohere/v1/chat", chat_body())
    assert r.status == 404, r
    r = gw_curl(gw.gateway, "/openai/v1/models", chat_body())
    assert r.status == 404, r
    assert_shape("openai", r.body, 404)
    # (with a body: test_no_body covers requests without one)
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body(), method="PUT")
    assert r.status == 405, r
    assert_shape("openai", r.body, 405)
    r = gw_curl(gw.gateway, "/anthropic/v1/messages", anth_body(), method="DELETE")
    assert r.status == 405, r
    assert_shape("anthropic", r.body, 405)
    assert mock.since(m0) == []


def test_x_llm_provider_header_routing(gw, mock):
    """The provider named by x-llm-provider with the provider's own path."""
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/v1/messages", anth_body(), auth="x-api-key",
                headers=[("x-llm-provider", "anthropic"), ANTHROPIC_VERSION])
    assert r.status == 200, r
    assert r.json()["content"][0]["text"] == TEXT["anthropic"]
    up = mock.since(m0)[0]
    assert up["path"] == "/v1/messages" and up["vendor"] == "anthropic"
    assert_upstream_clean(up, "anthropic")
    assert audit_for(gw, r.task)["usage"] == USAGE["anthropic"]

    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/v1/chat/completions", chat_body("mistral-small-latest"),
                headers=[("x-llm-provider", "mistral")])
    assert r.status == 200, r
    assert mock.since(m0)[0]["vendor"] == "mistral"
    assert audit_for(gw, r.task)["provider"] == "mistral"

    r = gw_curl(gw.gateway, "/v1/chat/completions", chat_body(),
                headers=[("x-llm-provider", "nosuchvendor")])
    assert r.status in (400, 404), r


# =========================================================================== content


@pytest.mark.parametrize("path,body,fmt,auth", [
    ("/openai/v1/chat/completions", chat_body(prompt=f"deploy with token {SECRET} please"),
     "openai", "bearer"),
    ("/openai/v1/chat/completions",
     chat_body(tools=[{"type": "function", "function": {
         "name": "deploy", "description": f"uses {SECRET}", "parameters": {"type": "object"}}}]),
     "openai", "bearer"),
    ("/anthropic/v1/messages", anth_body(system=f"The key is {SECRET}."), "anthropic", "x-api-key"),
    ("/gemini/v1beta/models/gemini-2.5-flash:generateContent", gem_body(f"token={SECRET}"),
     "gemini", "x-goog-api-key"),
])
def test_secret_blocked(gw, mock, path, body, fmt, auth):
    m0 = mock.mark()
    r = gw_curl(gw.gateway, path, body, auth=auth, headers=[ANTHROPIC_VERSION])
    assert r.status == 403, r
    assert_shape(fmt, r.body, 403, code="cdeguard_secret_blocked" if fmt == "openai" else None)
    assert SECRET.encode() not in r.body
    assert mock.since(m0) == []
    a = audit_for(gw, r.task)
    assert a["decision"] == "deny" and a["reason"] == "cdeguard_secret_blocked", a
    assert {"rule": "cdgtest-token", "action": "block", "count": 1} in a["findings"], a
    assert SECRET not in gw.audit_path.read_text()


@pytest.mark.sdk
def test_secret_blocked_sdk(sdk, gw, mock):
    m0 = mock.mark()
    e = err(sdk("openai", {"base_url": gw_base(gw, "openai"), "token": DEMO_TOKEN,
                           "op": "chat_stream", "model": "gpt-4o-mini",
                           "prompt": f"my token is {SECRET}"}))
    assert e["status"] == 403 and e["code"] == "cdeguard_secret_blocked", e
    e = err(sdk("anthropic", {"base_url": gw_base(gw, "anthropic"), "token": DEMO_TOKEN,
                              "op": "messages", "model": "claude-sonnet-4-5",
                              "prompt": f"my token is {SECRET}"}))
    assert e["status"] == 403 and e["type"] == "permission_error", e
    assert mock.since(m0) == []


@pytest.mark.parametrize("path,body,auth,vendor", [
    ("/openai/v1/chat/completions", chat_body(prompt=f"Mail {EMAIL} the \"report\"\n."),
     "bearer", "openai"),
    ("/anthropic/v1/messages", anth_body(prompt=f"Mail {EMAIL} today"), "x-api-key", "anthropic"),
    ("/gemini/v1beta/models/gemini-2.5-flash:generateContent", gem_body(f"write to {EMAIL}"),
     "x-goog-api-key", "gemini"),
])
def test_pii_redacted(gw, mock, path, body, auth, vendor):
    """PII: the provider gets a redacted body that is still valid JSON."""
    m0 = mock.mark()
    r = gw_curl(gw.gateway, path, body, auth=auth, headers=[ANTHROPIC_VERSION])
    assert r.status == 200, r
    up = mock.since(m0)[0]
    assert up["json_error"] is None and up["json"] is not None, up["body"][:300]
    assert EMAIL.encode() not in up["body"]
    assert b"[REDACTED:cdgtest-email]" in up["body"]
    assert int(header(up, "content-length") or len(up["body"])) == len(up["body"])
    # everything else is as sent
    sent = json.loads(json.dumps(body).replace(EMAIL, "[REDACTED:cdgtest-email]"))
    assert up["json"] == sent
    assert_upstream_clean(up, vendor)
    a = audit_for(gw, r.task)
    assert a["decision"] == "redact" and a["status"] == 200, a
    assert {"rule": "cdgtest-email", "action": "redact", "count": 1} in a["findings"], a
    assert EMAIL not in gw.audit_path.read_text()


def test_restricted_file_blocked(gw, mock):
    m0 = mock.mark()
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "summarise this file"},
        {"type": "file", "file": {"filename": ".env", "file_data": "data:text/plain;base64,QT0x"}},
    ]}]}
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", body)
    assert r.status == 403, r
    assert_shape("openai", r.body, 403, code="cdeguard_restricted_file")
    assert mock.since(m0) == []


def test_prompt_too_large(gw, mock):
    m0 = mock.mark()
    prompt = "word " * (MAX_PROMPT_TOKENS + 5000)  # ~ (4 * N) / 4 tokens > the limit
    assert len(prompt) < MAX_BODY
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body(prompt=prompt))
    assert r.status == 400, r
    assert_shape("openai", r.body, 400, code="cdeguard_prompt_too_large")
    assert mock.since(m0) == []
    a = audit_for(gw, r.task)
    assert a["reason"] == "cdeguard_prompt_too_large" and a["prompt_tokens_est"] > MAX_PROMPT_TOKENS


@pytest.mark.parametrize("body,code", [
    (b'{"model": "gpt-4o-mini", "messages": [', "cdeguard_invalid_json"),
    (b"not json at all", "cdeguard_invalid_json"),
    (b'{"model": "gpt-4o-mini", "messages": "hello"}', "cdeguard_invalid_request"),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', "cdeguard_invalid_request"),
    (b"[1, 2, 3]", "cdeguard_invalid_request"),
])
def test_malformed_body(gw, mock, body, code):
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", body)
    assert r.status == 400, r
    assert_shape("openai", r.body, 400, code=code)
    assert mock.since(m0) == []


def test_malformed_body_gemini_shape(gw, mock):
    r = gw_curl(gw.gateway, "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
                b"{oops", auth="x-goog-api-key")
    assert r.status == 400, r
    assert_shape("gemini", r.body, 400)


# =========================================================================== region


def test_region_pinned_openai_goes_to_eu(gw, mock):
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body(), token=TOKENS["ws-eu"])
    assert r.status == 200, r
    ups = mock.since(m0)
    assert [u["listener"] for u in ups] == ["eu"], ups
    assert_upstream_clean(ups[0], "openai")
    a = audit_for(gw, r.task)
    assert a["region"] == "eu" and a["upstream"] == f"127.0.0.1:{mock.port('eu')}", a
    assert a["workspace"] == "ws-eu"


def test_region_pinned_endpoint_base_path(gw, mock):
    """Anthropic's eu endpoint has a base path (/eu-base), put in front of the API path."""
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/anthropic/v1/messages", anth_body(stream=True),
                token=TOKENS["ws-eu"], auth="x-api-key", headers=[ANTHROPIC_VERSION])
    assert r.status == 200, r
    up = mock.since(m0)[0]
    assert up["listener"] == "eu" and up["path"] == "/eu-base/v1/messages", up["path"]
    assert "".join(json.loads(d)["delta"]["text"] for e, d in r.events()
                   if e == "content_block_delta") == TEXT["anthropic"]
    a = audit_for(gw, r.task)
    assert a["usage"] == USAGE["anthropic"] and a["region"] == "eu"


def test_region_unavailable(gw, mock):
    """Gemini has no eu endpoint: an eu-pinned workspace is refused (403)."""
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/gemini/v1beta/models/gemini-2.5-flash:generateContent", gem_body(),
                token=TOKENS["ws-eu"], auth="x-goog-api-key")
    assert r.status == 403, r
    assert_shape("gemini", r.body, 403)
    assert mock.since(m0) == []
    assert audit_for(gw, r.task)["reason"] == "cdeguard_region_unavailable"
    r = gw_curl(gw.gateway, "/mistral/v1/chat/completions", chat_body("mistral-small-latest"),
                token=TOKENS["ws-eu"])
    assert r.status == 403, r
    assert_shape("openai", r.body, 403, code="cdeguard_region_unavailable")


def test_unpinned_uses_first_endpoint(gw, mock):
    m0 = mock.mark()
    for _ in range(3):
        r = gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body())
        assert r.status == 200, r
    assert [u["listener"] for u in mock.since(m0)] == ["main"] * 3


# =========================================================================== upstream failures


def _fault_call(gw, model, stream=False, token=DEMO_TOKEN, timeout=20):
    return gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body(model, stream=stream),
                   token=token, timeout=timeout)


def test_upstream_refused(gw, mock):
    r = _fault_call(gw, "gpt-4o-mini", token=TOKENS["ws-dead"])
    assert r.status == 502, r
    assert_shape("openai", r.body, 502, code="cdeguard_upstream_error")
    a = audit_for(gw, r.task)
    assert a["status"] == 502 and a["reason"] == "cdeguard_upstream_error", a


@pytest.mark.parametrize("fault", ["reset", "close", "garbage"])
def test_upstream_broken(gw, mock, fault):
    m0 = mock.mark()
    r = _fault_call(gw, f"gpt-4o-fault-{fault}")
    assert r.status == 502, r
    assert_shape("openai", r.body, 502, code="cdeguard_upstream_error")
    assert mock.since(m0), "the request never reached the mock"
    assert audit_for(gw, r.task)["status"] == 502
    # the daemon still serves
    assert _fault_call(gw, "gpt-4o-mini").status == 200


def test_upstream_untrusted_certificate(gw, mock):
    n0 = len(mock.tls_errors("badtls"))
    m0 = mock.mark()
    r = _fault_call(gw, "gpt-4o-mini", token=TOKENS["ws-badtls"])
    assert r.status == 502, r
    assert_shape("openai", r.body, 502, code="cdeguard_upstream_error")
    assert mock.since(m0) == [], "a request was sent over an unverified TLS connection"
    assert wait_for(lambda: len(mock.tls_errors("badtls")) > n0, timeout=3)


def test_upstream_first_byte_timeout(gw, mock):
    m0 = mock.mark()
    t0 = time.monotonic()
    r = _fault_call(gw, "gpt-4o-fault-stall")
    took = time.monotonic() - t0
    assert r.status == 504, r
    assert_shape("openai", r.body, 504, code="cdeguard_upstream_timeout")
    assert FIRST_BYTE_TIMEOUT - 0.2 <= took <= FIRST_BYTE_TIMEOUT + 5, took
    rec = mock.since(m0)[0]
    assert wait_for(lambda: rec["closed_early"] is True, timeout=5), "upstream connection not closed"
    assert audit_for(gw, r.task)["status"] == 504


@pytest.mark.parametrize("path,body,fmt,auth", [
    ("/openai/v1/chat/completions", chat_body("gpt-4o-fault-500"), "openai", "bearer"),
    ("/anthropic/v1/messages", anth_body("claude-fault-500"), "anthropic", "x-api-key"),
    ("/gemini/v1beta/models/gemini-fault-500:generateContent", gem_body(), "gemini",
     "x-goog-api-key"),
    ("/openai/v1/chat/completions", chat_body("gpt-4o-fault-429"), "openai", "bearer"),
])
def test_provider_error_passed_through(gw, mock, path, body, fmt, auth):
    r = gw_curl(gw.gateway, path, body, auth=auth, headers=[ANTHROPIC_VERSION])
    want = 429 if "429" in path + json.dumps(body) else 500
    assert r.status == want, r
    j = r.json()
    assert j["error"] == error_body(fmt, want, j["error"]["message"])["error"], j
    assert "mock" in j["error"]["message"] or "server had an error" in j["error"]["message"]
    a = audit_for(gw, r.task)
    assert a["status"] == want


@pytest.mark.sdk
def test_provider_500_through_sdk(sdk, gw, mock):
    e = err(sdk("openai", {"base_url": gw_base(gw, "openai"), "token": DEMO_TOKEN, "op": "chat",
                           "model": "gpt-4o-fault-500"}))
    assert e["status"] == 500 and "server had an error" in e["message"], e
    e = err(sdk("anthropic", {"base_url": gw_base(gw, "anthropic"), "token": DEMO_TOKEN,
                              "op": "messages", "model": "claude-fault-500"}))
    assert e["status"] == 500 and e["type"] == "api_error", e


def test_upstream_reset_mid_stream(gw, mock):
    """The provider resets after two events: the client's stream is cut (never
    completed with a final chunk) and the audit record estimates the output."""
    r = _fault_call(gw, "gpt-4o-fault-reset_mid", stream=True)
    assert r.status == 200, r
    assert r.rc != 0, "curl saw a complete response for a cut stream"
    assert b"[DONE]" not in r.body
    a = audit_for(gw, r.task)
    assert a["usage"]["estimated"] is True, a


def test_upstream_idle_timeout_mid_stream(gw, mock):
    m0 = mock.mark()
    t0 = time.monotonic()
    r = _fault_call(gw, "gpt-4o-fault-stall_mid", stream=True, timeout=IDLE_TIMEOUT + 15)
    took = time.monotonic() - t0
    assert r.status == 200, r
    assert r.rc != 0 and b"[DONE]" not in r.body, r
    assert IDLE_TIMEOUT - 0.2 <= took <= IDLE_TIMEOUT + 8, took
    rec = mock.since(m0)[0]
    assert wait_for(lambda: rec["closed_early"] is True, timeout=5)
    assert audit_for(gw, r.task)["usage"]["estimated"] is True


# =========================================================================== client abort


def _read_until_events(c: ProxyClient, n: int, timeout=10.0) -> bytes:
    got = bytearray()
    deadline = time.monotonic() + timeout
    while got.count(b"data:") < n:
        left = deadline - time.monotonic()
        assert left > 0, f"only {got.count(b'data:')} events within {timeout}s: {bytes(got)[:500]!r}"
        c.sock.settimeout(left)
        d = c.sock.recv(65536)
        assert d, f"gateway closed the stream early: {bytes(got)[:500]!r}"
        got += d
    return bytes(got)


def test_client_abort_anthropic_stream(gw, mock):
    """The client closes mid-stream: the upstream request is aborted, the audit record
    has client_aborted, the input figures of message_start and an estimated output."""
    mock.slow_events, mock.slow_delay = 60, 0.1
    task = new_task()
    m0 = mock.mark()
    body = json.dumps(anth_body("claude-fault-slow", stream=True)).encode()
    c = ProxyClient(gw.gateway, timeout=10)
    try:
        c.send((f"POST /anthropic/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{gw.gateway}\r\n"
                f"x-api-key: {DEMO_TOKEN}\r\nanthropic-version: 2023-06-01\r\n"
                f"x-task-id: {task}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        got = _read_until_events(c, 6)
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
    finally:
        c.close()
    assert wait_for(lambda: any(r["closed_early"] for r in mock.since(m0)), timeout=5), \
        f"the upstream stream was not aborted: {mock.since(m0)!r}"
    up = mock.since(m0)[0]
    assert up["events_sent"] < 3 + 3 + 60 + 3, up  # stopped before the end
    a = audit_for(gw, task, timeout=5)
    assert a["client_aborted"] is True, a
    u = a["usage"]
    assert u["estimated"] is True
    assert (u["input"], u["cache_read"], u["cache_write"]) == (23, 6, 4), u
    # output = ceil(text bytes / 4): at least the text the client saw (the three
    # pieces of TEXT), at most all the text the mock sent
    lo = -(-len(TEXT["anthropic"].encode()) // 4)
    hi = -(-up["text_sent"] // 4)
    assert lo <= u["output"] <= hi, (u, lo, hi)
    assert u["total"] == u["input"] + u["output"]


def test_client_abort_openai_stream_curl(gw, mock):
    """curl --max-time ends an OpenAI stream early: the same accounting."""
    mock.slow_events, mock.slow_delay = 60, 0.1
    m0 = mock.mark()
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions",
                chat_body("gpt-4o-fault-slow", stream=True), timeout=1.5)
    assert r.rc == 28, r  # curl: operation timed out
    assert r.body.count(b"data:") >= 1, r
    assert wait_for(lambda: any(x["closed_early"] for x in mock.since(m0)), timeout=5), \
        mock.since(m0)
    a = audit_for(gw, r.task)
    assert a["client_aborted"] is True and a["usage"]["estimated"] is True, a
    up = mock.since(m0)[0]
    assert 1 <= a["usage"]["output"] <= -(-up["text_sent"] // 4), (a, up["text_sent"])
    # OpenAI reports the input only in the final chunk: 0 (usage.h) or the estimate
    assert a["usage"]["input"] in (0, a["prompt_tokens_est"]), a


@pytest.mark.sdk
def test_client_abort_through_sdk(sdk, gw, mock):
    mock.slow_events, mock.slow_delay = 60, 0.1
    task = new_task()
    m0 = mock.mark()
    r = ok(sdk("openai", {"base_url": gw_base(gw, "openai"), "token": DEMO_TOKEN,
                          "op": "chat_stream", "model": "gpt-4o-fault-slow", "abort_after": 4,
                          "task": task}))
    assert r["aborted"] is True
    assert wait_for(lambda: any(x["closed_early"] for x in mock.since(m0)), timeout=5)
    assert audit_for(gw, task)["client_aborted"] is True


# =========================================================================== connections


def test_client_keep_alive(gw, mock):
    """Three calls on one client connection; each audit record counts its own
    call's bytes, not the connection's so far."""
    tasks = []
    with ProxyClient(gw.gateway, timeout=10) as c:
        for body, path in ((chat_body(), "/openai/v1/chat/completions"),
                           (anth_body(), "/anthropic/v1/messages"),
                           (chat_body(), "/openai/v1/chat/completions")):
            data = json.dumps(body).encode()
            task = "task-" + uuid.uuid4().hex[:8]
            r = c.request("POST", path, headers=[
                ("Authorization", f"Bearer {DEMO_TOKEN}"), ANTHROPIC_VERSION,
                ("x-task-id", task),
                ("Content-Type", "application/json")], body=data, host=f"127.0.0.1:{gw.gateway}")
            assert r.status == 200, r
            tasks.append((task, len(data), len(r.body)))
    for task, up, down in tasks:
        a = audit_for(gw, task)
        assert (a["bytes_up"], a["bytes_down"]) == (up, down), (a, up, down)


def test_upstream_connections_reused(gw, mock):
    """pool_size: sequential calls reuse idle upstream connections (2 workers)."""
    _fault_call(gw, "gpt-4o-mini")
    n0 = mock.connections("main")
    for _ in range(8):
        assert _fault_call(gw, "gpt-4o-mini").status == 200
    assert mock.connections("main") - n0 <= 3, "upstream connections are not reused"


# =========================================================================== metrics


def test_metrics(gw, mock):
    model = "gpt-4o-metrics"
    m = gw.metrics()
    before_in = metric(m, "cdeguard_llm_tokens_total", provider="openai", model=model,
                       workspace="ws-demo", direction="input")
    assert gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body(model)).status == 200
    assert gw_curl(gw.gateway, "/openai/v1/chat/completions",
                   chat_body(model, prompt=f"to {EMAIL}")).status == 200
    assert gw_curl(gw.gateway, "/openai/v1/chat/completions",
                   chat_body(model, prompt=SECRET)).status == 403
    assert _fault_call(gw, "gpt-4o-mini", token=TOKENS["ws-dead"]).status == 502

    def settled():
        mm = gw.metrics()
        return mm if metric(mm, "cdeguard_llm_tokens_total", provider="openai", model=model,
                            workspace="ws-demo", direction="input") >= before_in + 22 else None

    m = wait_for(settled, timeout=3) or gw.metrics()
    names = metric_names(m)
    for n in ("cdeguard_llm_requests_total", "cdeguard_llm_tokens_total",
              "cdeguard_llm_findings_total", "cdeguard_llm_upstream_errors_total",
              "cdeguard_llm_request_duration_seconds_bucket",
              "cdeguard_llm_request_duration_seconds_count",
              "cdeguard_llm_gateway_added_seconds_bucket", "cdeguard_llm_gateway_added_seconds_count"):
        assert n in names, (n, sorted(x for x in names if "llm" in x))
    assert metric(m, "cdeguard_llm_tokens_total", provider="openai", model=model,
                  workspace="ws-demo", direction="input") == before_in + 22
    for direction, per_call in (("output", 7), ("cache_read", 3)):
        assert metric(m, "cdeguard_llm_tokens_total", provider="openai", model=model,
                      workspace="ws-demo", direction=direction) >= 2 * per_call
    assert metric(m, "cdeguard_llm_requests_total", provider="openai", model=model,
                  decision="allow") >= 1
    assert metric(m, "cdeguard_llm_requests_total", provider="openai", model=model,
                  decision="redact") >= 1
    assert metric(m, "cdeguard_llm_requests_total", provider="openai", model=model,
                  decision="deny") >= 1
    assert metric(m, "cdeguard_llm_findings_total", rule="cdgtest-email", action="redact") >= 1
    assert metric(m, "cdeguard_llm_findings_total", rule="cdgtest-token", action="block") >= 1
    assert metric(m, "cdeguard_llm_upstream_errors_total", provider="openai", kind="connect") >= 1


# =========================================================================== ext_authz


def ext_authz(d, path, body, *, token=DEMO_TOKEN, auth="bearer", headers=(), method="POST"):
    """Envoy's HTTP check request: the original method, path and headers, buffered body."""
    return gw_curl(d.ext_authz, path, body, token=token, auth=auth, headers=headers, method=method)


def _to_remove(r):
    v = r.header("x-envoy-auth-headers-to-remove")
    return [h.strip().lower() for h in (v or "").split(",") if h.strip()]


@pytest.mark.ext_authz
def test_ext_authz_allow_prefix_form(gw, mock):
    m0 = mock.mark()
    r = ext_authz(gw, "/openai/v1/chat/completions", chat_body())
    assert r.status == 200, r
    # the token came in Authorization, which the provider key overwrites: nothing else
    # needs removing, so x-envoy-auth-headers-to-remove may be absent or list others
    assert r.header("authorization") == "Bearer " + KEYS["openai"], r
    assert "authorization" not in _to_remove(r), r
    # the token in x-api-key on the OpenAI route: x-api-key must go
    r = ext_authz(gw, "/openai/v1/chat/completions", chat_body(), auth="x-api-key")
    assert r.status == 200, r
    assert r.header("authorization") == "Bearer " + KEYS["openai"], r
    assert "x-api-key" in _to_remove(r), r
    assert DEMO_TOKEN.encode() not in r.body
    assert mock.since(m0) == [], "ext_authz must not call the provider"


@pytest.mark.ext_authz
def test_ext_authz_allow_header_form(gw, mock):
    """Envoy keeps the provider's own path and names it with x-llm-provider; the token
    came in Authorization (as the Anthropic SDK sends it): remove it, set x-api-key."""
    m0 = mock.mark()
    r = ext_authz(gw, "/v1/messages", anth_body(),
                  headers=[("x-llm-provider", "anthropic"), ANTHROPIC_VERSION])
    assert r.status == 200, r
    assert r.header("x-api-key") == KEYS["anthropic"], r
    assert "authorization" in _to_remove(r), r
    assert mock.since(m0) == []
    r = ext_authz(gw, "/v1beta/models/gemini-2.5-flash:generateContent", gem_body(),
                  auth="x-api-key", headers=[("x-llm-provider", "gemini")])
    assert r.status == 200, r
    assert r.header("x-goog-api-key") == KEYS["gemini"], r
    assert "x-api-key" in _to_remove(r), r


@pytest.mark.ext_authz
def test_ext_authz_audit(gw, mock):
    r = ext_authz(gw, "/openai/v1/chat/completions", chat_body())
    assert r.status == 200, r
    a = audit_for(gw, r.task)
    assert a["listener"] == "ext_authz" and a["decision"] == "allow" and a["workspace"] == "ws-demo"


@pytest.mark.ext_authz
@pytest.mark.parametrize("case", ["bad_token", "no_token", "secret", "model", "partial", "pii",
                                  "invalid_json"])
def test_ext_authz_deny(gw, mock, case):
    path, body, kw, fmt = "/openai/v1/chat/completions", chat_body(), {}, "openai"
    status, code = {
        "bad_token": (401, None), "no_token": (401, None),
        "secret": (403, "cdeguard_secret_blocked"), "model": (403, "cdeguard_model_not_allowed"),
        "partial": (413, None), "pii": (403, "cdeguard_redaction_unavailable"),
        "invalid_json": (400, "cdeguard_invalid_json"),
    }[case]
    if case == "bad_token":
        kw["token"] = "nope-nope"
    elif case == "no_token":
        kw["token"] = None
    elif case == "secret":
        body = chat_body(prompt=f"key {SECRET}")
    elif case == "model":
        body = chat_body("o1-preview")
    elif case == "partial":
        kw["headers"] = [("x-envoy-auth-partial-body", "true")]
    elif case == "pii":
        body = chat_body(prompt=f"mail {EMAIL}")
    elif case == "invalid_json":
        body = b'{"model": '
    m0 = mock.mark()
    r = ext_authz(gw, path, body, **kw)
    assert r.status == status, r
    assert_shape(fmt, r.body, status, code=code)
    assert r.header("authorization") is None or KEYS["openai"] not in r.header("authorization")
    assert mock.since(m0) == []


@pytest.mark.ext_authz
def test_ext_authz_deny_anthropic_shape(gw, mock):
    r = ext_authz(gw, "/v1/messages", anth_body(prompt=f"key {SECRET}"), auth="x-api-key",
                  headers=[("x-llm-provider", "anthropic"), ANTHROPIC_VERSION])
    assert r.status == 403, r
    assert_shape("anthropic", r.body, 403)
    assert KEYS["anthropic"].encode() not in r.body and r.header("x-api-key") is None


# =========================================================================== max_body
# (last on the shared daemon: a failure here must not hide the rest)


@pytest.mark.parametrize("path,fmt", [
    ("/openai/v1/chat/completions", "openai"),
    ("/anthropic/v1/messages", "anthropic"),
])
def test_body_over_max_body(gw, mock, path, fmt):
    m0 = mock.mark()
    body = json.dumps(chat_body(prompt="x" * (MAX_BODY + 1000))).encode()
    r = gw_curl(gw.gateway, path, body, headers=[ANTHROPIC_VERSION])
    assert r.status == 413, r
    assert_shape(fmt, r.body, 413)
    assert mock.since(m0) == []


def test_body_over_max_body_chunked(gw, mock):
    """No Content-Length: the limit holds for a chunked body too."""
    m0 = mock.mark()
    body = json.dumps(chat_body(prompt="y" * (MAX_BODY + 1000))).encode()
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", body,
                headers=[("Transfer-Encoding", "chunked")])
    assert r.status == 413, r
    assert mock.since(m0) == []


def test_served_normally_after_413(gw, mock):
    """A refused oversize body leaves nothing behind: the next calls on every worker
    are judged on their own bodies."""
    big = json.dumps(chat_body(prompt="z" * (MAX_BODY + 1000))).encode()
    assert gw_curl(gw.gateway, "/openai/v1/chat/completions", big).status == 413
    got = [gw_curl(gw.gateway, "/openai/v1/chat/completions", chat_body()) for _ in range(8)]
    assert [r.status for r in got] == [200] * 8, [r for r in got if r.status != 200][:1]


def test_no_body(gw, mock):
    """A request without a body is answered at once (no wait for a body that never comes)."""
    m0 = mock.mark()
    t0 = time.monotonic()
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", None, method="POST", timeout=10,
                curl_args=["-H", "Content-Length: 0"])
    assert r.status == 400 and time.monotonic() - t0 < 3, r
    assert_shape("openai", r.body, 400, code="cdeguard_invalid_json")
    t0 = time.monotonic()
    r = gw_curl(gw.gateway, "/openai/v1/chat/completions", None, method="GET", timeout=10)
    assert r.status == 405 and time.monotonic() - t0 < 3, r
    assert_shape("openai", r.body, 405)
    assert mock.since(m0) == []


# =========================================================================== TLS listener


def _tls_daemon(daemon_factory, mock, gw_pki, name, client_ca=False, min_version="1.3"):
    d = daemon_factory(name)
    tls = {"cert": gw_pki["cert"], "key": gw_pki["key"], "min_version": min_version}
    if client_ca:
        tls["client_ca"] = gw_pki["ca"]
    d.start(gateway_config(d, mock, gw_pki, tls=tls))
    return d


def test_tls_listener(daemon_factory, mock, gw_pki):
    d = _tls_daemon(daemon_factory, mock, gw_pki, "gwtls")
    m0 = mock.mark()
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(), scheme="https",
                curl_args=["--cacert", gw_pki["ca"]])
    assert r.status == 200, r
    assert r.json()["choices"][0]["message"]["content"] == TEXT["openai"]
    assert_upstream_clean(mock.since(m0)[0], "openai")
    assert audit_for(d, r.task)["usage"] == USAGE["openai"]
    # min_version 1.3: a TLS 1.2-only client is refused
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(), scheme="https",
                curl_args=["--cacert", gw_pki["ca"], "--tls-max", "1.2"])
    assert r.status == 0 and r.rc != 0, r
    # plain HTTP on the TLS listener gets no answer
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(), timeout=5)
    assert r.status != 200, r


@pytest.mark.sdk
def test_tls_listener_sdk(sdk, daemon_factory, mock, gw_pki):
    d = _tls_daemon(daemon_factory, mock, gw_pki, "gwtls-sdk")
    r = ok(sdk("anthropic", {"base_url": f"https://127.0.0.1:{d.gateway}/anthropic",
                             "token": DEMO_TOKEN, "op": "messages_stream",
                             "model": "claude-sonnet-4-5"}, ca=gw_pki["ca"]))
    assert r["text"] == TEXT["anthropic"]


def test_mtls_listener(daemon_factory, mock, gw_pki):
    d = _tls_daemon(daemon_factory, mock, gw_pki, "gwmtls", client_ca=True)
    demo = gw_pki["client_demo"]
    cert_args = ["--cacert", gw_pki["ca"], "--cert", demo["cert"], "--key", demo["key"]]
    # the certificate names the workspace: no token needed
    m0 = mock.mark()
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(), token=None,
                scheme="https", curl_args=cert_args)
    assert r.status == 200, r
    assert_upstream_clean(mock.since(m0)[0], "openai")
    a = audit_for(d, r.task)
    assert a["workspace"] == "ws-demo" and a["usage"] == USAGE["openai"]
    # a token of the same workspace is fine
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(), scheme="https",
                curl_args=cert_args)
    assert r.status == 200, r
    # a token of another workspace is refused
    m0 = mock.mark()
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(), token=TOKENS["ws-eu"],
                scheme="https", curl_args=cert_args)
    assert r.status in (401, 403), r
    # a certificate naming no workspace
    unk = gw_pki["client_unknown"]
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(), token=None, scheme="https",
                curl_args=["--cacert", gw_pki["ca"], "--cert", unk["cert"], "--key", unk["key"]])
    assert r.status in (401, 403) or r.rc != 0, r
    # no client certificate / one from another CA: the handshake fails
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(), scheme="https",
                curl_args=["--cacert", gw_pki["ca"]])
    assert r.status != 200, r
    bad = gw_pki["client_untrusted"]
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(), scheme="https",
                curl_args=["--cacert", gw_pki["ca"], "--cert", bad["cert"], "--key", bad["key"]])
    assert r.status != 200, r
    assert mock.since(m0) == []


# =========================================================================== other content knobs


def test_content_knobs_variant(daemon_factory, mock, gw_pki):
    """block_secrets false (alert only), pii block, log_prompts full, and a provider
    without a key (503)."""
    d = daemon_factory("gwvariant")
    providers = provider_list(mock)
    for p in providers:
        if p["name"] == "mistral":
            del p["key"]
    d.start(gateway_config(d, mock, gw_pki, providers=providers,
                           content={"block_secrets": False, "pii": "block", "log_prompts": "full"}))
    # secret: alert only, forwarded
    m0 = mock.mark()
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(prompt=f"key {SECRET}"))
    assert r.status == 200, r
    assert SECRET.encode() in mock.since(m0)[0]["body"]
    a = audit_for(d, r.task)
    assert {"rule": "cdgtest-token", "action": "alert", "count": 1} in a["findings"], a
    assert a["decision"] == "allow"
    # pii: block
    m0 = mock.mark()
    r = gw_curl(d.gateway, "/anthropic/v1/messages", anth_body(prompt=f"mail {EMAIL}"),
                auth="x-api-key", headers=[ANTHROPIC_VERSION])
    assert r.status == 403, r
    assert_shape("anthropic", r.body, 403)
    assert mock.since(m0) == []
    assert audit_for(d, r.task)["reason"] == "cdeguard_pii_blocked"
    # log_prompts full: the (redacted) body is in the record
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(prompt="log me please"))
    assert r.status == 200, r
    a = audit_for(d, r.task)
    assert a["prompt"] is not None and "log me please" in json.dumps(a["prompt"]), a
    # a provider without a key: 503
    m0 = mock.mark()
    r = gw_curl(d.gateway, "/mistral/v1/chat/completions", chat_body("mistral-small-latest"))
    assert r.status == 503, r
    assert_shape("openai", r.body, 503)
    assert mock.since(m0) == []


# =========================================================================== reload


def test_reload_applies_new_rules_and_keeps_serving(daemon_factory, mock, gw_pki):
    """SIGHUP between calls: the new content knobs apply to the next calls, each worker's
    inspection scratch follows the new rules engine (the old one is freed with the old
    config), and nothing else is disturbed.  Several reloads, calls on every worker."""
    d = daemon_factory("gwreload")
    text = gateway_config(d, mock, gw_pki)
    d.start(text)
    prompt = f"write to {EMAIL} please"
    for _ in range(6):
        r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(prompt=prompt))
        assert r.status == 200, r  # pii: redact
    blocked = text.replace('"pii": "redact"', '"pii": "block"').replace("pii: redact", "pii: block")
    assert blocked != text, "the test config no longer spells pii: redact"
    for cfg, want in ((blocked, 403), (text, 200), (blocked, 403)):
        d.reload(cfg)
        got = [gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body(prompt=prompt)).status
               for _ in range(6)]
        assert got == [want] * 6, got
        assert gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body()).status == 200


def test_egress_listener_off(daemon_factory, mock, gw_pki):
    """`listeners.egress: off` with the gateway on: the gateway answers and nothing
    listens on the egress port (before, "off" was accepted and ignored)."""
    d = daemon_factory("egoff")
    text = gateway_config(d, mock, gw_pki)
    egress_port = d.egress
    text, n = re.subn(r'(?m)^(\s+egress:\s*)\S+$', r'\1"off"', text, count=1)
    assert n == 1, text
    d.egress = d.gateway  # wait_ready waits for the gateway instead
    d.start(text)
    r = gw_curl(d.gateway, "/openai/v1/chat/completions", chat_body())
    assert r.status == 200, r
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", egress_port), timeout=2).close()
    assert "egress=off" in d.log_text()


def test_413_readable_while_the_body_still_arrives(gw, mock):
    """An early 413 (Content-Length above the limit) reaches a client that keeps
    sending its body: the gateway shuts its write side and drops the rest until
    the client is done (or LINGER_MS), instead of closing with unread bytes, which
    would reset the connection and destroy the answer (curl: "Connection reset")."""
    m0 = mock.mark()
    total = MAX_BODY * 8
    head = (f"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
            f"Authorization: Bearer {DEMO_TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {total}\r\n\r\n").encode()
    for _ in range(5):  # the reset was a race: try it a few times
        with socket.create_connection(("127.0.0.1", gw.gateway), timeout=10) as s:
            s.sendall(head)
            time.sleep(0.05)  # the 413 is written and flushed before the body comes
            sent, chunk = 0, b"x" * 65536
            while sent < MAX_BODY * 2:
                s.sendall(chunk)
                sent += len(chunk)
            got = b""
            while True:
                d = s.recv(65536)  # a reset raises ConnectionResetError here
                if not d:
                    break
                got += d
            assert got.startswith(b"HTTP/1.1 413 "), got[:200]
            body = got.split(b"\r\n\r\n", 1)[1]
            assert_shape("openai", body, 413)
    assert mock.since(m0) == []
