#!/usr/bin/env bash
# bench/scan.sh — secret scanner benchmark: cdeguard scan vs secretlint, plus
# the inspect engine in process.
#
# One run, no arguments (network: the npm registry only, for the corpus and
# for secretlint):
#   * corpus = a copy of /usr/include + a node_modules tree of real npm
#     packages (NPM_PKGS, installed into the temp dir with --ignore-scripts);
#     symlinks are dropped and directories named node_modules renamed to
#     node_modules_ (secretlint ignores **/node_modules/** unconditionally);
#   * `cdeguard scan` over the whole corpus, timed with hyperfine;
#   * secretlint (bench/package.json: secretlint + preset-recommend, pinned)
#     over a seeded random subset of the same files (SECRETLINT_MB; 0 = the
#     whole corpus) — cdeguard is also timed on that subset, for a
#     like-for-like ratio;
#   * bench/scan_engine.c (linked with build/libcdeguard.a): single-thread
#     MB/s of inspect_scan_text on the corpus headers concatenated, and
#     latency of inspect_scan_json_flags (text paths on, as the gateway scans)
#     on 1 KB / 100 KB / 1 MB chat-completion bodies.
# Prints two Markdown tables and writes them to bench/results/scan-<date>.md.
#
# Environment (all optional):
#   RUNS=3            hyperfine runs for cdeguard    WARMUP=1  hyperfine warm-up runs
#   SL_RUNS=1         hyperfine runs for secretlint  SECRETLINT_MB=25  subset size (0 = all)
#   SEED=42           subset sampling seed           CORPUS_MB=400  cap on the corpus size
#   ENGINE_SECS=2     minimum seconds of text scans (median run reported)
#   ITERS="2000 2000 200"  inspections of the 1 KB, 100 KB, 1 MB JSON bodies
#   NPM_PKGS="typescript@… lodash@… …"  packages for the node_modules part
#   CDEGUARD=build/cdeguard   KEEP_TMP=1 keep the temp dir (corpus, outputs)
set -euo pipefail

RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
SL_RUNS=${SL_RUNS:-1}
SECRETLINT_MB=${SECRETLINT_MB:-25}
SEED=${SEED:-42}
CORPUS_MB=${CORPUS_MB:-400}
ENGINE_SECS=${ENGINE_SECS:-2}
ITERS=${ITERS:-2000 2000 200}
NPM_PKGS=${NPM_PKGS:-typescript@5.6.3 lodash@4.17.21 express@4.21.1 react@18.3.1 react-dom@18.3.1 webpack@5.96.1 eslint@9.14.0 @babel/core@7.26.0}
KEEP_TMP=${KEEP_TMP:-0}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
CDEGUARD=${CDEGUARD:-$ROOT/build/cdeguard}
CMDLINE="RUNS=$RUNS WARMUP=$WARMUP SL_RUNS=$SL_RUNS SECRETLINT_MB=$SECRETLINT_MB SEED=$SEED CORPUS_MB=$CORPUS_MB ENGINE_SECS=$ENGINE_SECS ITERS=\"$ITERS\" bench/scan.sh"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in hyperfine node npm npx cc awk shuf; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install hyperfine nodejs npm gcc coreutils)"
done
[[ -d /usr/include ]] || die "/usr/include missing"
if [[ ! -x $CDEGUARD || ! -f $ROOT/build/libcdeguard.a ]]; then
    log "build/cdeguard or build/libcdeguard.a missing: running make"
    make -C "$ROOT" -j"$(nproc)" >&2 || die "make failed"
fi

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
T=$(mktemp -d "${TMPDIR:-/tmp}/cdeguard-scanbench.XXXXXX")

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ $KEEP_TMP == 1 || $rc -ne 0 ]]; then
        log "temp dir kept: $T"
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------- secretlint ---
SECRETLINT=$HERE/node_modules/.bin/secretlint
if [[ ! -x $SECRETLINT ]]; then
    log "installing secretlint (npm ci --prefix bench)"
    npm ci --prefix "$HERE" --no-audit --no-fund >&2 || die "npm ci --prefix bench failed"
fi
cat >"$T/secretlintrc.json" <<'EOF'
{ "rules": [{ "id": "@secretlint/secretlint-rule-preset-recommend" }] }
EOF

# ----------------------------------------------------------------- corpus ---
C=$T/corpus
mkdir -p "$C" "$T/npm"
log "corpus: copying /usr/include"
cp -a /usr/include "$C/include"
log "corpus: npm install --ignore-scripts $NPM_PKGS"
# shellcheck disable=SC2086 # the package list
npm install --prefix "$T/npm" --no-save --no-package-lock --no-audit --no-fund --ignore-scripts \
    $NPM_PKGS >"$T/npm-install.log" 2>&1 || { cat "$T/npm-install.log" >&2; die "npm install of the corpus packages failed"; }
mv "$T/npm/node_modules" "$C/node_modules_"
# secretlint skips **/node_modules/** whatever it is told; cdeguard scans them.
while IFS= read -r -d '' d; do mv "$d" "${d%/node_modules}/node_modules_"; done \
    < <(find "$C" -depth -type d -name node_modules -print0)
find "$C" -type l -delete            # the same regular files for every tool
find "$C" -type f -size 0 -delete
file_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }'; }
CORPUS_BYTES=$(file_bytes "$C")
if ((CORPUS_BYTES > CORPUS_MB * 1000000)); then
    # drop files at random (seeded) until under the cap
    log "corpus is $((CORPUS_BYTES / 1000000)) MB > CORPUS_MB=$CORPUS_MB: trimming"
    find "$C" -type f -printf '%s %p\n' | shuf --random-source=<(yes "$SEED") |
        awk -v cap=$((CORPUS_MB * 1000000)) '{ s += $1; if (s > cap) { sub(/^[0-9]+ /, ""); print } }' |
        tr '\n' '\0' | xargs -0 -r rm -f
    CORPUS_BYTES=$(file_bytes "$C")
fi
# Canary: one file with fresh fake credentials (random bodies in real formats),
# in the corpus and in the secretlint subset; each tool should report it.
CANARY=cdeguard-bench-canary/deploy.env
mkdir -p "$C/${CANARY%/*}"
rnd() { LC_ALL=C tr -dc "$1" </dev/urandom | head -c "$2" || true; }
{
    echo "# fake credentials planted by bench/scan.sh"
    echo "GITHUB_TOKEN=ghp_$(rnd 'A-Za-z0-9' 36)"
    echo "AWS_ACCESS_KEY_ID=AKIA$(rnd 'A-Z2-7' 16)"
    echo "AWS_SECRET_ACCESS_KEY=$(rnd 'A-Za-z0-9/+' 40)"
} >"$C/$CANARY"
CORPUS_BYTES=$(file_bytes "$C")
CORPUS_FILES=$(find "$C" -type f | wc -l)
CORPUS_MB_REAL=$(awk -v b="$CORPUS_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')
log "corpus: $CORPUS_FILES files, $CORPUS_MB_REAL MB ($C)"

# Secretlint subset: whole files drawn at random (seeded) up to SECRETLINT_MB.
S=$T/subset
mkdir -p "$S"
if ((SECRETLINT_MB == 0)); then
    S=$C
    SUBSET_NOTE="the whole corpus"
else
    (cd "$C" && find . -type f -printf '%s %P\n' | sort -k2 | shuf --random-source=<(yes "$SEED") |
        awk -v cap=$((SECRETLINT_MB * 1000000)) 's < cap { s += $1; sub(/^[0-9]+ /, ""); print }' |
        tr '\n' '\0' | xargs -0 cp --parents -t "$S")
    [[ -f $S/$CANARY ]] || (cd "$C" && cp --parents "$CANARY" "$S")
    SUBSET_NOTE="a random subset (shuf seed $SEED, whole files, up to $SECRETLINT_MB MB) of the corpus"
fi
SUBSET_BYTES=$(file_bytes "$S")
SUBSET_FILES=$(find "$S" -type f | wc -l)
SUBSET_MB=$(awk -v b="$SUBSET_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')
log "secretlint input: $SUBSET_FILES files, $SUBSET_MB MB ($SUBSET_NOTE)"

# ---------------------------------------------------------------- timings ---
# hyperfine_mean name runs warmup cmd → mean seconds (JSON export in $T/hf-name.json)
hyperfine_mean() {
    local name=$1 runs=$2 warmup=$3 cmd=$4
    hyperfine --style basic --runs "$runs" --warmup "$warmup" -i --export-json "$T/hf-$name.json" \
        -n "$name" "$cmd" >"$T/hf-$name.log" 2>&1 || { cat "$T/hf-$name.log" >&2; die "hyperfine $name failed"; }
    node -e 'const r = require(process.argv[1]).results[0];
             if (r.exit_codes.some(c => c !== 0 && c !== 1)) { console.error("exit codes", r.exit_codes); process.exit(1); }
             console.log(r.mean.toFixed(3), r.stddev === null ? 0 : r.stddev.toFixed(3), r.min.toFixed(3), r.max.toFixed(3));' \
        "$T/hf-$name.json" || die "$name: a run failed (exit status 2 = error); see $T/hf-$name.log"
}
declare -A SECS=() SPREAD=() BYTES=() FIND=()

CDG_CMD="$CDEGUARD scan --no-git-ignore -q --format json -o /dev/null $C"
log "cdeguard on the corpus: $RUNS runs (+$WARMUP warm-up)"
out=$(hyperfine_mean cdeguard "$RUNS" "$WARMUP" "$CDG_CMD")
read -r "SECS[cdg]" sd mn mx <<<"$out"
SPREAD[cdg]="±$sd s (min $mn, max $mx)"
BYTES[cdg]=$CORPUS_BYTES
# findings: one more run writing the report
"$CDEGUARD" scan --no-git-ignore -q --format json -o "$T/cdeguard.json" "$C" || [[ $? == 1 ]] || die "cdeguard scan failed"
out=$(node -e 'const r = require(process.argv[1]);
    console.log(r.findings.length, r.bytes_scanned, r.files_scanned)' "$T/cdeguard.json")
read -r "FIND[cdg]" CDG_SCANNED CDG_FILES <<<"$out"
canary_cdg() { node -e 'const r = require(process.argv[1]);
    console.log(r.findings.filter(f => f.file.endsWith(process.argv[2])).map(f => f.rule_id).join(",") || "none")' "$1" "$CANARY"; }
declare -A CANARY_HIT=()
CANARY_HIT[cdg]=$(canary_cdg "$T/cdeguard.json")
log "cdeguard: ${FIND[cdg]} findings; canary: ${CANARY_HIT[cdg]}"
log "cdeguard start-up (scan of an empty directory): 5 runs"
mkdir -p "$T/empty"
out=$(hyperfine_mean cdeguard-empty 5 1 "$CDEGUARD scan --no-git-ignore -q --format json -o /dev/null $T/empty")
read -r STARTUP _ <<<"$out"

if [[ $S != "$C" ]]; then
    log "cdeguard on the secretlint subset: $RUNS runs (+$WARMUP warm-up)"
    out=$(hyperfine_mean cdeguard-subset "$RUNS" "$WARMUP" \
        "$CDEGUARD scan --no-git-ignore -q --format json -o /dev/null $S")
    read -r "SECS[cdgsub]" sd mn mx <<<"$out"
    SPREAD[cdgsub]="±$sd s (min $mn, max $mx)"
    BYTES[cdgsub]=$SUBSET_BYTES
    "$CDEGUARD" scan --no-git-ignore -q --format json -o "$T/cdeguard-subset.json" "$S" || [[ $? == 1 ]] || die "cdeguard scan failed"
    FIND[cdgsub]=$(node -e 'console.log(require(process.argv[1]).findings.length)' "$T/cdeguard-subset.json")
    CANARY_HIT[cdgsub]=$(canary_cdg "$T/cdeguard-subset.json")
fi

# secretlint exits 0 with --output even when it finds something.
SL_CMD="cd $T && npx --prefix $HERE secretlint --secretlintrc $T/secretlintrc.json --format json --output $T/secretlint.json '$S/**/*'"
log "secretlint on $SUBSET_MB MB: $SL_RUNS run(s) (no warm-up; expect 1-2 s per MB)"
out=$(hyperfine_mean secretlint "$SL_RUNS" 0 "$SL_CMD")
read -r "SECS[sl]" sd mn mx <<<"$out"
SPREAD[sl]="±$sd s (min $mn, max $mx)"
BYTES[sl]=$SUBSET_BYTES
out=$(node -e 'const r = require(process.argv[1]);
    console.log(r.reduce((n, f) => n + f.messages.length, 0), r.length)' "$T/secretlint.json")
read -r "FIND[sl]" SL_FILES <<<"$out"
CANARY_HIT[sl]=$(node -e 'const r = require(process.argv[1]);
    console.log(r.filter(f => f.filePath.endsWith(process.argv[2])).flatMap(f => f.messages.map(m => m.ruleId)).join(",") || "none")' \
    "$T/secretlint.json" "$CANARY")
log "secretlint: ${FIND[sl]} findings; canary: ${CANARY_HIT[sl]}"

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }
declare -A MBPS=()
for k in cdg cdgsub sl; do
    if [[ -n ${SECS[$k]:-} ]]; then MBPS[$k]=$(mbps "${BYTES[$k]}" "${SECS[$k]}"); fi
done
VS() { awk -v a="$1" -v b="${MBPS[sl]}" 'BEGIN { printf "%.0f×", a / b }'; }

# ----------------------------------------------------------------- engine ---
log "building bench/scan_engine.c"
# shellcheck disable=SC2086
cc -O2 -I"$ROOT/src" -o "$T/scan_engine" "$HERE/scan_engine.c" "$ROOT/build/libcdeguard.a" \
    -lhs -lpcre2-8 -lyaml -lssl -lcrypto -luv -lpthread -lm || die "scan_engine build failed"
# Source text: every C/C++ header of the corpus, concatenated (sorted paths).
(cd "$C" && find include -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.hh' \) -print0 | sort -z |
    xargs -0 cat) >"$T/headers.txt"
HDR_MB=$(awk -v b="$(stat -c %s "$T/headers.txt")" 'BEGIN { printf "%.1f", b / 1e6 }')
log "engine: inspect_scan_text over $HDR_MB MB of headers, >= ${ENGINE_SECS}s"
ENG_TEXT=$("$T/scan_engine" text "$T/headers.txt" "$ENGINE_SECS") || die "scan_engine text failed"
log "$ENG_TEXT"
log "engine: inspect_scan_json_flags, iterations $ITERS"
# shellcheck disable=SC2086
ENG_JSON=$("$T/scan_engine" json $ITERS) || die "scan_engine json failed"
printf '%s\n' "$ENG_JSON" >&2
kv() { # line key → value
    tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'
}
jline() { grep "label=$1 " <<<"$ENG_JSON"; }
TEXT_MBPS=$(kv "$ENG_TEXT" median_mbps)
met() { awk -v x="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=" ? x >= t : x <= t); print ok ? "✅ met" : "❌ not met" }'; }
us2ms() { awk -v x="$1" 'BEGIN { printf "%.3f ms", x / 1000 }'; }

# ----------------------------------------------------------------- report ---
ver() { "$@" 2>&1 | head -n 1 || true; }
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
SL_VER=$(node -e 'console.log(require(process.argv[1]).version)' "$HERE/node_modules/secretlint/package.json")
PRESET_VER=$(node -e 'console.log(require(process.argv[1]).version)' "$HERE/node_modules/@secretlint/secretlint-rule-preset-recommend/package.json")
STAMP=$(date -u +%Y%m%d-%H%M%S)
REPORT=$T/report.md
EXTRAP=""
[[ $S != "$C" ]] && EXTRAP=" (subset, extrapolated)"
{
    echo "## Scan benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "| tool | corpus MB | time | MB/s | vs secretlint | findings |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| cdeguard scan (whole corpus, $CORPUS_FILES files) | $CORPUS_MB_REAL | ${SECS[cdg]} s | ${MBPS[cdg]} | $(VS "${MBPS[cdg]}") | ${FIND[cdg]} |"
    [[ -n ${SECS[cdgsub]:-} ]] &&
        echo "| cdeguard scan (secretlint subset, $SUBSET_FILES files) | $SUBSET_MB | ${SECS[cdgsub]} s | ${MBPS[cdgsub]} | $(VS "${MBPS[cdgsub]}") | ${FIND[cdgsub]} |"
    echo "| secretlint $SL_VER + preset-recommend $PRESET_VER$EXTRAP | $SUBSET_MB | ${SECS[sl]} s | ${MBPS[sl]} | 1× | ${FIND[sl]} |"
    echo
    echo "| engine (in process, 1 thread) | measured | target | |"
    echo "|---|---:|---:|---|"
    echo "| inspect_scan_text, source text ($HDR_MB MB of headers), MB/s per core | $TEXT_MBPS | ≥ 1000 | $(met "$TEXT_MBPS" '>=' 1000) |"
    for l in 1KB 100KB 1MB; do
        line=$(jline $l)
        p50=$(kv "$line" p50_us)
        p99=$(kv "$line" p99_us)
        if [[ $l == 100KB ]]; then
            target="p99 ≤ 1 ms"
            verdict=$(met "$p99" '<=' 1000)
        else
            target="—"
            verdict=""
        fi
        echo "| inspect_scan_json_flags $l body ($(kv "$line" bytes) B, $(kv "$line" iters) runs) p50 / p99 | $(us2ms "$p50") / $(us2ms "$p99") | $target | $verdict |"
    done
    echo "| end to end vs secretlint, same files ($SUBSET_MB MB) | $(VS "${MBPS[cdgsub]:-${MBPS[cdg]}}") | ≥ 100× | $(met "$(VS "${MBPS[cdgsub]:-${MBPS[cdg]}}" | tr -d '×')" '>=' 100) |"
    [[ -n ${SECS[cdgsub]:-} ]] &&
        echo "| end to end, cdeguard whole corpus vs secretlint's subset MB/s | $(VS "${MBPS[cdg]}") | ≥ 100× | $(met "$(VS "${MBPS[cdg]}" | tr -d '×')" '>=' 100) |"
    echo
    echo "Machine: $(nproc) cores, $CPU, $(uname -sr); load average at start $LOAD_AT_START, at end $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Versions: $(ver "$CDEGUARD" --version) ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo no git)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ", dirty"), build/libcdeguard.a of $(date -u -r "$ROOT/build/libcdeguard.a" '+%Y-%m-%d %H:%M:%S UTC')); secretlint $SL_VER, @secretlint/secretlint-rule-preset-recommend $PRESET_VER; node $(node --version); $(ver hyperfine --version); $(ver cc --version)."
    echo "Command: \`$CMDLINE\`"
    echo
    echo "- Corpus: a copy of /usr/include plus node_modules of \`npm install --ignore-scripts $NPM_PKGS\`; symlinks and empty files dropped, directories named node_modules renamed node_modules_ (secretlint always ignores **/node_modules/**). $CORPUS_FILES files, $CORPUS_BYTES bytes (MB = 10^6 bytes; MB/s = corpus bytes / mean wall time). cdeguard reported $CDG_FILES files / $CDG_SCANNED bytes scanned (it skips binary files)."
    echo "- cdeguard: \`hyperfine --runs $RUNS --warmup $WARMUP '$CDEGUARD scan --no-git-ignore -q --format json -o /dev/null CORPUS'\`, mean ${SPREAD[cdg]}; one thread (cdeguard scan does not parallelise)."
    echo "- secretlint: \`npx --prefix bench secretlint --secretlintrc RC --format json --output OUT 'DIR/**/*'\` with RC = \`{\"rules\":[{\"id\":\"@secretlint/secretlint-rule-preset-recommend\"}]}\`, $SL_RUNS run(s), ${SPREAD[sl]}, includes node start-up; it reported on $SL_FILES files."
    if [[ $S != "$C" ]]; then
        echo "- ⚠ secretlint ran on $SUBSET_NOTE: $SUBSET_FILES files, $SUBSET_MB MB, not the whole corpus (at the ${MBPS[sl]} MB/s measured here the whole corpus would take about $(awk -v b="$CORPUS_BYTES" -v r="${MBPS[sl]}" 'BEGIN { printf "%.0f", b / 1e6 / r / 60 }') min; SECRETLINT_MB=0 runs it all). Its MB/s is extrapolated from the subset; the \"vs secretlint\" column divides each MB/s by that figure. The cdeguard subset row is the like-for-like comparison (same files, same command shape)."
    fi
    echo "- cdeguard start-up (rule compilation; \`scan\` of an empty directory, mean of 5): $STARTUP s. It is paid once per run, so it weighs more on the small subset than on the whole corpus."
    echo "- Canary \`$CANARY\` (fake GitHub token, AWS key id and secret key, random each run) — reported by cdeguard: ${CANARY_HIT[cdg]}; by secretlint: ${CANARY_HIT[sl]}."
    echo "- Findings are a sanity check, not a quality comparison: the rule sets differ (cdeguard also reports PII such as e-mail addresses and IP addresses; secretlint's preset reports secrets only)."
    echo "- Engine: \`bench/scan_engine.c\` linked with build/libcdeguard.a, built-in rules. Text: one untimed scan, then whole-file inspect_scan_text scans on one thread until ≥ ${ENGINE_SECS}s and ≥ 3 runs; median of runs: \`$ENG_TEXT\`."
    echo "- JSON: generated OpenAI chat-completion request bodies (system prompt, user/assistant turns with C and Python code blocks and prose, planted fake AWS key id / GitHub token / e-mail + phone), timed per inspect_scan_json_flags call (INSPECT_SCAN_TEXT_PATHS) with CLOCK_MONOTONIC after 10 % untimed warm-up:"
    while IFS= read -r line; do echo "  - \`$line\`"; done <<<"$ENG_JSON"
    echo "- All on one machine with other load possible; cdeguard, secretlint and the engine ran one after another, not concurrently."
} >"$REPORT"

mkdir -p "$HERE/results"
cp "$REPORT" "$HERE/results/scan-$STAMP.md"
cat "$REPORT"
log "written to bench/results/scan-$STAMP.md"
