#!/usr/bin/python3
"""Measure cdeguard scan against tests/corpus2/labels.json.

Usage: tests/corpus2/evaluate.py [--check] [--min-precision P] [--min-recall R] [--verbose]
Binary: $CDEGUARD_BIN (default build/cdeguard), run from the repository root.
A finding matches a label when file and category are equal and the label's
line lies within the finding's line range (start line .. line of end offset).
"""
import argparse, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FILES_REL = "tests/corpus2/files"
FILES = os.path.join(ROOT, FILES_REL)


def norm(path):
    p = path.replace("\\", "/")
    for pre in (FILES + "/", FILES_REL + "/", "./" + FILES_REL + "/"):
        if p.startswith(pre):
            return p[len(pre):]
    i = p.find(FILES_REL + "/")
    return p[i + len(FILES_REL) + 1:] if i >= 0 else p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--min-precision", type=float, default=0.95)
    ap.add_argument("--min-recall", type=float, default=0.95)
    ap.add_argument("--verbose", action="store_true", help="also list true positives")
    a = ap.parse_args()

    binp = os.environ.get("CDEGUARD_BIN", "build/cdeguard")
    cmd = [binp, "scan", "--format", "json", "--no-git-ignore", "-q", FILES_REL]
    pr = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if pr.returncode not in (0, 1):
        sys.stderr.write(pr.stderr.decode(errors="replace"))
        print("scanner failed with exit status %d" % pr.returncode)
        return 2
    report = json.loads(pr.stdout.decode())
    labels = json.load(open(os.path.join(HERE, "labels.json")))

    cache = {}

    def end_line(f, fd):
        if f not in cache:
            try:
                cache[f] = open(os.path.join(FILES, f), "rb").read()
            except OSError:
                cache[f] = b""
        data = cache[f]
        end = fd.get("end")
        if end is None or not data:
            return fd["line"]
        end = max(int(end) - 1, int(fd.get("start", end - 1)))  # end is exclusive
        return data.count(b"\n", 0, min(end, len(data))) + 1

    findings = []
    for fd in report.get("findings", []):
        f = norm(fd["file"])
        findings.append(dict(fd, file=f, line=int(fd["line"]), end_line=max(int(fd["line"]), end_line(f, fd))))

    # findings on lines labelled "ambiguous" are neither TP nor FP
    amb = [l for l in labels if l["category"] == "ambiguous"]
    kept, ignored = [], []
    for fd in findings:
        if fd.get("category") in ("secret", "pii") and any(
                l["file"] == fd["file"] and fd["line"] <= l["line"] <= fd["end_line"] for l in amb):
            ignored.append(fd)
        else:
            kept.append(fd)
    findings = kept

    by_label = {}
    rc = 0
    print("cdeguard corpus evaluation: %d files scanned, %d findings, %d labels" % (
        report.get("files_scanned", 0), len(findings) + len(ignored), len(labels)))
    def overlaps(l, fd):
        if "start" not in l or fd.get("start") is None or fd.get("end") is None:
            return fd["line"] <= l["line"] <= fd["end_line"]
        return int(fd["start"]) < l["end"] and l["start"] < int(fd["end"])

    def score(L, F, strict):
        matched, fps, tps_f = set(), [], 0
        for fd in F:
            hit = [i for i, l in enumerate(L) if l["file"] == fd["file"] and (
                overlaps(l, fd) if strict else fd["line"] <= l["line"] <= fd["end_line"])]
            if hit:
                tps_f += 1
                matched.update(hit)
            else:
                fps.append(fd)
        return matched, fps, tps_f

    for cat in ("secret", "pii"):
        L = [l for l in labels if l["category"] == cat]
        F = [f for f in findings if f.get("category") == cat]
        s_matched, s_fps, s_tpf = score(L, F, True)
        matched_labels, fps, tps_f = set(), [], 0
        for fd in F:
            hit = [i for i, l in enumerate(L) if l["file"] == fd["file"] and fd["line"] <= l["line"] <= fd["end_line"]]
            if hit:
                tps_f += 1
                matched_labels.update(hit)
                for i in hit:
                    by_label.setdefault((cat, i), []).append(fd["rule_id"])
            else:
                fps.append(fd)
        tp = len(matched_labels)
        fn = [l for i, l in enumerate(L) if i not in matched_labels]
        prec = tps_f / len(F) if F else 1.0
        rec = tp / len(L) if L else 1.0
        print("\n== %s: TP=%d FP=%d FN=%d precision=%.3f recall=%.3f" % (cat, tp, len(fps), len(fn), prec, rec))
        print("   strict (byte-span overlap instead of line): TP=%d FP=%d FN=%d precision=%.3f recall=%.3f" % (
            len(s_matched), len(s_fps), len(L) - len(s_matched), s_tpf / len(F) if F else 1.0,
            len(s_matched) / len(L) if L else 1.0))
        for l in fn:
            print("  FN %s:%d kind=%s" % (l["file"], l["line"], l["kind"]))
        for i, l in enumerate(L):
            if i not in s_matched and l in L and l not in fn:
                print("  FN(strict only) %s:%d kind=%s" % (l["file"], l["line"], l["kind"]))
        for fd in fps:
            print("  FP %s:%d-%d rule=%s preview=%s" % (fd["file"], fd["line"], fd["end_line"], fd["rule_id"], fd.get("preview", "")))
        if a.verbose:
            for i, l in enumerate(L):
                if i in matched_labels:
                    print("  TP %s:%d kind=%s rules=%s" % (l["file"], l["line"], l["kind"], ",".join(by_label[(cat, i)])))
        if a.check and (prec < a.min_precision or rec < a.min_recall):
            rc = 1
    print("\n== ignored (on lines labelled ambiguous): %d" % len(ignored))
    for fd in ignored:
        print("  %s %s:%d rule=%s" % (fd.get("category"), fd["file"], fd["line"], fd["rule_id"]))
    other = [f for f in findings if f.get("category") not in ("secret", "pii")]
    print("\n== other categories (not scored): %d" % len(other))
    for fd in other:
        print("  %s %s:%d rule=%s" % (fd.get("category"), fd["file"], fd["line"], fd["rule_id"]))
    return rc


if __name__ == "__main__":
    sys.exit(main())
