"""
`cdeguard inspect` (src/scan/payload.c) and `cdeguard scan --config`: the real binary
judging payloads with the rules and actions of a config file's `inspect:` section
(doc/config.md), the way the LLM gateway judges request bodies.

Independent of the built-in rules as far as possible: the config adds rules for the
fake vendor `cdgtest_` (inline, and from a rules file) and the tests assert on those
rule ids and on actions the config sets; it disables the built-in e-mail rule
(`email-address`), which would otherwise label the same ranges.  Secrets never appear in stdout or stderr, except
where --redact is expected to return the payload untouched (nothing to redact).

Exit status of inspect: 0 may leave as is, 1 blocked, 3 redacted, 2 error.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
_bin = os.environ.get("CDEGUARD_BIN", "build/cdeguard")
BIN = Path(_bin) if os.path.isabs(_bin) else REPO_ROOT / _bin

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")

TOKEN = "cdgtest_Q7xKp2LmZr9TvB4nWc8HdY3s"
EMAIL = "alice.smith@corp.internal"

FILE_RULES = r"""
- id: cdgtest-dotenv
  description: dotenv file (test rule)
  category: path
  globs: ['.env', '.env.*']
  exclude: ['.env.example']
"""


def config_text(rules_file, actions="", rule_actions=""):
    return f"""version: 1
inspect:
  rules_files: [{rules_file}]
  disable: [email-address]
  rules:
    - id: cdgtest-token
      description: cdeguard test vendor token
      category: secret
      regex: '\\b(cdgtest_[A-Za-z0-9]{{24}})\\b'
      secret_group: 1
      keywords: [cdgtest_]
    - id: cdgtest-email
      description: test e-mail address
      category: pii
      regex: '\\b([a-z0-9._-]+@corp\\.internal)\\b'
      secret_group: 1
      keywords: ['@corp.internal']
{actions}{rule_actions}"""


@pytest.fixture(autouse=True)
def _need_binary():
    if not BIN.exists():
        pytest.fail(f"{BIN} not built (make)")


@pytest.fixture
def cfg(tmp_path):
    """Write a config; returns its path.  cfg(actions=..., rule_actions=...)"""

    def make(actions="  actions: {secret: block, pii: redact, path: block}\n", rule_actions=""):
        rf = tmp_path / "rules.yaml"
        rf.write_text(FILE_RULES)
        p = tmp_path / "cdeguard.yaml"
        p.write_text(config_text(rf, actions, rule_actions))
        return str(p)

    return make


def run(cmd, args, stdin=None):
    p = subprocess.run(
        [str(BIN), cmd, *args],
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    out = p.stdout.decode("utf-8")
    err = p.stderr.decode("utf-8", "replace")
    for m in SANITIZER_MARKERS:
        assert m not in err, err
    return p.returncode, out, err


def chat(*contents, tool_args=None):
    msgs = [{"role": "user", "content": c} for c in contents]
    if tool_args is not None:
        msgs.append(
            {
                "role": "assistant",
                "tool_calls": [{"type": "function", "function": {"name": "read", "arguments": json.dumps(tool_args)}}],
            }
        )
    return json.dumps({"model": "gpt-4o", "messages": msgs}).encode()


def ours(report):
    return [f for f in report["findings"] if f["rule_id"].startswith("cdgtest-")]


def test_redact_pii_keeps_json_valid(cfg):
    body = chat(f"please mail {EMAIL} about the report")
    rc, out, err = run("inspect", ["--config", cfg(), "--redact", "-"], stdin=body)
    assert rc == 3, err
    doc = json.loads(out)
    content = doc["messages"][0]["content"]
    assert "[REDACTED:cdgtest-email]" in content
    assert "alice" not in out and "corp.internal" not in out
    assert "cdgtest-email x1 (redact)" in err
    assert EMAIL not in err


def test_secret_blocks_and_nothing_leaves(cfg):
    # the token written with a \u escape: found on the decoded string
    body = chat("key: \\u0063dgtest_" + TOKEN[len("cdgtest_") :]).replace(b"\\\\u0063", b"\\u0063")
    rc, out, err = run("inspect", ["--config", cfg(), "--redact", "-"], stdin=body)
    assert rc == 1, err
    assert out == ""
    assert "block" in err and "cdgtest-token" in err
    assert TOKEN[8:] not in err
    # the report says why, with the raw range of the escaped token, and no secret
    rc, out, err = run("inspect", ["--config", cfg(), "-"], stdin=body)
    assert rc == 1, err
    rep = json.loads(out)
    assert rep["verdict"] == "block" and rep["format"] == "json"
    (f,) = [f for f in ours(rep) if f["rule_id"] == "cdgtest-token"]
    assert f["action"] == "block" and f["category"] == "secret"
    assert body[f["start"] : f["end"]].startswith(b"\\u0063dgtest_")
    assert f["end"] - f["start"] == len(TOKEN) + 5
    assert len(f["fingerprint"]) == 32
    assert TOKEN[8:] not in out


def test_actions_from_config(cfg):
    body = chat(f"token {TOKEN} and {EMAIL}")
    # secret: redact -> both redacted, exit 3
    rc, out, err = run("inspect", ["-c", cfg(actions="  actions: {secret: redact, pii: redact}\n"), "--redact", "-"], stdin=body)
    assert rc == 3, err
    text = json.loads(out)["messages"][0]["content"]
    assert text == "token [REDACTED:cdgtest-token] and [REDACTED:cdgtest-email]"
    # rule_actions beats the category: the token only alerts, the e-mail is redacted
    c = cfg(
        actions="  actions: {secret: block, pii: redact}\n",
        rule_actions="  rule_actions: {cdgtest-token: alert}\n",
    )
    rc, out, err = run("inspect", ["-c", c, "--redact", "-"], stdin=body)
    assert rc == 3, err
    text = json.loads(out)["messages"][0]["content"]
    assert TOKEN in text and "[REDACTED:cdgtest-email]" in text
    # all alert: the payload leaves untouched, exit 0
    rc, out, err = run("inspect", ["-c", cfg(actions="  actions: {secret: alert, pii: alert}\n"), "--redact", "-"], stdin=body)
    assert rc == 0, err
    assert out.encode() == body


def test_paths_mentioned_in_payload(cfg):
    # `cat .env` in a tool result and a file_path tool argument: path findings
    body = chat("$ cat .env\nA=1\n", tool_args={"file_path": "/work/app/.env.production"})
    rc, out, err = run("inspect", ["-c", cfg(), "-"], stdin=body)
    assert rc == 1, err
    rep = json.loads(out)
    got = [body[f["start"] : f["end"]] for f in ours(rep) if f["rule_id"] == "cdgtest-dotenv"]
    assert got == [b".env", b"/work/app/.env.production"]
    # .env.example is excluded by the rule; prose about a cat is not a command
    body = chat("the cat .env story\n$ cat .env.example\n")
    rc, out, err = run("inspect", ["-c", cfg(), "-"], stdin=body)
    assert not [f for f in ours(json.loads(out)) if f["rule_id"] == "cdgtest-dotenv"], out
    # path: alert lets it through
    rc, out, err = run(
        "inspect", ["-c", cfg(actions="  actions: {path: alert}\n"), "--redact", "-"], stdin=chat("$ cat .env\n")
    )
    assert rc == 0, err


def test_text_payload_and_formats(cfg, tmp_path):
    p = tmp_path / "prompt.txt"
    p.write_text(f"hello {EMAIL}\n==> .env <==\nX=1\n")
    rc, out, err = run("inspect", ["-c", cfg(), str(p)])
    assert rc == 1, err
    rep = json.loads(out)
    assert rep["format"] == "text"
    assert {f["rule_id"] for f in ours(rep)} == {"cdgtest-email", "cdgtest-dotenv"}
    email = [f for f in ours(rep) if f["rule_id"] == "cdgtest-email"][0]
    assert (email["line"], email["column"]) == (1, 7)
    # --format json on text: an error, exit 2
    rc, out, err = run("inspect", ["-c", cfg(), "--format", "json", str(p)])
    assert rc == 2 and "not valid JSON" in err
    # text redaction
    rc, out, err = run("inspect", ["-c", cfg(actions="  actions: {path: alert}\n"), "--redact", str(p)])
    assert rc == 3, err
    assert out.startswith("hello [REDACTED:cdgtest-email]\n")


def test_errors(cfg, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ninspect:\n  actions: {secret: drop}\n")
    rc, out, err = run("inspect", ["-c", str(bad), "-"], stdin=b"{}")
    assert rc == 2
    assert f"{bad}:3:" in err and "'block', 'redact' or 'alert'" in err
    rc, out, err = run("inspect", ["--max-size", "10", "-"], stdin=b"x" * 11)
    assert rc == 2 and "max-size" in err
    rc, out, err = run("inspect", ["--bogus"])
    assert rc == 2 and "unknown option" in err
    rc, out, err = run("inspect", [str(tmp_path / "missing.json")])
    assert rc == 2 and "missing.json" in err


def test_scan_with_config(cfg, tmp_path):
    t = tmp_path / "tree"
    t.mkdir()
    (t / "app.py").write_text(f'API = "{TOKEN}"\nMAIL = "{EMAIL}"\n')
    (t / ".env").write_text("A=1\n")
    c = cfg(actions="  actions: {pii: alert}\n", rule_actions="  rule_actions: {cdgtest-token: redact}\n")
    rc, out, err = run("scan", ["--config", c, "--no-git-ignore", "--format", "json", str(t)])
    assert rc == 1, err
    found = {f["rule_id"]: f for f in json.loads(out)["findings"] if f["rule_id"].startswith("cdgtest-")}
    assert set(found) == {"cdgtest-token", "cdgtest-email", "cdgtest-dotenv"}
    assert found["cdgtest-token"]["action"] == "redact"
    assert found["cdgtest-email"]["action"] == "alert"
    assert TOKEN[8:] not in out
    # --rules with a config that has its own rules is ambiguous: refused
    rc, out, err = run("scan", ["--config", c, "--rules", str(tmp_path / "rules.yaml"), str(t)])
    assert rc == 2 and "inspect.rules_files" in err
