#!/usr/bin/env bash
# bench/llm.sh — LLM gateway benchmark: direct vs a plain nginx reverse proxy vs
# cdeguard (limits off, limits on the embedded SQLite store, limits on a Redis
# store) vs Portkey's gateway.
#
# One run, no arguments, loopback only:
#   * nginx on 127.0.0.1 is a fake OpenAI: POST /v1/chat/completions answers a
#     fixed chat.completion JSON (with a usage object) over HTTPS, with a
#     certificate from a throw-away CA made for the run (and over plain HTTP,
#     used only if Portkey cannot verify the HTTPS one). It answers 401 unless
#     the request carries the provider key, so a gateway that does not inject
#     (cdeguard) or pass on (Portkey) the key cannot look fast;
#   * cdeguard serve with only the gateway listener: one workspace (token),
#     provider openai -> https://127.0.0.1:<nginx>, upstream ca_file = the CA,
#     inspection on (the default content settings), audit records to a file;
#   * the same cdeguard with rate limits and budgets on (cdeguard_sqlite: the
#     embedded SQLite store; cdeguard_redis: a redis-server this script starts
#     on loopback): workspace, project and team rules that never refuse, so
#     every call reserves and settles on four counters and the price table;
#     afterwards `cdeguard usage` must count every allowed call;
#   * Portkey's gateway (npm @portkey-ai/gateway, pinned in bench/package.json)
#     with custom-host routing (x-portkey-provider: openai,
#     x-portkey-custom-host: https://127.0.0.1:<nginx>/v1), trusting the CA
#     through NODE_EXTRA_CA_CERTS;
#   * a plain nginx reverse proxy (a second nginx, 1 worker): HTTP on loopback
#     in, proxy_pass to https://127.0.0.1:<nginx> out (verified against the CA,
#     upstream keep-alive, the provider key injected) — no authentication, no
#     inspection, no audit: the cost of the two extra hops and the TLS
#     re-encryption alone, next to which cdeguard's added latency is read;
#   * wrk POSTs a ~1 KB chat request to each at 1 connection (-t1 -c1) and at
#     CONNS connections (-tTHREADS); requests/s, p50, p99; gateway-added p50 =
#     p50 through the gateway - p50 direct at 1 connection; RSS of the gateway
#     process (idle, after the load, peak = VmHWM).
# Prints Markdown tables (results, targets) and writes them to
# bench/results/llm-<date>.md. Exits 1 when a gateway could not be measured
# (the report still shows the others and says why).
#
# Environment (all optional):
#   DURATION=10s  wrk run length per target and concurrency
#   WARMUP=2s     discarded wrk run before each measured one
#   CONNS=50      connections of the loaded run     THREADS=2  its wrk threads
#   TIMEOUT=10s   wrk --timeout (slower answers count as timeouts, not latency)
#   ROUNDS=1      rounds (targets interleaved; per-metric median reported)
#   WORKERS=2     cdeguard event-loop threads       POOL=64    gateway.upstream.pool_size (and nginx keepalive)
#   GATEWAYS="nginx cdeguard cdeguard_sqlite cdeguard_redis portkey"   CDEGUARD=build/cdeguard
#   PORTKEY_UPSTREAM=https   https (NODE_EXTRA_CA_CERTS) | http (nginx's plain listener)
#   KEEP_TMP=1    keep the temp dir (configs, logs, wrk outputs) for inspection
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
TIMEOUT=${TIMEOUT:-10s}
ROUNDS=${ROUNDS:-1}
WORKERS=${WORKERS:-2}
POOL=${POOL:-64}
GATEWAYS=${GATEWAYS:-nginx cdeguard cdeguard_sqlite cdeguard_redis portkey}
PORTKEY_UPSTREAM=${PORTKEY_UPSTREAM:-https}
KEEP_TMP=${KEEP_TMP:-0}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
CDEGUARD=${CDEGUARD:-$ROOT/build/cdeguard}
IP=127.0.0.1
CMDLINE="DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS THREADS=$THREADS TIMEOUT=$TIMEOUT ROUNDS=$ROUNDS WORKERS=$WORKERS POOL=$POOL GATEWAYS=\"$GATEWAYS\" PORTKEY_UPSTREAM=$PORTKEY_UPSTREAM bench/llm.sh"

# Never let an inherited proxy setting leak into curl or node.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in nginx wrk curl openssl ss awk; do
    command -v "$tool" >/dev/null ||
        die "$tool not found — run 'make bench' (scripts/install-deps --bench installs nginx-light wrk curl openssl)"
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $CONNS =~ ^[1-9][0-9]*$ && $THREADS =~ ^[1-9][0-9]*$ ]] || die "CONNS and THREADS must be positive integers"
((THREADS <= CONNS)) || die "THREADS ($THREADS) must not exceed CONNS ($CONNS)"
case $PORTKEY_UPSTREAM in https | http) ;; *) die "PORTKEY_UPSTREAM must be https or http" ;; esac
for g in $GATEWAYS; do
    case $g in
        cdeguard | cdeguard_sqlite | cdeguard_redis) [[ -x $CDEGUARD ]] || die "$CDEGUARD missing — run 'make' (or 'make bench'), or GATEWAYS=portkey" ;;
        portkey | nginx) ;;
        *) die "unknown gateway '$g' in GATEWAYS (nginx, cdeguard, cdeguard_sqlite, cdeguard_redis, portkey)" ;;
    esac
done

if [[ " $GATEWAYS " == *" cdeguard_redis "* ]]; then
    command -v redis-server >/dev/null ||
        die "redis-server not found — run 'make bench' (scripts/install-deps --bench installs it), or leave cdeguard_redis out of GATEWAYS"
fi

# Portkey: the version pinned in bench/package.json, installed under bench/node_modules.
PK_DIR=$HERE/node_modules/@portkey-ai/gateway
PK_JS=""
PK_VER=""
if [[ " $GATEWAYS " == *" portkey "* ]]; then
    for tool in node npm; do
        command -v "$tool" >/dev/null || die "$tool not found (Portkey's gateway needs Node.js ≥ 18 with npm), or GATEWAYS=cdeguard"
    done
    pk_pinned() { node -e 'console.log(require(process.argv[1]).dependencies["@portkey-ai/gateway"] || "")' "$HERE/package.json"; }
    pk_installed() { node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("") }' "$PK_DIR/package.json"; }
    PK_PIN=$(pk_pinned)
    [[ -n $PK_PIN ]] || die "bench/package.json does not pin @portkey-ai/gateway"
    if [[ $(pk_installed) != "$PK_PIN" ]]; then
        log "installing the pinned bench tools (npm ci --prefix bench): @portkey-ai/gateway $PK_PIN"
        npm ci --prefix "$HERE" --no-audit --no-fund --ignore-scripts >&2 ||
            die "npm ci --prefix bench failed (needs the npm registry); or GATEWAYS=cdeguard"
    fi
    PK_VER=$(pk_installed)
    [[ $PK_VER == "$PK_PIN" ]] || die "bench/node_modules has @portkey-ai/gateway '$PK_VER', bench/package.json pins '$PK_PIN'"
    # The package's "bin" — what `npx @portkey-ai/gateway` runs. Started with
    # node directly, so that the measured pid is the gateway itself (npx would
    # be a parent process in between).
    PK_JS=$PK_DIR/$(node -e 'const b = require(process.argv[1]).bin; console.log(typeof b === "string" ? b : Object.values(b)[0])' "$PK_DIR/package.json")
    [[ -f $PK_JS ]] || die "Portkey's start script $PK_JS is missing; run 'npm ci --prefix bench'"
fi

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
T=$(mktemp -d "${TMPDIR:-/tmp}/cdeguard-llmbench.XXXXXX")
chmod 755 "$T" # nginx workers drop privileges when started as root

# ---------------------------------------------------------------- cleanup ---
declare -a PIDS=() # every long-running process this script started

descendants() {
    local c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$c"
        descendants "$c"
    done
}

stop_pid() { # pid: TERM it and its descendants, wait up to 5 s, then KILL
    local pid=$1 kids i
    kill -0 "$pid" 2>/dev/null || return 0
    kids=$(descendants "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    # shellcheck disable=SC2086 # $kids is a list of pids
    kill -KILL "$pid" $kids 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
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

start_bg() { # name cmd... — start in background, stdout+stderr to $T/name/console.log
    local name=$1
    shift
    mkdir -p "$T/$name"
    "$@" >"$T/$name/console.log" 2>&1 &
    PIDS+=($!)
    log "started $name (pid $!): $*"
}

drop_last_pid() { # stop the most recently started process and forget it
    stop_pid "${PIDS[-1]}"
    unset 'PIDS[-1]'
}

# ------------------------------------------------------------------ ports ---
declare -A USED_PORTS=()
# Ports below the kernel's ephemeral range: no client socket can take one
# between the check and the server's bind.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range
PORT_LOW=10000
PORT_HIGH=$((EPHEMERAL_LOW > 12000 ? EPHEMERAL_LOW - 1 : 65000))
free_port() { # VAR — set VAR to a TCP port no socket uses (and not handed out before)
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((PORT_LOW + (RANDOM * 32768 + RANDOM) % (PORT_HIGH - PORT_LOW)))
        [[ -n ${USED_PORTS[$p]:-} ]] && continue
        if [[ -z $(ss -Htan "sport = :$p" 2>/dev/null) ]]; then
            USED_PORTS[$p]=1
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    die "no free port found"
}

wait_port() { # ip port seconds pid — until something accepts on ip:port (fails if pid exits)
    local ip=$1 port=$2 secs=$3 pid=$4 i
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/$ip/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# --------------------------------------------------- run-specific values ---
RUN_ID=$(openssl rand -hex 8)
PROVIDER_KEY="sk-bench-$(openssl rand -hex 20)" # what nginx (the "provider") accepts
WS_TOKEN="cdgbench$(openssl rand -hex 20)"      # the workspace token cdeguard accepts
MARKER="chatcmpl-bench$RUN_ID"                  # only nginx knows it: proof of forwarding

# The fixed provider answer: an OpenAI chat.completion with a usage object.
RESPONSE_BODY='{"id":"'$MARKER'","object":"chat.completion","created":1764864000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"The stall comes from the blocking name lookup: while it waits, the event loop cannot accept or serve anything. Resolve asynchronously (or cache the address), put a timer on connect and on the first response byte, and keep idle upstream connections in a small pool so most requests skip the connect entirely.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":213,"completion_tokens":64,"total_tokens":277,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":"fp_bench"}'
# The request: a ~1 KB chat request with nothing for the inspection to find.
cat >"$T/request.json" <<'EOF'
{"model":"gpt-4o-mini","temperature":0.2,"max_tokens":256,"messages":[{"role":"system","content":"You are a careful senior software engineer. Answer briefly, prefer standard library functions, and explain trade-offs in one or two sentences. Do not invent APIs that do not exist, and say so when you are unsure."},{"role":"user","content":"I maintain a small command line tool written in C that reads a configuration file, opens a listening socket and forwards requests to an upstream service. Requests sometimes stall when the upstream is slow, and the event loop seems to stop accepting new clients while that happens. The loop uses non-blocking sockets, but name resolution is done with a blocking call before each connect. What is the most likely cause of the stall, and what is the simplest change that keeps the loop responsive? Please also mention how to bound the time spent waiting for the upstream, and whether a pool of idle connections would help here."}],"user":"bench-agent"}
EOF
REQUEST_BYTES=$(wc -c <"$T/request.json")
# A request with a (fake, random) GitHub token: cdeguard must refuse it (403),
# which shows that inspection is on.
SECRET_TOKEN="ghp_$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 36 || true)"
printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"deploy with GITHUB_TOKEN=%s please"}]}\n' \
    "$SECRET_TOKEN" >"$T/secret.json"

free_port TLS_PORT
free_port HTTP_PORT

# ------------------------------------------------------------ certificates ---
log "temp dir $T; fake provider https=$IP:$TLS_PORT http=$IP:$HTTP_PORT"
mkdir -p "$T/pki"
(
    cd "$T/pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.crt -days 2 -subj "/CN=cdeguard llm bench CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj "/CN=$IP"
    printf '%s\n' "subjectAltName=IP:$IP" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
        -out server.crt -days 2 -extfile server.ext
) >"$T/pki/openssl.log" 2>&1 || { cat "$T/pki/openssl.log" >&2; die "openssl failed"; }
CA=$T/pki/ca.crt
chmod 644 "$T/pki/ca.crt"

# ---------------------------------------------------- fake provider (nginx) ---
N=$T/provider
mkdir -p "$N/logs" "$N/tmp"
cat >"$N/nginx.conf" <<EOF
# generated by bench/llm.sh — a fake OpenAI chat-completions endpoint
worker_processes 1;
pid $N/nginx.pid;
error_log $N/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    client_body_temp_path $N/tmp/body;
    proxy_temp_path $N/tmp/proxy;
    fastcgi_temp_path $N/tmp/fastcgi;
    uwsgi_temp_path $N/tmp/uwsgi;
    scgi_temp_path $N/tmp/scgi;
    client_body_buffer_size 64k;
    server {
        listen $IP:$TLS_PORT ssl;
        listen $IP:$HTTP_PORT;
        ssl_certificate $T/pki/server.crt;
        ssl_certificate_key $T/pki/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /v1/chat/completions {
            default_type application/json;
            if (\$request_method != POST) { return 405 '{"error":{"message":"method","type":"invalid_request_error"}}'; }
            if (\$http_authorization != "Bearer $PROVIDER_KEY") {
                return 401 '{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}';
            }
            return 200 '$RESPONSE_BODY';
        }
        location = /nginx-status { stub_status; }  # connections/requests counters, read between runs
        location / { default_type application/json; return 404 '{"error":{"message":"not found"}}'; }
    }
}
EOF
nginx -t -q -e "$N/logs/error.log" -c "$N/nginx.conf" -p "$N/" >"$N/test.log" 2>&1 ||
    { cat "$N/test.log" "$N/logs/error.log" >&2 2>/dev/null; die "nginx -t rejected the generated config ($N/nginx.conf)"; }
start_bg provider nginx -e "$N/logs/error.log" -c "$N/nginx.conf" -p "$N/" -g 'daemon off;'
NGINX_PID=${PIDS[-1]}
if ! wait_port $IP "$TLS_PORT" 10 "$NGINX_PID" || ! wait_port $IP "$HTTP_PORT" 10 "$NGINX_PID"; then
    cat "$N/console.log" "$N/logs/error.log" >&2 2>/dev/null || true
    die "nginx did not start (ports $TLS_PORT/$HTTP_PORT)"
fi

# post URL auth-token body-file [curl args...] → "STATUS<TAB>BODY" (one line, ≤ 2 KB)
post() {
    local url=$1 tok=$2 body=$3 out
    shift 3
    rm -f "$T/probe.body" "$T/probe.err"
    out=$(curl -sS --max-time 15 --cacert "$CA" -o "$T/probe.body" -w '%{http_code}' \
        -H 'Content-Type: application/json' -H "Authorization: Bearer $tok" \
        --data-binary "@$body" "$@" "$url" 2>"$T/probe.err") || out="curl-failed"
    printf '%s\t%s' "$out" "$(head -c 2048 "$T/probe.body" 2>/dev/null | tr '\n' ' '; cat "$T/probe.err")"
}
status_of() { printf '%s' "${1%%$'\t'*}"; }
body_of() { printf '%s' "${1#*$'\t'}"; }

DIRECT_URL="https://$IP:$TLS_PORT/v1/chat/completions"
r=$(post "$DIRECT_URL" "$PROVIDER_KEY" "$T/request.json")
[[ $(status_of "$r") == 200 && $(body_of "$r") == "$RESPONSE_BODY" ]] ||
    die "fake provider check failed: POST $DIRECT_URL gave '$r'"
r=$(post "http://$IP:$HTTP_PORT/v1/chat/completions" "$PROVIDER_KEY" "$T/request.json")
[[ $(status_of "$r") == 200 ]] || die "fake provider check (plain HTTP) failed: '$r'"
r=$(post "$DIRECT_URL" "wrong-key" "$T/request.json")
[[ $(status_of "$r") == 401 ]] || die "fake provider accepted a wrong key: '$r'"
log "fake provider ok: 200 with the fixed body for the provider key, 401 otherwise"

# ----------------------------------------------------- gateway bookkeeping ---
declare -A GW_PORT=() GW_PID=() GW_FAIL=() GW_UP=() GW_CHECK=() GW_ARGS=() GW_PATH=()
GW_OK=() # gateways that passed their checks, in GATEWAYS order
gw_fail() { # name reason — the gateway is not (or no longer) measured
    GW_FAIL[$1]=$2
    log "$1: NOT BENCHMARKED — $2"
    if [[ -n ${GW_PID[$1]:-} ]]; then stop_pid "${GW_PID[$1]}"; fi
}
console_tail() { tail -n "${2:-8}" "$T/$1/console.log" 2>/dev/null | tr '\n' ' ' | cut -c1-600; }

# --------------------------------------------------------------- cdeguard ---
# The Redis store's server for cdeguard_redis: started once, on loopback, no
# persistence (the benchmark measures the round trip, not the disk).
REDIS_PORT=""
start_redis() {
    local d=$T/redis attempt out
    mkdir -p "$d"
    for attempt in 1 2 3; do
        free_port REDIS_PORT
        start_bg redis redis-server --bind $IP --port "$REDIS_PORT" --save "" --appendonly no \
            --dir "$d" --protected-mode yes --loglevel warning
        wait_port $IP "$REDIS_PORT" 10 "${PIDS[-1]}" && return 0
        out=$(console_tail redis 12)
        drop_last_pid
        if ((attempt < 3)) && grep -qi 'in use' <<<"$out"; then continue; fi
        log "redis-server did not listen on $IP:$REDIS_PORT: $out"
        REDIS_PORT=""
        return 1
    done
}

# The limits of the cdeguard_sqlite and cdeguard_redis runs: a rule of every
# kind on the workspace, its project and its team, all far above what the run
# can reach, so nothing is refused and every call reserves and settles on
# every counter (5 on the workspace, 1 on the project, 2 on the team).
limits_yaml() { # store-type db-path
    echo "limits:"
    echo "  time_zone: UTC"
    echo "  store:"
    if [[ $1 == redis ]]; then
        echo "    type: redis"
        echo "    url: redis://$IP:$REDIS_PORT/0"
        echo "    key_prefix: bench$RUN_ID"
    else
        echo "    type: sqlite"
        echo "    path: $2"
    fi
    cat <<'EOF'
  prices:
    - {model: "gpt-4o-mini*", input: 0.15, output: 0.60, cache_read: 0.075}
  workspaces:
    ws-bench:
      requests_per_minute: 1000000000
      tokens_per_minute: 1000000000000
      tokens_per_day: 1000000000000
      requests_per_day: 1000000000000
      cost_per_day: 1000000
  projects:
    bench-project: {cost_per_month: 1000000}
  teams:
    bench-team: {tokens_per_month: 1000000000000, requests_per_minute: 1000000000}
EOF
}

# cdeguard_* → which limits store (off: no limits section)
store_of() { case $1 in cdeguard_sqlite) echo sqlite ;; cdeguard_redis) echo redis ;; *) echo off ;; esac; }
start_cdeguard_sqlite() { start_cdeguard cdeguard_sqlite; }
start_cdeguard_redis() { start_cdeguard cdeguard_redis; }

start_cdeguard() { # [name] — cdeguard (limits off), cdeguard_sqlite, cdeguard_redis
    local name=${1:-cdeguard} store d port hash attempt r out
    store=$(store_of "$name")
    d=$T/$name
    mkdir -p "$d"
    if [[ $store == redis && -z $REDIS_PORT ]] && ! start_redis; then
        gw_fail "$name" "redis-server did not start; console: $(console_tail redis)"
        return 0
    fi
    hash=$("$CDEGUARD" hash-token <<<"$WS_TOKEN" 2>&1 | tail -n 1) || true
    if [[ ! $hash =~ ^sha256:[0-9a-f]{64}$ ]]; then
        gw_fail "$name" "'cdeguard hash-token' did not print sha256:<hex> (got: ${hash:0:200})"
        return 0
    fi
    for attempt in 1 2 3; do
        free_port port
        cat >"$d/cdeguard.yaml" <<EOF
# generated by bench/llm.sh — the LLM gateway only
version: 1
listeners:
  egress: "off"
  admin: "off"
  gateway: $IP:$port
workers: $WORKERS
audit:
  sink: file
  path: $d/audit.log
workspaces:
  - id: ws-bench
    group: bench
    team: bench-team
    project: bench-project
    tokens: ["$hash"]
policies:                 # egress policy for the group (the egress listener is off)
  - name: bench
    groups: [bench]
    mode: enforce
gateway:
  upstream:
    ca_file: $CA
    pool_size: $POOL
  providers:
    - name: openai
      type: openai
      key: env:BENCH_OPENAI_KEY
      endpoints:
        - url: https://$IP:$TLS_PORT
  groups:
    - name: bench
      providers: [openai]
EOF
        [[ $store == off ]] || limits_yaml "$store" "$d/usage.db" >>"$d/cdeguard.yaml"
        if ! out=$(BENCH_OPENAI_KEY=$PROVIDER_KEY "$CDEGUARD" check-config "$d/cdeguard.yaml" 2>&1); then
            gw_fail "$name" "check-config rejected the generated config ($d/cdeguard.yaml): $(head -n 4 <<<"$out" | tr '\n' ' ' | cut -c1-500)"
            return 0
        fi
        BENCH_OPENAI_KEY=$PROVIDER_KEY start_bg "$name" "$CDEGUARD" serve --config "$d/cdeguard.yaml"
        GW_PID[$name]=${PIDS[-1]}
        wait_port $IP "$port" 15 "${GW_PID[$name]}" && break
        out=$(console_tail "$name" 12)
        drop_last_pid
        GW_PID[$name]=""
        if ((attempt < 3)) && grep -qi 'in use' <<<"$out"; then continue; fi
        gw_fail "$name" "did not listen on $IP:$port within 15 s; console: $out"
        return 0
    done
    GW_PORT[$name]=$port
    GW_UP[$name]="HTTPS, verified against the run's CA (gateway.upstream.ca_file)"
    GW_PATH[$name]=/openai/v1/chat/completions
    GW_ARGS[$name]=""
    local url="http://$IP:$port/openai/v1/chat/completions"
    # 1. allowed call: 200, nginx's body (so the key was replaced by the provider key)
    r=$(post "$url" "$WS_TOKEN" "$T/request.json")
    if [[ $(status_of "$r") != 200 || $(body_of "$r") != *"$MARKER"* ]]; then
        gw_fail "$name" "POST $url with the workspace token gave '$(cut -c1-400 <<<"$r")' (want 200 and the provider's body); console: $(console_tail "$name")"
        return 0
    fi
    local same="identical to the provider's"
    [[ $(body_of "$r") == "$RESPONSE_BODY" ]] || same="⚠ differs from the provider's (marker present)"
    # 2. unknown token: 401; 3. a secret in the prompt: 403 (inspection on)
    local c_tok c_sec
    c_tok=$(status_of "$(post "$url" "cdgbench-unknown-token" "$T/request.json")")
    c_sec=$(status_of "$(post "$url" "$WS_TOKEN" "$T/secret.json")")
    GW_CHECK[$name]="allowed call → 200, body $same; unknown token → $c_tok; prompt with a fake GitHub token → $c_sec"
    if [[ $c_tok != 401 || $c_sec != 403 ]]; then
        GW_CHECK[$name]+=" — ⚠ expected 401 and 403 (is inspection on?)"
        log "warning: $name refusals: unknown token $c_tok (want 401), secret $c_sec (want 403)"
    fi
    log "$name checks: ${GW_CHECK[$name]}"
    GW_OK+=("$name")
}

# ---------------------------------------------------------------- portkey ---
start_portkey() {
    local d=$T/portkey port attempt r out host
    mkdir -p "$d"
    # @hono/node-server listens on every interface when no hostname is given,
    # and Portkey's CLI has no option for one: this preload binds it to loopback.
    cat >"$d/loopback.cjs" <<'EOF'
// generated by bench/llm.sh: make server.listen(port[, undefined], cb) bind 127.0.0.1
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
    if (typeof args[0] === 'number' && (args.length === 1 || args[1] === undefined || typeof args[1] === 'function')) {
        if (args[1] === undefined) args[1] = '127.0.0.1'; else args.splice(1, 0, '127.0.0.1');
    }
    return listen.apply(this, args);
};
EOF
    for attempt in 1 2 3; do
        free_port port
        # NODE_EXTRA_CA_CERTS: node (and its fetch) trusts the run's CA.
        # TRUSTED_CUSTOM_HOSTS: Portkey refuses private/loopback custom hosts
        # except these (its default list also has 127.0.0.1; set explicitly).
        NODE_EXTRA_CA_CERTS=$CA TRUSTED_CUSTOM_HOSTS=$IP \
            start_bg portkey node --require "$d/loopback.cjs" "$PK_JS" --port="$port" --headless
        GW_PID[portkey]=${PIDS[-1]}
        wait_port $IP "$port" 30 "${GW_PID[portkey]}" && break
        out=$(console_tail portkey 12)
        drop_last_pid
        GW_PID[portkey]=""
        if ((attempt < 3)) && grep -qi 'EADDRINUSE' <<<"$out"; then continue; fi
        gw_fail portkey "did not listen on $IP:$port within 30 s; console: $out"
        return 0
    done
    GW_PORT[portkey]=$port
    GW_PATH[portkey]=/v1/chat/completions
    local url="http://$IP:$port/v1/chat/completions"
    local try tries=https PREV=""
    [[ $PORTKEY_UPSTREAM == http ]] && tries=""
    for try in $tries http; do
        if [[ $try == https ]]; then host="https://$IP:$TLS_PORT/v1"; else host="http://$IP:$HTTP_PORT/v1"; fi
        r=$(post "$url" "$PROVIDER_KEY" "$T/request.json" -H "x-portkey-provider: openai" -H "x-portkey-custom-host: $host")
        if [[ $(status_of "$r") == 200 && $(body_of "$r") == *"$MARKER"* ]]; then
            if [[ $try == https ]]; then
                GW_UP[portkey]="HTTPS, verified against the run's CA (NODE_EXTRA_CA_CERTS)"
            elif [[ $PORTKEY_UPSTREAM == https ]]; then
                GW_UP[portkey]="⚠ plain HTTP: the HTTPS custom host failed ($(cut -c1-200 <<<"$PREV"))"
            else
                GW_UP[portkey]="plain HTTP (PORTKEY_UPSTREAM=http)"
            fi
            break
        fi
        PREV=$r
        log "portkey via $host gave '$(cut -c1-300 <<<"$r")'"
        [[ $try == http ]] && {
            gw_fail portkey "POST $url (custom host $host) gave '$(cut -c1-400 <<<"$r")' (want 200 and the provider's body); console: $(console_tail portkey)"
            return 0
        }
    done
    GW_ARGS[portkey]="x-portkey-provider: openai|x-portkey-custom-host: $host"
    local same="identical to the provider's"
    [[ $(body_of "$r") == "$RESPONSE_BODY" ]] || same="re-serialised by Portkey (provider's id present)"
    local c_key
    c_key=$(status_of "$(post "$url" "wrong-key" "$T/request.json" -H "x-portkey-provider: openai" -H "x-portkey-custom-host: $host")")
    GW_CHECK[portkey]="allowed call → 200, body $same; wrong provider key → $c_key (nginx answers 401); no inspection, no per-workspace identity"
    log "portkey checks: ${GW_CHECK[portkey]}"
    GW_OK+=(portkey)
}

# ------------------------------------------------------- nginx (proxy) ---
# A second nginx (its own master and 1 worker, so it never shares the fake
# provider's worker): plain HTTP in, verified HTTPS out over kept-alive
# upstream connections, the provider key injected. No authentication, no
# inspection, no audit — what the two extra loopback hops and the TLS
# re-encryption cost with a minimal C proxy.
start_nginx() {
    local d=$T/nginx port attempt r out
    mkdir -p "$d/logs" "$d/tmp"
    for attempt in 1 2 3; do
        free_port port
        cat >"$d/nginx.conf" <<EOF
# generated by bench/llm.sh — a plain reverse proxy to the fake provider (no inspection)
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    client_body_buffer_size 64k;
    upstream fake_provider {
        server $IP:$TLS_PORT;
        keepalive $POOL;                 # idle upstream connections kept per worker
        keepalive_requests 1000000;
    }
    upstream verify_check {              # the check's own peer: no shared connection or TLS session
        server $IP:$TLS_PORT;
    }
    proxy_http_version 1.1;
    proxy_set_header Connection "";      # keep the upstream connection open
    proxy_set_header Authorization "Bearer $PROVIDER_KEY";
    proxy_ssl_protocols TLSv1.2 TLSv1.3; # nginx 1.22's default lacks TLSv1.3
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate $CA;
    proxy_ssl_name $IP;                  # checked against the certificate (CN=$IP, SAN IP:$IP)
    proxy_ssl_server_name off;           # no SNI: an IP address is not a valid server name
    proxy_ssl_session_reuse on;
    server {
        listen $IP:$port;
        location / { proxy_pass https://fake_provider; }
        # Only for the check before timing: a name the certificate does not
        # carry must fail the handshake (502), i.e. verification is on.
        location = /bench-verify-check {
            proxy_ssl_name wrong-name.invalid;
            proxy_pass https://verify_check/v1/chat/completions;
        }
    }
}
EOF
        if ! nginx -t -q -e "$d/logs/error.log" -c "$d/nginx.conf" -p "$d/" >"$d/test.log" 2>&1; then
            gw_fail nginx "nginx -t rejected the generated config ($d/nginx.conf): $(cat "$d/test.log" "$d/logs/error.log" 2>/dev/null | head -n 4 | tr '\n' ' ' | cut -c1-500)"
            return 0
        fi
        start_bg nginx nginx -e "$d/logs/error.log" -c "$d/nginx.conf" -p "$d/" -g 'daemon off;'
        GW_PID[nginx]=${PIDS[-1]}
        wait_port $IP "$port" 10 "${GW_PID[nginx]}" && break
        out="$(console_tail nginx 12) $(tail -n 4 "$d/logs/error.log" 2>/dev/null | tr '\n' ' ' | cut -c1-400)"
        drop_last_pid
        GW_PID[nginx]=""
        if ((attempt < 3)) && grep -qi 'in use' <<<"$out"; then continue; fi
        gw_fail nginx "did not listen on $IP:$port within 10 s; console: $out"
        return 0
    done
    GW_PORT[nginx]=$port
    GW_UP[nginx]="HTTPS, verified against the run's CA (proxy_ssl_verify, proxy_ssl_trusted_certificate, proxy_ssl_name $IP, no SNI), TLS 1.2/1.3, session reuse, upstream keepalive $POOL"
    GW_PATH[nginx]=/v1/chat/completions
    GW_ARGS[nginx]=""
    local url="http://$IP:$port/v1/chat/completions"
    # 1. a client token the provider does not accept: 200 and nginx's body (key injected)
    r=$(post "$url" "$WS_TOKEN" "$T/request.json")
    if [[ $(status_of "$r") != 200 || $(body_of "$r") != *"$MARKER"* ]]; then
        gw_fail nginx "POST $url gave '$(cut -c1-400 <<<"$r")' (want 200 and the provider's body); error log: $(tail -n 4 "$d/logs/error.log" 2>/dev/null | tr '\n' ' ' | cut -c1-400)"
        return 0
    fi
    local same="identical to the provider's"
    [[ $(body_of "$r") == "$RESPONSE_BODY" ]] || same="⚠ differs from the provider's (marker present)"
    # 2. a proxy_ssl_name the certificate does not carry: 502 (verification on)
    local c_ver
    c_ver=$(status_of "$(post "http://$IP:$port/bench-verify-check" "$WS_TOKEN" "$T/request.json")")
    GW_CHECK[nginx]="call with a token the provider refuses → 200, body $same (key injected); upstream name the certificate lacks → $c_ver (want 502: verification on); no authentication, no inspection, no audit"
    if [[ $c_ver != 502 ]]; then
        GW_CHECK[nginx]+=" — ⚠ expected 502"
        log "warning: nginx proxy: wrong upstream name gave $c_ver (want 502)"
    fi
    log "nginx checks: ${GW_CHECK[nginx]}"
    GW_OK+=(nginx)
}

for g in $GATEWAYS; do "start_$g"; done

# ------------------------------------------------------------------- wrk ---
cat >"$T/post.lua" <<'EOF'
-- wrk script: wrk URL -s post.lua -- PATH BODYFILE TOKEN MARKER [HEADER|HEADER...]
-- POSTs the body with Authorization: Bearer TOKEN (and the extra "Name: value"
-- headers, separated by "|"), counts statuses and 2xx bodies without MARKER,
-- and prints one machine-readable WRKRESULT line at the end. The request is
-- built once per thread (wrk's static-request path).
local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
    local f = assert(io.open(args[2], "rb"))
    wrk.method = "POST"
    wrk.path = args[1]
    wrk.body = f:read("*a")
    f:close()
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = "Bearer " .. args[3]
    marker = args[4]
    for h in string.gmatch(args[5] or "", "[^|]+") do
        local k, v = h:match("^%s*([^:]+):%s*(.*)$")
        if k then wrk.headers[k] = v end
    end
    counts, badbody = {}, 0
end

function response(status, headers, body)
    counts[status] = (counts[status] or 0) + 1
    if status >= 200 and status < 300 and not (body and body:find(marker, 1, true)) then
        badbody = badbody + 1
    end
end

function done(summary, latency, requests)
    local agg, parts, ok, bad, bb = {}, {}, 0, 0, 0
    for _, t in ipairs(threads) do
        for k, v in pairs(t:get("counts") or {}) do agg[k] = (agg[k] or 0) + v end
        bb = bb + (t:get("badbody") or 0)
    end
    for k, v in pairs(agg) do
        if k >= 200 and k < 300 then ok = ok + v else bad = bad + v end
        table.insert(parts, k .. ":" .. v)
    end
    table.sort(parts)
    local e = summary.errors
    io.write(string.format(
        "WRKRESULT requests=%d duration_us=%d rps=%.1f p50_us=%.0f p90_us=%.0f p99_us=%.0f " ..
        "mean_us=%.1f max_us=%.0f ok=%d non2xx=%d badbody=%d connect=%d read=%d write=%d timeout=%d statuses=%s\n",
        summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.mean, latency.max, ok, bad, bb, e.connect, e.read, e.write, e.timeout,
        table.concat(parts, ",")))
end
EOF

nginx_counts() { # → "ACCEPTS REQUESTS" (each includes this status request itself)
    curl -sS --max-time 5 "http://$IP:$HTTP_PORT/nginx-status" 2>/dev/null |
        awk 'NR == 3 { print $1, $3 }' || true
}

declare -A RAW=() VAL=() FLAG=()
# run_wrk name conc round — one measured run (after a warm-up); VAL[name/conc/round/metric]
run_wrk() {
    local name=$1 conc=$2 round=$3 url path tok hdrs threads key out line kv k v
    if [[ $name == direct ]]; then
        url="https://$IP:$TLS_PORT"
        path=/v1/chat/completions
        tok=$PROVIDER_KEY
        hdrs=""
    else
        url="http://$IP:${GW_PORT[$name]}"
        path=${GW_PATH[$name]}
        tok=$PROVIDER_KEY
        # cdeguard: its workspace token; the nginx proxy: one the provider
        # refuses (the proxy must inject the key); Portkey passes it on.
        [[ $name == cdeguard* || $name == nginx ]] && tok=$WS_TOKEN
        hdrs=${GW_ARGS[$name]}
    fi
    threads=$THREADS
    ((conc == 1)) && threads=1
    key="$name/$conc/$round"
    log "wrk $name c$conc$( ((ROUNDS == 1)) || echo " round $round"): warm-up $WARMUP, then $DURATION"
    wrk -t"$threads" -c"$conc" -d"$WARMUP" --timeout "$TIMEOUT" -s "$T/post.lua" "$url" -- "$path" "$T/request.json" "$tok" "$MARKER" "$hdrs" >/dev/null 2>&1 || true
    local a0 r0 a1 r1
    read -r a0 r0 <<<"$(nginx_counts)"
    out=$(wrk -t"$threads" -c"$conc" -d"$DURATION" --timeout "$TIMEOUT" --latency -s "$T/post.lua" "$url" -- \
        "$path" "$T/request.json" "$tok" "$MARKER" "$hdrs" 2>&1) || { echo "$out" >&2; die "wrk failed for $key"; }
    read -r a1 r1 <<<"$(nginx_counts)"
    printf '%s\n' "$out" >"$T/wrk-${key//\//-}.txt"
    line=$(grep '^WRKRESULT ' <<<"$out") || { echo "$out" >&2; die "no WRKRESULT from wrk for $key"; }
    RAW[$key]=${line#WRKRESULT }
    # What nginx saw during the measured run (minus the status request itself):
    # new connections (direct: wrk's own; through a gateway: the upstream
    # connections it opened) and requests.
    if [[ -n ${a0:-} && -n ${a1:-} ]]; then
        RAW[$key]+=" nginx_conns=$((a1 - a0 - 1)) nginx_reqs=$((r1 - r0 - 1))"
    fi
    for kv in ${RAW[$key]}; do
        k=${kv%%=*}
        v=${kv#*=}
        VAL[$key/$k]=$v
    done
    FLAG[$key]=""
    if ((VAL[$key/ok] == 0 || VAL[$key/non2xx] + VAL[$key/badbody] + VAL[$key/connect] + VAL[$key/read] + VAL[$key/write] + VAL[$key/timeout] > 0)); then
        FLAG[$key]=" ⚠"
        log "$key: wrk saw errors: ${RAW[$key]}"
    fi
    log "$key: ${VAL[$key/rps]} req/s, p50 ${VAL[$key/p50_us]} µs, p99 ${VAL[$key/p99_us]} µs (${VAL[$key/statuses]}; nginx: ${VAL[$key/nginx_conns]:-?} new connections, ${VAL[$key/nginx_reqs]:-?} requests)"
}

rss_kb() { # pid field(VmRSS|VmHWM) → kB, or empty
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || true
}
gw_rss_kb() { # gateway field → kB summed over its processes (nginx: master + worker), or empty
    local p v sum=""
    for p in "${GW_PID[$1]}" $([[ $1 == nginx ]] && ps -o pid= --ppid "${GW_PID[$1]}" 2>/dev/null); do
        v=$(rss_kb "$p" "$2")
        [[ -n $v ]] && sum=$((${sum:-0} + v))
    done
    echo "$sum"
}
nginx_worker_kb() { # field → kB of the nginx proxy's worker alone, or empty
    local p
    for p in $(ps -o pid= --ppid "${GW_PID[nginx]}" 2>/dev/null); do rss_kb "$p" "$1"; done | head -n 1
}
declare -A RSS_IDLE=() RSS_AFTER=() RSS_PEAK=()
for g in "${GW_OK[@]}"; do RSS_IDLE[$g]=$(gw_rss_kb "$g" VmRSS); done

gw_alive() { # name → 0 if still running; otherwise mark it failed
    local g=$1 rc
    kill -0 "${GW_PID[$g]}" 2>/dev/null && return 0
    wait "${GW_PID[$g]}" && rc=0 || rc=$?
    gw_fail "$g" "exited during the load (status $rc); console: $(console_tail "$g")"
    return 1
}
is_failed() { [[ -n ${GW_FAIL[$1]:-} ]]; }

# Rounds interleave the targets; each metric's median over the rounds is reported.
CONCS=(1 "$CONNS")
for ((round = 1; round <= ROUNDS; round++)); do
    ((ROUNDS == 1)) || log "round $round of $ROUNDS"
    for n in direct "${GW_OK[@]}"; do
        [[ $n != direct ]] && is_failed "$n" && continue
        for c in "${CONCS[@]}"; do
            run_wrk "$n" "$c" "$round"
            [[ $n == direct ]] || gw_alive "$n" || break
        done
    done
done
for g in "${GW_OK[@]}"; do
    is_failed "$g" && continue
    RSS_AFTER[$g]=$(gw_rss_kb "$g" VmRSS)
    RSS_PEAK[$g]=$(gw_rss_kb "$g" VmHWM)
done
NGX_WORKER_AFTER="" NGX_WORKER_PEAK=""
if [[ " ${GW_OK[*]} " == *" nginx "* ]] && ! is_failed nginx; then
    NGX_WORKER_AFTER=$(nginx_worker_kb VmRSS)
    NGX_WORKER_PEAK=$(nginx_worker_kb VmHWM)
fi

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
declare -A M=() MFLAG=()
for n in direct "${GW_OK[@]}"; do
    for c in "${CONCS[@]}"; do
        MFLAG[$n/$c]=""
        [[ -n ${RAW[$n/$c/1]:-} ]] || continue
        for k in rps p50_us p99_us; do
            M[$n/$c/$k]=$(for ((round = 1; round <= ROUNDS; round++)); do
                echo "${VAL[$n/$c/$round/$k]:-}"
            done | grep . | median || true)
        done
        for ((round = 1; round <= ROUNDS; round++)); do
            [[ ${FLAG[$n/$c/$round]:-} == " ⚠" ]] && MFLAG[$n/$c]=" ⚠"
        done
    done
done

# cdeguard's own view: audit records and their gateway_ms (best effort).
AUDIT_NOTE=""
if [[ " ${GW_OK[*]} " == *" cdeguard "* ]]; then
    sleep 1 # let the audit writer catch up
    a=$T/cdeguard/audit.log
    recs=$(wc -l <"$a" 2>/dev/null || echo 0)
    gms=$(grep -o '"gateway_ms":[0-9.eE+-]*' "$a" 2>/dev/null | cut -d: -f2 | sort -g || true)
    if [[ -n $gms ]]; then
        AUDIT_NOTE=$(awk '{ a[NR] = $1 } END { printf "median %.1f µs, p99 %.1f µs over %d records", a[int((NR + 1) / 2)] * 1000, a[int(NR * 0.99 + 0.999)] * 1000, NR }' <<<"$gms")
    else
        AUDIT_NOTE="no gateway_ms field found"
    fi
    AUDIT_NOTE="$recs audit records; self-reported gateway_ms: $AUDIT_NOTE"
fi

# Limits runs: the store must have counted every call the gateway forwarded
# (the audit log's allowed calls with an upstream; a call whose client hung up
# while its limit check was in flight was allowed but never sent, and is not
# charged), or the limits did no work.
declare -A LIM_NOTE=()
for g in cdeguard_sqlite cdeguard_redis; do
    [[ " ${GW_OK[*]} " == *" $g "* ]] || continue
    sleep 1.5 # the SQLite store writes every flush_interval (1 s); Redis settles asynchronously
    out=$(BENCH_OPENAI_KEY=$PROVIDER_KEY "$CDEGUARD" usage --config "$T/$g/cdeguard.yaml" --by workspace --since 1d --json 2>&1) || true
    counted=$(grep -o '"total":{"requests":[0-9]*' <<<"$out" | grep -o '[0-9]*$' || true)
    allowed=$(grep -c '"decision":"allow' "$T/$g/audit.log" 2>/dev/null || true)
    sent=$(grep '"decision":"allow' "$T/$g/audit.log" 2>/dev/null | grep -vc '"upstream":""' || true)
    if [[ -z $counted ]]; then
        LIM_NOTE[$g]="⚠ cdeguard usage gave no total: $(head -c 300 <<<"$out" | tr '\n' ' ')"
    elif [[ $counted != "$sent" ]]; then
        LIM_NOTE[$g]="⚠ the store counted $counted calls, the audit log has $sent forwarded ($allowed allowed)"
    else
        LIM_NOTE[$g]="$counted calls counted = forwarded in the audit log"
        ((allowed == sent)) || LIM_NOTE[$g]+=" (+$((allowed - sent)) allowed, cancelled by their client before forwarding)"
    fi
    log "$g: ${LIM_NOTE[$g]}"
done

# ---------------------------------------------------------------- report ---
fmt_us() { [[ -z ${1:-} ]] && { echo "—"; return; }; awk -v x="$1" 'BEGIN { if (x < 1000) printf "%.0f µs", x; else printf "%.2f ms", x / 1000 }'; }
fmt_rps() { [[ -z ${1:-} ]] && { echo "—"; return; }; awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
fmt_mb() { [[ -z ${1:-} ]] && { echo "—"; return; }; awk -v k="$1" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }'; }
added_us() { # name → p50(name, c1) - p50(direct, c1) in µs, or empty
    [[ -n ${M[$1/1/p50_us]:-} && -n ${M[direct/1/p50_us]:-} ]] || return 0
    awk -v a="${M[$1/1/p50_us]}" -v b="${M[direct/1/p50_us]}" 'BEGIN { printf "%.0f", a - b }'
}
added_rtt_us() { # name → 1e6/rps(name, c1) - 1e6/rps(direct, c1): added mean round trip, µs
    [[ -n ${M[$1/1/rps]:-} && -n ${M[direct/1/rps]:-} ]] || return 0
    awk -v a="${M[$1/1/rps]}" -v b="${M[direct/1/rps]}" 'BEGIN { if (a > 0 && b > 0) printf "%.0f", 1e6 / a - 1e6 / b }'
}
ver() { "$@" 2>&1 | head -n 1 || true; }
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
V_CDEGUARD="cdeguard not run"
[[ " $GATEWAYS " == *" cdeguard "* ]] && V_CDEGUARD=$(ver "$CDEGUARD" --version)
V_PORTKEY="Portkey not run"
[[ -n $PK_VER ]] && V_PORTKEY="@portkey-ai/gateway $PK_VER on node $(node --version)"
CDG_WORKERS=$(grep -o -m1 'workers=[0-9]*' "$T/cdeguard/console.log" 2>/dev/null | cut -d= -f2 || true)

label_of() {
    case $1 in
        direct) echo "direct (wrk → nginx, HTTPS)" ;;
        cdeguard) echo "cdeguard (${CDG_WORKERS:-$WORKERS} workers, inspection on)" ;;
        cdeguard_sqlite) echo "cdeguard + limits, SQLite store" ;;
        cdeguard_redis) echo "cdeguard + limits, Redis store" ;;
        portkey) echo "Portkey gateway $PK_VER (1 node process)" ;;
        nginx) echo "nginx reverse proxy (no inspection; 1 worker)" ;;
    esac
}

# Targets (cdeguard).
verdict() { # ok-expression(awk) → met / not met
    if awk "BEGIN { exit !($1) }"; then echo "✅ met"; else echo "❌ not met"; fi
}
T_ADD="—" T_ADD_V="— not measured"
T_X="—" T_X_V="— not measured"
T_RSS="—" T_RSS_V="— not measured"
if [[ " ${GW_OK[*]} " == *" cdeguard "* ]] && ! is_failed cdeguard; then
    add=$(added_us cdeguard)
    if [[ -n $add ]]; then T_ADD="$add µs"; T_ADD_V=$(verdict "$add <= 50"); fi
    if [[ -n ${M[portkey/$CONNS/rps]:-} && -n ${M[cdeguard/$CONNS/rps]:-} ]] && ! is_failed portkey; then
        x=$(awk -v a="${M[cdeguard/$CONNS/rps]}" -v b="${M[portkey/$CONNS/rps]}" 'BEGIN { printf "%.1f", a / b }')
        T_X="${x}× ($(fmt_rps "${M[cdeguard/$CONNS/rps]}") vs $(fmt_rps "${M[portkey/$CONNS/rps]}") req/s)"
        T_X_V=$(verdict "$x >= 20")
    fi
    if [[ -n ${RSS_PEAK[cdeguard]:-} ]]; then
        T_RSS="peak $(fmt_mb "${RSS_PEAK[cdeguard]}") MB (after load $(fmt_mb "${RSS_AFTER[cdeguard]}") MB)"
        T_RSS_V=$(verdict "${RSS_PEAK[cdeguard]} * 1024 <= 20e6")
    fi
    [[ -n ${MFLAG[cdeguard/1]}${MFLAG[cdeguard/$CONNS]}${MFLAG[direct/1]} ]] && T_ADD_V+=" (⚠ errors in a run)"
fi

STAMP=$(date -u +%Y%m%d-%H%M%S)
REPORT=$T/report.md
{
    echo "## LLM gateway benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "| target | upstream leg | req/s (1 conn) | p50 | p99 | req/s ($CONNS conns) | p50 | p99 | added p50 (1 conn) | added mean (1 conn) | RSS idle / after / peak (MB) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for n in direct $GATEWAYS; do
        if [[ $n != direct ]] && is_failed "$n" && [[ -z ${RAW[$n/1/1]:-} ]]; then
            echo "| $(label_of "$n") | — | not run | | | | | | | | |"
            continue
        fi
        up="HTTPS"
        [[ $n != direct ]] && up=${GW_UP[$n]%%,*}
        add="—"
        addm="—"
        rss="—"
        if [[ $n != direct ]]; then
            a=$(added_us "$n")
            [[ -n $a ]] && add="$a µs"
            a=$(added_rtt_us "$n")
            [[ -n $a ]] && addm="$a µs"
            rss="$(fmt_mb "${RSS_IDLE[$n]:-}") / $(fmt_mb "${RSS_AFTER[$n]:-}") / $(fmt_mb "${RSS_PEAK[$n]:-}")"
        fi
        echo "| $(label_of "$n") | $up | $(fmt_rps "${M[$n/1/rps]:-}")${MFLAG[$n/1]} | $(fmt_us "${M[$n/1/p50_us]:-}") | $(fmt_us "${M[$n/1/p99_us]:-}") | $(fmt_rps "${M[$n/$CONNS/rps]:-}")${MFLAG[$n/$CONNS]} | $(fmt_us "${M[$n/$CONNS/p50_us]:-}") | $(fmt_us "${M[$n/$CONNS/p99_us]:-}") | $add | $addm | $rss |"
    done
    echo
    if [[ -n ${RAW[nginx/1/1]:-} ]]; then
        over=""
        a_ngx=$(added_us nginx) a_cdg=$(added_us cdeguard)
        m_ngx=$(added_rtt_us nginx) m_cdg=$(added_rtt_us cdeguard)
        if [[ -n $a_ngx && -n $a_cdg ]] && ! is_failed cdeguard; then
            over=" In this run cdeguard's added p50 is $((a_cdg - a_ngx)) µs above the proxy's ($a_cdg vs $a_ngx µs)"
            [[ -n $m_ngx && -n $m_cdg ]] && over+="; on the mean, $((m_cdg - m_ngx)) µs"
            over+="."
        fi
        echo "The **nginx reverse proxy** row is a second nginx process (1 worker, apart from the fake provider's) that only forwards: plain HTTP in on $IP, \`proxy_pass https://\` to the fake provider through an upstream block with \`keepalive $POOL\` (HTTP/1.1, \`Connection: \"\"\`), TLS verified against the run's CA (\`proxy_ssl_verify on\`, \`proxy_ssl_name $IP\`, no SNI), TLS session reuse, and \`Authorization: Bearer <provider key>\` set on every request. No authentication, inspection or audit: its added p50 is what the two extra loopback hops and the TLS re-encryption cost with a minimal C proxy, the yardstick for cdeguard's added p50 (the difference is cdeguard's own work: token lookup, inspection, audit record).$over Its RSS is the nginx master + worker summed (VmRSS, and VmHWM for the peak; pages they share count twice); the worker alone: $(fmt_mb "$NGX_WORKER_AFTER") MB after the load, peak $(fmt_mb "$NGX_WORKER_PEAK") MB."
        echo
    fi
    if [[ -n ${RAW[cdeguard_sqlite/1/1]:-}${RAW[cdeguard_redis/1/1]:-} ]]; then
        echo "Limits: the same gateway with rate limits and budgets on (workspace, project and team rules, 8 counters per call, none near its maximum), against limits off:"
        echo
        echo "| cdeguard | req/s (1 conn) | p50 | added p50 vs limits off | req/s ($CONNS conns) | p50 | req/s vs limits off | store check |"
        echo "|---|---:|---:|---:|---:|---:|---:|---|"
        for n in cdeguard cdeguard_sqlite cdeguard_redis; do
            [[ -n ${RAW[$n/1/1]:-} ]] || continue
            dl="—" dr="—" note="—"
            if [[ $n != cdeguard && -n ${M[cdeguard/1/p50_us]:-} && -n ${M[$n/1/p50_us]:-} ]]; then
                dl=$(awk -v a="${M[$n/1/p50_us]}" -v b="${M[cdeguard/1/p50_us]}" 'BEGIN { printf "%+.0f µs", a - b }')
            fi
            if [[ $n != cdeguard && -n ${M[cdeguard/$CONNS/rps]:-} && -n ${M[$n/$CONNS/rps]:-} ]]; then
                dr=$(awk -v a="${M[$n/$CONNS/rps]}" -v b="${M[cdeguard/$CONNS/rps]}" 'BEGIN { if (b > 0) printf "%+.1f %%", (a / b - 1) * 100 }')
            fi
            [[ $n == cdeguard ]] && note="limits off"
            [[ -n ${LIM_NOTE[$n]:-} ]] && note=${LIM_NOTE[$n]}
            echo "| $(store_of "$n" | sed 's/^off$/limits off/; s/^sqlite$/limits on, SQLite (embedded)/; s/^redis$/limits on, Redis/') | $(fmt_rps "${M[$n/1/rps]:-}")${MFLAG[$n/1]} | $(fmt_us "${M[$n/1/p50_us]:-}") | $dl | $(fmt_rps "${M[$n/$CONNS/rps]:-}")${MFLAG[$n/$CONNS]} | $(fmt_us "${M[$n/$CONNS/p50_us]:-}") | $dr | $note |"
        done
        echo
    fi
    echo "| cdeguard target | goal | measured | |"
    echo "|---|---|---|---|"
    echo "| gateway-added p50 at 1 connection | ≤ 50 µs | $T_ADD | $T_ADD_V |"
    echo "| requests/s vs Portkey ($CONNS connections) | ≥ 20× | $T_X | $T_X_V |"
    echo "| memory (VmHWM of the daemon) | ≤ 20 MB | $T_RSS | $T_RSS_V |"
    echo
    for g in $GATEWAYS; do
        is_failed "$g" && echo "**$g was not (fully) benchmarked:** ${GW_FAIL[$g]}" && echo
    done
    echo "Machine: $(nproc) cores, $CPU, $(uname -sr); load average at start $LOAD_AT_START, at end $(cut -d' ' -f1-3 /proc/loadavg). Fake provider, gateways and load generator share these cores over loopback; other load skews the numbers."
    echo "Versions: $V_CDEGUARD; $V_PORTKEY; $(ver nginx -v); $(ver wrk -v | cut -d' ' -f1-2); $(ver openssl version | cut -d' ' -f1-2)."
    echo "Command: \`$CMDLINE\`"
    echo
    echo "- Fake provider: nginx (1 worker, no access log) answers \`POST /v1/chat/completions\` with a fixed ${#RESPONSE_BODY}-byte OpenAI chat.completion (usage object included; its id is random per run) when \`Authorization: Bearer <provider key>\` is present, 401 otherwise. HTTPS with a P-256 certificate from a CA made for the run."
    echo "- Load: \`wrk --latency -s post.lua\` POSTing a $REQUEST_BYTES-byte chat request (system + user message, nothing for the inspection to find), \`-t1 -c1\` and \`-t$THREADS -c$CONNS\`, \`--timeout $TIMEOUT\`, $DURATION each after a $WARMUP warm-up, targets interleaved, $ROUNDS round(s) (median per metric). Latency is wrk's, request sent → response received; p50/p99 from its histogram. A run is marked ⚠ when wrk saw non-2xx answers, 2xx bodies without the provider's id, or socket errors. wrk (not wrk2) corrects its histogram for coordinated omission: every response slower than twice the mean interval adds synthetic samples, so on a busy machine p99 (and a little p50) is inflated, most at 1 connection (compare a raw mean_us with 1/req/s). \"added mean\" = 1/req/s through the gateway − 1/req/s direct, at 1 connection: the mean round trip without that correction, as a cross-check of \"added p50\"."
    echo "- direct: wrk → nginx over HTTPS with keep-alive — the ceiling, and the baseline of \"added p50\" (= p50 through the gateway − p50 direct, both at 1 connection). The client leg to each gateway is plain HTTP on loopback; each gateway's upstream leg is:"
    for g in $GATEWAYS; do is_failed "$g" && [[ -z ${GW_UP[$g]:-} ]] || echo "  - $g: ${GW_UP[$g]:-—}"; done
    echo "- cdeguard: \`cdeguard serve\` with only the gateway listener, workers $WORKERS, one workspace (token sent as \`Authorization: Bearer\`), provider openai at https://$IP:$TLS_PORT (key from env:BENCH_OPENAI_KEY), \`gateway.upstream.pool_size: $POOL\`, content settings at their defaults (inspection on), audit records to a file on $(df --output=source "$T" | tail -n 1). ${AUDIT_NOTE}"
    echo "- cdeguard + limits: the same config plus a \`limits:\` section (\`team: bench-team\`, \`project: bench-project\` on the workspace; workspace: requests and tokens per minute, requests and tokens per day, cost per day; project: cost per month; team: tokens per month, requests per minute; a gpt-4o-mini price), store \`sqlite\` (a file in the temp dir, \`flush_interval\` 1 s) or \`redis\` (a redis-server started by the script on $IP, no persistence). Every call is checked and reserved before it is forwarded and settled with the response's usage; the store check compares \`cdeguard usage\` with the calls the audit log shows forwarded."
    echo "- Portkey: \`node --require loopback.cjs node_modules/@portkey-ai/gateway/build/start-server.js --port=PORT --headless\` (what \`npx @portkey-ai/gateway\` runs; node started directly so the measured pid is the gateway; the preload binds it to $IP instead of all interfaces), routed with \`x-portkey-provider: openai\` and \`x-portkey-custom-host\`; the client's Authorization is passed on as the provider key. One node process (the CLI has no cluster mode); no inspection and no workspace identity, so it does less work per call than cdeguard."
    echo "- RSS: VmRSS of the gateway process (nginx proxy: master + worker summed) before the load (after the checks), VmRSS after the last run, and VmHWM (peak over the process' life, including start-up). MB = 10^6 bytes. The memory target is judged on the peak."
    echo "- Checks before timing:"
    for g in $GATEWAYS; do [[ -n ${GW_CHECK[$g]:-} ]] && echo "  - $g: ${GW_CHECK[$g]}"; done
    echo "  - fake provider (nginx): provider key → 200 with the fixed body (HTTPS and HTTP); wrong key → 401"
    echo "- Raw wrk results (nginx_conns / nginx_reqs: connections the fake provider (nginx) accepted and requests it served during the measured run, from stub_status — through a gateway, nginx_conns is the number of upstream connections the gateway opened, so keep-alive reuse shows as a number near 0 or the connection count; nginx_reqs ≈ requests shows nothing was answered without the provider):"
    for n in direct $GATEWAYS; do
        for c in "${CONCS[@]}"; do
            for ((round = 1; round <= ROUNDS; round++)); do
                [[ -n ${RAW[$n/$c/$round]:-} ]] &&
                    echo "  - $n c$c$( ((ROUNDS == 1)) || echo " round $round"): \`${RAW[$n/$c/$round]}\`"
            done
        done
    done
    true
} >"$REPORT"

cat "$REPORT"
if mkdir -p "$HERE/results" 2>/dev/null && cp "$REPORT" "$HERE/results/llm-$STAMP.md" 2>/dev/null; then
    log "written to bench/results/llm-$STAMP.md"
else
    KEEP_TMP=1
    log "warning: cannot write $HERE/results/; the report stays in $REPORT"
fi
FAILED=0
for g in $GATEWAYS; do is_failed "$g" && FAILED=1; done
if ((FAILED)); then
    log "error: not every gateway was benchmarked (see the report)"
    exit 1
fi
exit 0
