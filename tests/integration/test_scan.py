"""
`cdeguard scan` (src/scan/): the real binary on temporary trees with planted findings.

Independent of the built-in rules (rules/*.yaml, which change): every test passes
`--rules` with RULES below and asserts on those rule ids, except
test_builtin_rules_find_github_or_aws_key, which takes a positive example from
rules/*.yaml and skips when there is none.

The planted secrets are made-up tokens for the fake vendor `cdgtest_`; the masking
tests assert that the token text never appears in stdout or stderr unless
--show-secrets.  Every run fails the test if stderr holds a sanitizer report (for
CDEGUARD_BIN=build-san/cdeguard).

Exit status: 0 clean, 1 findings, 2 error (an error wins).
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
_bin = os.environ.get("CDEGUARD_BIN", "build/cdeguard")
BIN = Path(_bin) if os.path.isabs(_bin) else REPO_ROOT / _bin

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")

TOKEN = "cdgtest_Q7xKp2LmZr9TvB4nWc8HdY3s"
TOKEN2 = "cdgtest_Zp4RtW9yLm2QxN7bVc3KdH8f"
EMAIL = "alice.smith@corp.internal"

RULES = r"""
- id: cdgtest-token
  description: cdeguard test vendor token
  category: secret
  regex: '\b(cdgtest_[A-Za-z0-9]{24})\b'
  secret_group: 1
  keywords: [cdgtest_]
- id: cdgtest-email
  description: test e-mail address
  category: pii
  regex: '\b([a-z0-9._-]+@corp\.internal)\b'
  secret_group: 1
  keywords: ['@corp.internal']
- id: cdgtest-dotenv
  description: dotenv file (test rule)
  category: path
  globs: ['.env', '.env.*']
  exclude: ['.env.example']
"""

OUR_RULES = {"cdgtest-token", "cdgtest-email", "cdgtest-dotenv"}


def run(args, cwd=None, stdin=None, env=None):
    """Run `cdeguard scan ARGS`; return (exit code, stdout, stderr)."""
    p = subprocess.run(
        [str(BIN), "scan", *args],
        cwd=cwd,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        timeout=60,
    )
    out = p.stdout.decode("utf-8")
    err = p.stderr.decode("utf-8", "replace")
    for m in SANITIZER_MARKERS:
        assert m not in err, err
    return p.returncode, out, err


@pytest.fixture(autouse=True)
def _need_binary():
    if not BIN.exists():
        pytest.fail(f"{BIN} not built (make)")


@pytest.fixture
def rules(tmp_path):
    p = tmp_path / "test-rules.yaml"
    p.write_text(RULES)
    return str(p)


def ours(findings):
    return [f for f in findings if f["rule_id"] in OUR_RULES]


def scan_json(args, **kw):
    rc, out, err = run([*args, "--format", "json"], **kw)
    assert rc in (0, 1), err
    return rc, json.loads(out), err


@pytest.fixture
def tree(tmp_path):
    t = tmp_path / "tree"
    (t / "src" / "deep").mkdir(parents=True)
    (t / "src" / "app.py").write_text(f'import os\nAPI = "{TOKEN}"\n')
    (t / "src" / "deep" / "notes.txt").write_text(f"contact: {EMAIL}\n")
    (t / "clean.txt").write_text("nothing to see here\n")
    return t


def git_env(home):
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Ann Dev",
        GIT_AUTHOR_EMAIL="ann@dev.test",
        GIT_COMMITTER_NAME="Ann Dev",
        GIT_COMMITTER_EMAIL="ann@dev.test",
    )
    return env


def git(repo, *args, env, date=None):
    e = dict(env)
    if date:
        e["GIT_AUTHOR_DATE"] = e["GIT_COMMITTER_DATE"] = date
    p = subprocess.run(["git", *args], cwd=repo, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode().strip()


# ---------------------------------------------------------------- exit codes


def test_clean_tree_exits_0(tmp_path, rules):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("hello\n")
    rc, out, err = run(["--rules", rules, str(tmp_path / "c")])
    assert rc == 0, err
    assert out == ""
    assert "0 findings in 1 file" in err


def test_empty_dirs_and_files(tmp_path, rules):
    d = tmp_path / "e"
    (d / "empty-dir").mkdir(parents=True)
    (d / "empty.txt").write_text("")
    rc, out, err = run(["--rules", rules, "."], cwd=d)
    assert rc == 0 and out == "", err
    rc, out, err = run(["--rules", rules, str(d / "empty-dir")])
    assert rc == 0 and "0 findings in 0 files" in err


def test_findings_exit_1_text_format(tree, rules):
    rc, out, err = run(["--rules", rules, "."], cwd=tree)
    assert rc == 1, err
    lines = [line for line in out.splitlines() if re.search(r"\[cdgtest-", line)]
    assert len(lines) == 2, out
    tok = [line for line in lines if "[cdgtest-token]" in line][0]
    m = re.match(r"^src/app\.py:2:8: \[cdgtest-token\] secret (\S+) ([0-9a-f]{32})$", tok)
    assert m, tok
    mail = [line for line in lines if "[cdgtest-email]" in line][0]
    assert mail.startswith("src/deep/notes.txt:1:10: [cdgtest-email] pii ")
    assert re.search(r"\d+ findings in 3 files \(\d+\.\d MB scanned\)", err)


def test_path_argument_prefix_and_file_argument(tree, rules):
    rc, out, _ = run(["--rules", rules, str(tree)])
    assert rc == 1
    assert f"{tree}/src/app.py:2:8: [cdgtest-token]" in out
    rc, out, _ = run(["--rules", rules, str(tree / "clean.txt")])
    assert rc == 0 and out == ""


def test_errors_exit_2(tmp_path, rules, tree):
    rc, _, err = run(["--no-such-option", "."])
    assert rc == 2 and "unknown option" in err
    rc, _, err = run(["--format", "xml", "."])
    assert rc == 2
    rc, _, err = run(["--rules", rules, str(tmp_path / "missing")])
    assert rc == 2 and "missing" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: x\n  category: secret\n  regex: '(unclosed'\n")
    rc, _, err = run(["--rules", str(bad), "."], cwd=tree)
    assert rc == 2 and "bad.yaml" in err
    rc, _, err = run(["--rules", rules, "--disable", "no-such-rule", "."], cwd=tree)
    assert rc == 2


def test_error_wins_over_findings(tree, rules, tmp_path):
    # an unreadable file among many: reported, the scan goes on, the exit status is 2
    rc, out, err = run(["--rules", rules, ".", str(tmp_path / "nope")], cwd=tree)
    assert rc == 2
    assert "[cdgtest-token]" in out
    assert "nope" in err


def test_unreadable_file_is_reported(tree, rules):
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    p = tree / "secret.txt"
    p.write_text("x\n")
    p.chmod(0)
    rc, out, err = run(["--rules", rules, "."], cwd=tree)
    assert rc == 2 and "secret.txt" in err and "[cdgtest-token]" in out


# ---------------------------------------------------------------- formats


def test_json_shape(tree, rules):
    rc, doc, _ = scan_json(["--rules", rules, "."], cwd=tree)
    assert rc == 1
    assert doc["version"] == 1
    assert doc["files_scanned"] == 3
    assert doc["bytes_scanned"] == sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    f = [x for x in ours(doc["findings"]) if x["rule_id"] == "cdgtest-token"][0]
    assert f["category"] == "secret"
    assert f["action"] in ("block", "redact", "alert")
    assert f["file"] == "src/app.py"
    assert (f["line"], f["column"]) == (2, 8)
    text = (tree / "src" / "app.py").read_text()
    assert text[f["start"] : f["end"]] == TOKEN
    assert re.fullmatch(r"[0-9a-f]{32}", f["fingerprint"])
    assert TOKEN not in f["preview"]
    assert "secret" not in f and "commit" not in f


def test_sarif_shape(tree, rules):
    rc, out, err = run(["--rules", rules, "--format", "sarif", "."], cwd=tree)
    assert rc == 1, err
    doc = json.loads(out)
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert doc["version"] == "2.1.0"
    assert len(doc["runs"]) == 1
    driver = doc["runs"][0]["tool"]["driver"]
    assert driver["name"] == "cdeguard"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", driver["version"])
    assert driver["informationUri"].startswith("https://")
    ids = [r["id"] for r in driver["rules"]]
    assert len(ids) == len(set(ids))
    assert {"cdgtest-token", "cdgtest-email"} <= set(ids)
    for r in driver["rules"]:
        assert r["shortDescription"]["text"]
    results = doc["runs"][0]["results"]
    used = {r["ruleId"] for r in results}
    assert used == set(ids)
    for r in results:
        assert r["level"] in ("error", "warning", "note")
        assert r["message"]["text"]
        assert driver["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
        loc = r["locations"][0]["physicalLocation"]
        assert not loc["artifactLocation"]["uri"].startswith("/")
        assert "\\" not in loc["artifactLocation"]["uri"]
        assert loc["region"]["startLine"] >= 1 and loc["region"]["startColumn"] >= 1
        assert re.fullmatch(r"[0-9a-f]{32}", r["partialFingerprints"]["cdeguard/v1"])
    tok = [r for r in results if r["ruleId"] == "cdgtest-token"][0]
    assert tok["level"] == "error"
    assert tok["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/app.py"
    assert tok["locations"][0]["physicalLocation"]["region"] == {"startLine": 2, "startColumn": 8}
    mail = [r for r in results if r["ruleId"] == "cdgtest-email"][0]
    assert mail["level"] == "warning"


def test_sarif_clean_has_empty_results(tmp_path, rules):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("hello\n")
    rc, out, _ = run(["--rules", rules, "--format", "sarif", str(tmp_path / "c")])
    assert rc == 0
    doc = json.loads(out)
    assert doc["runs"][0]["results"] == []


def test_output_file(tree, rules, tmp_path):
    o = tmp_path / "report.json"
    rc, out, _ = run(["--rules", rules, "--format", "json", "-o", str(o), "."], cwd=tree)
    assert rc == 1 and out == ""
    assert ours(json.loads(o.read_text())["findings"])


def test_json_escaping_of_odd_file_names(tmp_path, rules):
    d = tmp_path / "odd"
    d.mkdir()
    name = 'we"ird\\na\tme \x01.txt'
    (d / name).write_text(f"k={TOKEN}\n")
    (d / "lat\xe9.txt").write_bytes(f"k={TOKEN}\n".encode())
    rc, doc, _ = scan_json(["--rules", rules, "."], cwd=d)
    assert rc == 1
    files = {f["file"] for f in ours(doc["findings"])}
    assert name in files
    rc, out, _ = run(["--rules", rules, "--format", "sarif", "."], cwd=d)
    json.loads(out)


# ---------------------------------------------------------------- masking


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_secret_masked_in_every_format(tree, rules, fmt):
    rc, out, err = run(["--rules", rules, "--format", fmt, "."], cwd=tree)
    assert rc == 1
    assert TOKEN not in out and TOKEN not in err
    assert TOKEN[8:] not in out
    assert EMAIL not in out and EMAIL not in err


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_show_secrets(tree, rules, fmt):
    rc, out, _ = run(["--rules", rules, "--format", fmt, "--show-secrets", "."], cwd=tree)
    assert rc == 1
    assert TOKEN in out
    if fmt == "json":
        f = [x for x in json.loads(out)["findings"] if x["rule_id"] == "cdgtest-token"][0]
        assert f["secret"] == TOKEN


# ---------------------------------------------------------------- baseline, allow


def test_baseline_round_trip(tree, rules, tmp_path):
    base = tmp_path / "baseline.json"
    rc, _, _ = run(["--rules", rules, "--format", "json", "-o", str(base), "-q", "."], cwd=tree)
    assert rc == 1
    rc, out, err = run(["--rules", rules, "--baseline", str(base), "."], cwd=tree)
    assert rc == 0, out + err
    assert out == ""
    # a new secret is still reported
    (tree / "new.txt").write_text(f"t = {TOKEN2}\n")
    rc, out, _ = run(["--rules", rules, "--baseline", str(base), "."], cwd=tree)
    assert rc == 1
    assert [line for line in out.splitlines() if "cdgtest" in line][0].startswith("new.txt:1:5: [cdgtest-token]")


def test_bad_baseline_is_an_error(tree, rules, tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text("{not json")
    rc, _, err = run(["--rules", rules, "--baseline", str(bad), "."], cwd=tree)
    assert rc == 2 and "baseline" in err
    rc, _, err = run(["--rules", rules, "--baseline", str(tmp_path / "none.json"), "."], cwd=tree)
    assert rc == 2


def test_inline_allow_comment(tmp_path, rules):
    d = tmp_path / "a"
    d.mkdir()
    (d / "x.py").write_text(
        f'A = "{TOKEN}"  # cdeguard:allow test fixture\n'
        f"# next line is real\n"
        f'B = "{TOKEN2}"\n'
    )
    rc, doc, err = scan_json(["--rules", rules, "."], cwd=d)
    assert rc == 1
    fs = ours(doc["findings"])
    assert [(f["line"], f["rule_id"]) for f in fs] == [(3, "cdgtest-token")]
    assert "1 allowed inline" in err
    (d / "x.py").write_text(f'A = "{TOKEN}"  // cdeguard:allow\n')
    rc, out, _ = run(["--rules", rules, "."], cwd=d)
    assert "cdgtest-token" not in out


# ---------------------------------------------------------------- walking


def test_binary_file_skipped(tmp_path, rules):
    d = tmp_path / "b"
    d.mkdir()
    (d / "blob.bin").write_bytes(b"\x7fELF\x00\x01" + f" {TOKEN} ".encode() + b"\x00" * 10)
    rc, out, err = run(["--rules", rules, "."], cwd=d)
    assert rc == 0, out
    assert "1 binary skipped" in err
    # a NUL after the first 8 KiB does not make a file binary
    (d / "late.txt").write_bytes(b"a" * 9000 + b"\x00" + f"\n{TOKEN}\n".encode())
    rc, out, _ = run(["--rules", rules, "."], cwd=d)
    assert rc == 1 and "late.txt:2:1: [cdgtest-token]" in out


def test_dot_git_and_symlinked_dirs_not_walked(tmp_path, rules):
    d = tmp_path / "w"
    (d / ".git").mkdir(parents=True)
    (d / ".git" / "config").write_text(f"token = {TOKEN}\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "s.txt").write_text(f"token = {TOKEN}\n")
    (d / "link").symlink_to(outside, target_is_directory=True)
    (d / "loop").symlink_to(d, target_is_directory=True)
    rc, out, err = run(["--rules", rules, "--no-git-ignore", "."], cwd=d)
    assert rc == 0, out + err


def test_gitignored_file_skipped_in_git_repo(tmp_path, rules):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = git_env(tmp_path)
    git(repo, "init", "-q", ".", env=env)
    (repo / ".gitignore").write_text("ignored.log\nbuild/\n")
    (repo / "ignored.log").write_text(f"t={TOKEN}\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.txt").write_text(f"t={TOKEN}\n")
    (repo / "tracked.txt").write_text(f"t={TOKEN2}\n")
    (repo / "untracked.txt").write_text(f"mail {EMAIL}\n")
    git(repo, "add", ".gitignore", "tracked.txt", env=env)
    git(repo, "commit", "-qm", "init", env=env)
    rc, doc, _ = scan_json(["--rules", rules, "."], cwd=repo, env=env)
    assert rc == 1
    files = sorted({f["file"] for f in ours(doc["findings"])})
    assert files == ["tracked.txt", "untracked.txt"]
    # and from outside the repository
    rc, doc, _ = scan_json(["--rules", rules, str(repo)], env=env)
    files = sorted({f["file"] for f in ours(doc["findings"])})
    assert files == [f"{repo}/tracked.txt", f"{repo}/untracked.txt"]
    # --no-git-ignore walks everything (but not .git)
    rc, doc, _ = scan_json(["--rules", rules, "--no-git-ignore", "."], cwd=repo, env=env)
    files = sorted({f["file"] for f in ours(doc["findings"])})
    assert files == ["build/out.txt", "ignored.log", "tracked.txt", "untracked.txt"]


def test_path_rule_on_dotenv(tmp_path, rules):
    d = tmp_path / "p"
    (d / "app").mkdir(parents=True)
    (d / "app" / ".env").write_text("DEBUG=1\n")
    (d / "app" / ".env.example").write_text("DEBUG=1\n")
    (d / ".env.production").write_text("")
    rc, doc, _ = scan_json(["--rules", rules, "."], cwd=d)
    assert rc == 1
    got = sorted((f["file"], f["category"]) for f in doc["findings"] if f["rule_id"] == "cdgtest-dotenv")
    assert got == [(".env.production", "path"), ("app/.env", "path")]


def test_json_file_scanned_decoded_and_fallback(tmp_path, rules):
    d = tmp_path / "j"
    d.mkdir()
    # \u0063 is 'c': found only when the JSON string is decoded
    (d / "conf.json").write_text('{"a": 1,\n "key": "\\u0063dgtest_Q7xKp2LmZr9TvB4nWc8HdY3s"}\n')
    (d / "broken.json").write_text(f'{{"key": "{TOKEN2}",,,\n')
    rc, doc, _ = scan_json(["--rules", rules, "."], cwd=d)
    assert rc == 1
    got = sorted((f["file"], f["line"], f["column"]) for f in ours(doc["findings"]))
    assert got == [("broken.json", 1, 10), ("conf.json", 2, 10)]


def test_stdin_dash(rules):
    rc, out, err = run(["--rules", rules, "-"], stdin=f"first\nsecond {TOKEN}\n".encode())
    assert rc == 1, err
    assert re.search(r"^-:2:8: \[cdgtest-token\] secret ", out, re.M)
    assert TOKEN not in out
    rc, out, _ = run(["--rules", rules, "-"], stdin=b"nothing\n")
    assert rc == 0
    # no PATH and a pipe on stdin: stdin
    rc, out, _ = run(["--rules", rules], stdin=f"{EMAIL}\n".encode())
    assert rc == 1 and "[cdgtest-email]" in out


def test_large_input_streamed(tmp_path, rules):
    d = tmp_path / "big"
    d.mkdir()
    filler = ("lorem ipsum dolor sit amet " * 40 + "\n").encode()
    body = filler * 200 + f"x {TOKEN} # cdeguard:allow\n".encode() + filler * 200 + f"y {TOKEN2}\n".encode()
    (d / "big.txt").write_bytes(body)
    rc, doc, err = scan_json(["--rules", rules, "--max-file-size", "100k", "--show-secrets", "."], cwd=d)
    assert rc == 1
    assert "streaming" in err
    fs = ours(doc["findings"])
    assert [(f["line"], f["column"], f["secret"]) for f in fs] == [(402, 3, TOKEN2)]
    rc, doc2, _ = scan_json(["--rules", rules, "-", "--max-file-size", "64k", "--show-secrets"], stdin=body)
    assert [(f["line"], f["column"], f["secret"]) for f in ours(doc2["findings"])] == [(402, 3, TOKEN2)]
    assert doc2["bytes_scanned"] == len(body)


def test_disable_rule(tree, rules):
    rc, doc, _ = scan_json(["--rules", rules, "--disable", "cdgtest-token", "."], cwd=tree)
    assert "cdgtest-token" not in {f["rule_id"] for f in doc["findings"]}
    assert "cdgtest-email" in {f["rule_id"] for f in doc["findings"]}


def test_help():
    p = subprocess.run([str(BIN), "scan", "--help"], stdout=subprocess.PIPE, timeout=30)
    assert p.returncode == 0
    assert b"--baseline" in p.stdout and b"cdeguard:allow" in p.stdout


# ---------------------------------------------------------------- git history


@pytest.fixture
def history(tmp_path):
    """A repository where TOKEN is added in commit 2 (line 3 of app/config.py) and
    deleted in commit 3; commit 2 also adds a .env file."""
    repo = tmp_path / "hist"
    repo.mkdir()
    env = git_env(tmp_path)
    git(repo, "init", "-q", ".", env=env)
    (repo / "app").mkdir()
    (repo / "app" / "config.py").write_text("a = 1\nb = 2\n")
    git(repo, "add", ".", env=env)
    git(repo, "commit", "-qm", "one", env=env, date="2024-01-01T10:00:00+00:00")
    (repo / "app" / "config.py").write_text(f'a = 1\nb = 2\nkey = "{TOKEN}"\n')
    (repo / ".env").write_text("X=1\n")
    e2 = dict(env, GIT_AUTHOR_NAME="Bob Leaker", GIT_AUTHOR_EMAIL="bob@leak.test")
    git(repo, "add", ".", env=e2)
    git(repo, "commit", "-qm", "two", env=e2, date="2024-02-03T04:05:06+00:00")
    c2 = git(repo, "rev-parse", "HEAD", env=env)
    (repo / "app" / "config.py").write_text("a = 1\nb = 2\n")
    (repo / ".env").unlink()
    git(repo, "commit", "-qam", "three: remove the key", env=env, date="2024-03-01T00:00:00+00:00")
    return repo, env, c2


def test_git_history_finds_deleted_secret(history, rules):
    repo, env, c2 = history
    # the working tree is clean now
    rc, out, _ = run(["--rules", rules, "."], cwd=repo, env=env)
    assert rc == 0, out
    rc, doc, err = scan_json(["--rules", rules, "--git", "."], cwd=repo, env=env)
    assert rc == 1, err
    toks = [f for f in doc["findings"] if f["rule_id"] == "cdgtest-token"]
    assert len(toks) == 1
    t = toks[0]
    assert t["file"] == "app/config.py"
    assert (t["line"], t["column"]) == (3, 8)
    assert t["commit"] == c2
    assert t["author"] == "Bob Leaker <bob@leak.test>"
    assert t["date"].startswith("2024-02-03T04:05:06")
    envs = [f for f in doc["findings"] if f["rule_id"] == "cdgtest-dotenv"]
    assert [(f["file"], f["commit"]) for f in envs] == [(".env", c2)]
    # text format carries the commit too, and stays masked
    rc, out, _ = run(["--rules", rules, "--git", str(repo)], env=env)
    line = [x for x in out.splitlines() if "[cdgtest-token]" in x][0]
    assert line.startswith("app/config.py:3:8: [cdgtest-token] secret ")
    assert f"commit={c2[:12]}" in line and "Bob Leaker <bob@leak.test>" in line
    assert TOKEN not in out


def test_git_multiline_pem_in_one_hunk(tmp_path, rules):
    repo = tmp_path / "pem"
    repo.mkdir()
    env = git_env(tmp_path)
    git(repo, "init", "-q", ".", env=env)
    pem_rule = tmp_path / "pem.yaml"
    pem_rule.write_text(
        "- id: cdgtest-pem\n  description: test PEM block\n  category: secret\n"
        "  regex: '(-----BEGIN CDGTEST KEY-----\\n[A-Za-z0-9+/=\\n]{20,400}-----END CDGTEST KEY-----)'\n"
    )
    (repo / "k.txt").write_text(
        "intro\n-----BEGIN CDGTEST KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n0aJgqb8TzWq1Xy7Lm3PpR\n-----END CDGTEST KEY-----\n"
    )
    git(repo, "add", ".", env=env)
    git(repo, "commit", "-qm", "key", env=env)
    rc, doc, err = scan_json(["--rules", str(pem_rule), "--git", "."], cwd=repo, env=env)
    assert rc == 1, err
    f = [x for x in doc["findings"] if x["rule_id"] == "cdgtest-pem"]
    assert [(x["file"], x["line"]) for x in f] == [("k.txt", 2)]


def test_git_range_and_baseline(history, rules, tmp_path):
    repo, env, c2 = history
    rc, doc, _ = scan_json(["--rules", rules, "--git-range", "HEAD~1..HEAD", "."], cwd=repo, env=env)
    assert rc == 0 and ours(doc["findings"]) == []
    base = tmp_path / "gb.json"
    run(["--rules", rules, "--git", "--format", "json", "-o", str(base), "."], cwd=repo, env=env)
    rc, out, err = run(["--rules", rules, "--git", "--baseline", str(base), "."], cwd=repo, env=env)
    assert rc == 0, out + err


def test_git_errors(tmp_path, rules):
    d = tmp_path / "notrepo"
    d.mkdir()
    env = git_env(tmp_path)
    env["GIT_CEILING_DIRECTORIES"] = str(tmp_path)
    rc, _, err = run(["--rules", rules, "--git", str(d)], env=env)
    assert rc == 2
    rc, _, _ = run(["--rules", rules, "--git-range", "nosuchref..HEAD", str(d)], env=env)
    assert rc == 2


# ---------------------------------------------------------------- built-in rules


def _builtin_example():
    """(rule id, first positive example) of a GitHub-token or AWS-key-id rule in rules/*.yaml."""
    for y in sorted((REPO_ROOT / "rules").glob("*.yaml")):
        text = y.read_text()
        for rid in ("github-pat-classic", "aws-access-key-id"):
            m = re.search(r"^- id: " + re.escape(rid) + r"\s*$(.*?)(?=^- id:|\Z)", text, re.M | re.S)
            if not m:
                continue
            p = re.search(r"positive:\s*\n\s*-\s*'([^']*)'", m.group(1))
            if p:
                return rid, p.group(1)
    return None


def test_builtin_rules_find_github_or_aws_key(tmp_path):
    ex = _builtin_example()
    if not ex:
        pytest.skip("no github-pat-classic / aws-access-key-id rule with an example in rules/*.yaml")
    rid, sample = ex
    d = tmp_path / "bi"
    d.mkdir()
    (d / "settings.ini").write_text(f"[x]\n{sample}\n")
    rc, doc, err = scan_json(["."], cwd=d)
    assert rc == 1, err
    assert rid in {f["rule_id"] for f in doc["findings"]}


def test_ignore_file_paths_and_fingerprints(tmp_path, rules):
    d = tmp_path / "proj"
    (d / "fixtures" / "deep").mkdir(parents=True)
    (d / "src").mkdir()
    (d / "fixtures" / "deep" / "data.txt").write_text(f"k = {TOKEN}\n")
    (d / "src" / "app.py").write_text(f"k = '{TOKEN2}'\n")
    (d / "notes.log").write_text(f"who: {EMAIL}\n")
    rc, out, _ = run(["--rules", rules, "--format", "json", "-q", "."], cwd=d)
    assert rc == 1
    found = [f for f in json.loads(out)["findings"] if f["rule_id"] in OUR_RULES]
    assert len(found) == 3
    fp_app = [f["fingerprint"] for f in json.loads(out)["findings"] if f["file"] == "src/app.py"]
    # a directory pattern, a component glob and a fingerprint, with comments
    (d / ".cdeguardignore").write_text(
        "# test data\nfixtures/\n*.log   # logs are rotated elsewhere\n" + "\n".join(fp_app) + "\n"
    )
    rc, out, err = run(["--rules", rules, "."], cwd=d)
    assert rc == 0, out + err
    assert out == ""
    # the same file given with --ignore-file from elsewhere
    ign = tmp_path / "ign"
    ign.write_text("fixtures/deep/\n")
    (d / ".cdeguardignore").unlink()
    rc, out, _ = run(["--rules", rules, "--ignore-file", str(ign), "-q", "."], cwd=d)
    assert rc == 1
    assert "fixtures/" not in out and "src/app.py" in out and "notes.log" in out
    rc, _, err = run(["--rules", rules, "--ignore-file", str(tmp_path / "missing"), "."], cwd=d)
    assert rc == 2 and "ignore-file" in err
