#!/usr/bin/env bash
# bench/egress.sh — egress proxy benchmark: cdeguard vs squid vs tinyproxy.
#
# One run, no arguments, loopback only:
#   * nginx on 127.0.0.2 is the origin: plain HTTP /small (100-byte body) and
#     HTTPS /big.bin (100 MB of random bytes) with a throw-away test CA;
#   * cdeguard, squid and tinyproxy on 127.0.0.1 with equivalent allowlists
#     (only 127.0.0.2, plain HTTP only to the origin's HTTP port, CONNECT only
#     to its HTTPS port, nothing cached);
#   * wrk: small requests, absolute-form through each proxy (origin-form direct);
#   * curl: 100 MB download through a CONNECT tunnel (median of RUNS).
# Prints a Markdown table and writes it to bench/results/egress-<date>.md.
#
# Environment (all optional):
#   DURATION=15s  wrk run length per target      CONNS=50     wrk connections
#   THREADS=2     wrk threads                    WARMUP=2s    discarded wrk run before each
#   ROUNDS=1      wrk rounds (targets interleaved; the median round is reported)
#   RUNS=3        tunnel downloads per target    BIG_MB=100   tunnel file size
#   PROXIES="cdeguard squid tinyproxy"           CDEGUARD=build/cdeguard
#   KEEP_TMP=1    keep the temp dir (configs, logs) for inspection
set -euo pipefail

DURATION=${DURATION:-15s}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-1}
RUNS=${RUNS:-3}
BIG_MB=${BIG_MB:-100}
PROXIES=${PROXIES:-cdeguard squid tinyproxy}
KEEP_TMP=${KEEP_TMP:-0}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
CDEGUARD=${CDEGUARD:-$ROOT/build/cdeguard}
ORIGIN_IP=127.0.0.2
PROXY_IP=127.0.0.1
SMALL_BYTES=100
BIG_BYTES=$((BIG_MB * 1024 * 1024))
# The exact command line, for the report.
CMDLINE="DURATION=$DURATION CONNS=$CONNS THREADS=$THREADS WARMUP=$WARMUP ROUNDS=$ROUNDS RUNS=$RUNS BIG_MB=$BIG_MB PROXIES=\"$PROXIES\" bench/egress.sh"

# Never let an inherited proxy setting leak into curl.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in nginx squid tinyproxy wrk curl openssl ss awk; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install nginx-light squid tinyproxy wrk curl openssl)"
done
for p in $PROXIES; do
    case $p in
        cdeguard) [[ -x $CDEGUARD ]] || die "$CDEGUARD missing — run 'make' first (or PROXIES=\"squid tinyproxy\")" ;;
        squid | tinyproxy) ;;
        *) die "unknown proxy '$p' in PROXIES" ;;
    esac
done

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
T=$(mktemp -d "${TMPDIR:-/tmp}/cdeguard-bench.XXXXXX")
# nginx workers, squid kids and tinyproxy drop privileges when started as root:
# they must be able to traverse the temp dir.
chmod 755 "$T"
IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1

# ---------------------------------------------------------------- cleanup ---
declare -a PIDS=()   # every long-running process this script started

descendants() { # pid → all descendant pids (children first listed after parent)
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

# ------------------------------------------------------------------ ports ---
declare -A USED_PORTS=()
# Ports are drawn below the kernel's ephemeral range, so that a client socket
# (ours or anyone's) cannot take one between the check and the server's bind.
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

wait_port() { # ip port seconds pid — until something accepts on ip:port
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

free_port HTTP_PORT
free_port TLS_PORT
SMALL_URL="http://$ORIGIN_IP:$HTTP_PORT/small"
BIG_URL="https://$ORIGIN_IP:$TLS_PORT/big.bin"
PING_URL="https://$ORIGIN_IP:$TLS_PORT/ping.txt"

# ------------------------------------------------------------ certificates ---
log "temp dir $T; origin http=$ORIGIN_IP:$HTTP_PORT https=$ORIGIN_IP:$TLS_PORT"
mkdir -p "$T/pki" "$T/www"
(
    cd "$T/pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.crt -days 2 -subj "/CN=cdeguard bench CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj "/CN=$ORIGIN_IP"
    printf '%s\n' "subjectAltName=IP:$ORIGIN_IP" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
        -out server.crt -days 2 -extfile server.ext
) >"$T/pki/openssl.log" 2>&1 || { cat "$T/pki/openssl.log" >&2; die "openssl failed"; }
CA=$T/pki/ca.crt

log "creating ${BIG_MB} MB test file"
head -c "${BIG_MB}M" /dev/urandom >"$T/www/big.bin"
printf 'ok\n' >"$T/www/ping.txt"
SMALL_BODY=$(printf 'cdeguard-bench-small-%0*d' $((SMALL_BYTES - 22)) 0)  # + "\n" = 100 bytes

# ------------------------------------------------------------------ nginx ---
mkdir -p "$T/nginx/logs"
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    default_type application/octet-stream;
    server {
        listen $ORIGIN_IP:$HTTP_PORT;
        location = /small { default_type text/plain; return 200 "$SMALL_BODY\n"; }
        location / { return 404; }
    }
    server {
        listen $ORIGIN_IP:$TLS_PORT ssl;
        ssl_certificate $T/pki/server.crt;
        ssl_certificate_key $T/pki/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $T/www;
        location / { }
    }
}
EOF
start_bg nginx nginx -e "$T/nginx/logs/error.log" -c "$T/nginx/nginx.conf" -p "$T/nginx/" -g 'daemon off;'
NGINX_PID=${PIDS[-1]}
if ! wait_port $ORIGIN_IP "$HTTP_PORT" 10 "$NGINX_PID" || ! wait_port $ORIGIN_IP "$TLS_PORT" 10 "$NGINX_PID"; then
    cat "$T/nginx/console.log" "$T/nginx/logs/error.log" >&2
    die "nginx did not start"
fi

# ------------------------------------------------------------ curl checks ---
# curl_probe [proxy-args...] url → "CONNECT_CODE HTTP_CODE BYTES"
curl_probe() {
    curl -sS --max-time 15 --cacert "$CA" -o /dev/null \
        -w '%{http_connect} %{http_code} %{size_download}' "$@" 2>/dev/null || true
}

direct_small=$(curl_probe --noproxy '*' "$SMALL_URL")
direct_tls=$(curl_probe --noproxy '*' "$PING_URL")
[[ $direct_small == "000 200 $SMALL_BYTES" && $direct_tls == "000 200 3" ]] ||
    die "origin check failed: small='$direct_small' tls='$direct_tls'"

# ---------------------------------------------------------------- cdeguard ---
declare -A PROXY_PORT=() PROXY_LOGS=() PROXY_PID=()

# A listener port can still be taken by another program between free_port and
# the bind: start_* retry with fresh ports when the log says "in use".
port_clash() { grep -qi 'in use' "$@" 2>/dev/null; }

start_cdeguard() {
    local port admin d=$T/cdeguard attempt i
    mkdir -p "$d"
    for attempt in 1 2 3; do
        free_port port
        free_port admin
        write_cdeguard_conf "$port" "$admin"
        "$CDEGUARD" check-config "$d/cdeguard.yaml" >"$d/check-config.log" 2>&1 ||
            { cat "$d/check-config.log" >&2; die "cdeguard check-config rejected the generated config"; }
        start_bg cdeguard "$CDEGUARD" serve --config "$d/cdeguard.yaml"
        # up = egress port accepts and the "listening" line (all listeners bound) is out
        if wait_port $PROXY_IP "$port" 15 "${PIDS[-1]}"; then
            for ((i = 0; i < 50; i++)); do
                grep -q ' listening egress=' "$d/console.log" && break 2
                kill -0 "${PIDS[-1]}" 2>/dev/null || break
                sleep 0.1
            done
        fi
        stop_pid "${PIDS[-1]}"
        unset 'PIDS[-1]'
        cat "$d/console.log" >&2
        ((attempt < 3)) && port_clash "$d/console.log" && continue
        die "cdeguard did not start (console log above)"
    done
    PROXY_PORT[cdeguard]=$port
    PROXY_PID[cdeguard]=${PIDS[-1]}
    PROXY_LOGS[cdeguard]="audit log (file, one JSON line per request/tunnel, written by a separate writer thread); stderr event log"
}

write_cdeguard_conf() { # egress-port admin-port
    local port=$1 admin=$2 d=$T/cdeguard
    cat >"$d/cdeguard.yaml" <<EOF
version: 1
listeners:
  egress: $PROXY_IP:$port
  admin: $PROXY_IP:$admin
workers: 2
audit:
  sink: file
  path: $d/audit.log
timeouts:
  drain: 2s
workspace_subnets: [10.42.0.0/16]
workspaces:
  - id: bench
    group: bench
    sources: [$PROXY_IP/32]
policies:
  - name: bench-egress
    groups: [bench]
    mode: enforce
    allow_domains: []
    allow_cidrs: [$ORIGIN_IP/32]
    connect_ports: [$TLS_PORT]
    http_ports: [$HTTP_PORT]
    tls_only_ports: [$TLS_PORT]
    upload:
      alert_bytes: 10MB
      action: alert
EOF
}

# ------------------------------------------------------------------- squid ---
SQUID_WORKERS_USED=""
SQUID_TRIED=""
SQUID_FALLBACK_WHY=""
write_squid_conf() { # workers port
    local workers=$1 port=$2 d=$T/squid
    cat >"$d/squid.conf" <<EOF
# generated by bench/egress.sh
workers $workers
http_port $PROXY_IP:$port
visible_hostname cdeguard-bench
pid_filename $d/squid.pid
coredump_dir $d
cache_log $d/cache.log
access_log stdio:$d/access.log squid
cache_store_log none
logfile_rotate 0
pinger_enable off
netdb_filename none
shutdown_lifetime 1 seconds

# no caching, no disk store (no cache_dir line = no disk cache)
cache deny all
cache_mem 0 MB
memory_cache_shared off

acl localsrc src $PROXY_IP/32
acl origin dst $ORIGIN_IP/32
acl origin_http port $HTTP_PORT
acl origin_tls port $TLS_PORT
acl CONNECT method CONNECT
http_access deny !localsrc
http_access allow CONNECT origin origin_tls
http_access deny CONNECT
http_access allow origin origin_http
http_access deny all
EOF
}

start_squid() {
    local port d=$T/squid workers pid svc
    free_port port
    mkdir -p "$d"
    if [[ $IS_ROOT == 1 ]]; then chown proxy: "$d"; fi  # squid kids run as user proxy
    # A per-run service name keeps squid's shared-memory segments apart from
    # any system squid (SMP mode; squid's IPC sockets live in /run/squid).
    svc=cdgbench$$
    # Two tries with SMP (the second on a fresh port, in case the port was
    # taken meanwhile), then one worker.
    for workers in 2 2 1; do
        [[ -n $SQUID_TRIED ]] && free_port port
        SQUID_TRIED=1
        write_squid_conf "$workers" "$port"
        squid -k parse -f "$d/squid.conf" >"$d/parse.log" 2>&1 ||
            { cat "$d/parse.log" >&2; die "squid -k parse failed"; }
        # --foreground: the master stays in the foreground (SMP still works, unlike -N).
        start_bg squid squid --foreground -n "$svc" -f "$d/squid.conf"
        pid=${PIDS[-1]}
        if wait_port $PROXY_IP "$port" 30 "$pid" &&
            [[ $(curl_probe -x "http://$PROXY_IP:$port" "$SMALL_URL") == "000 200 $SMALL_BYTES" ]]; then
            SQUID_WORKERS_USED=$workers
            break
        fi
        log "squid with workers $workers did not come up; cache.log tail:"
        tail -n 20 "$d/cache.log" >&2 || true
        SQUID_FALLBACK_WHY=$(grep -E 'FATAL|ERROR|commBind|Cannot' "$d/cache.log" | tail -n 1 | cut -c1-200 || true)
        mv "$d/cache.log" "$d/cache.log.failed-$workers-$port" 2>/dev/null || true
        stop_pid "$pid"
        unset 'PIDS[-1]'
    done
    [[ -n $SQUID_WORKERS_USED ]] || die "squid did not start"
    PROXY_PORT[squid]=$port
    PROXY_PID[squid]=${PIDS[-1]}
    PROXY_LOGS[squid]="access.log (stdio, one line per request/tunnel); cache.log"
}

# --------------------------------------------------------------- tinyproxy ---
start_tinyproxy() {
    local port d=$T/tinyproxy user_lines="" attempt
    mkdir -p "$d"
    if [[ $IS_ROOT == 1 ]]; then
        chown nobody: "$d" 2>/dev/null || true
        user_lines=$'User nobody\nGroup nogroup'
    fi
    # Allowlist by host only (FilterURLs would not apply to CONNECT at all).
    printf '%s\n' "^${ORIGIN_IP//./\\.}\$" >"$d/filter"
    for attempt in 1 2 3; do
        free_port port
        cat >"$d/tinyproxy.conf" <<EOF
# generated by bench/egress.sh
$user_lines
Port $port
Listen $PROXY_IP
Timeout 600
MaxClients 200
LogLevel Warning
LogFile "$d/tinyproxy.log"
PidFile "$d/tinyproxy.pid"
Allow $PROXY_IP
ConnectPort $TLS_PORT
Filter "$d/filter"
FilterType ere
FilterCaseSensitive Yes
FilterDefaultDeny Yes
EOF
        start_bg tinyproxy tinyproxy -d -c "$d/tinyproxy.conf"
        wait_port $PROXY_IP "$port" 15 "${PIDS[-1]}" && break
        stop_pid "${PIDS[-1]}"
        unset 'PIDS[-1]'
        cat "$d/console.log" "$d/tinyproxy.log" >&2 2>/dev/null || true
        ((attempt < 3)) && port_clash "$d/console.log" "$d/tinyproxy.log" && continue
        die "tinyproxy did not start"
    done
    PROXY_PORT[tinyproxy]=$port
    PROXY_PID[tinyproxy]=${PIDS[-1]}
    PROXY_LOGS[tinyproxy]="tinyproxy.log at LogLevel Warning (no per-request record)"
}

for p in $PROXIES; do "start_$p"; done

# ------------------------------------------------- correctness pre-checks ---
# Each proxy must answer 200 for the allowed URL (so a proxy that denies
# everything cannot look fast) and should refuse the three near misses.
declare -A CHECK=()
code_of() { # "CONNECT HTTP BYTES" → the code the proxy answered with
    local c h
    read -r c h _ <<<"$1"
    if [[ $c != 000 && $c != 200 ]]; then echo "$c"; else echo "$h"; fi
}
for p in $PROXIES; do
    px="http://$PROXY_IP:${PROXY_PORT[$p]}"
    got_small=$(curl_probe -x "$px" "$SMALL_URL")
    got_tls=$(curl_probe -x "$px" "$PING_URL")
    [[ $got_small == "000 200 $SMALL_BYTES" ]] ||
        die "$p: GET $SMALL_URL through the proxy gave '$got_small' (want '000 200 $SMALL_BYTES'); see $T/$p/"
    [[ $got_tls == "200 200 3" ]] ||
        die "$p: CONNECT + GET $PING_URL gave '$got_tls' (want '200 200 3'); see $T/$p/"
    n1=$(code_of "$(curl_probe -x "$px" "http://$ORIGIN_IP:$TLS_PORT/")")              # plain HTTP to the TLS port
    n2=$(code_of "$(curl_probe -x "$px" -p "http://$ORIGIN_IP:$HTTP_PORT/small")")     # CONNECT to the HTTP port
    n3=$(code_of "$(curl_probe -x "$px" "http://127.0.0.3:$HTTP_PORT/small")")         # another destination
    CHECK[$p]="GET to TLS port → $n1; CONNECT to HTTP port → $n2; GET to 127.0.0.3 → $n3"
    # tinyproxy cannot deny plain HTTP by port: nginx itself answers 400 there.
    want="403 403 403"
    [[ $p == tinyproxy ]] && want="400 403 403"
    if [[ "$n1 $n2 $n3" != "$want" ]]; then
        CHECK[$p]+=" — ⚠ expected $want"
        log "warning: $p did not refuse as configured ($n1 $n2 $n3, expected $want)"
    fi
    log "$p checks: allowed GET 200, allowed CONNECT 200; ${CHECK[$p]}"
done

# ------------------------------------------------------------------- wrk ---
cat >"$T/proxy.lua" <<'EOF'
-- wrk script: wrk http://PROXY -s proxy.lua -- URL HOSTHEADER
-- Sends "GET URL" (absolute-form when URL is absolute), counts statuses per
-- thread, and prints one machine-readable WRKRESULT line at the end.
-- The request is built once per thread in init() (wrk's static-request path),
-- so no Lua runs per request except the response() status counter.
local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
    wrk.path = args[1]
    wrk.headers["Host"] = args[2]
    counts = {}
end

function response(status, headers, body)
    counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
    local agg, parts, ok, bad = {}, {}, 0, 0
    for _, t in ipairs(threads) do
        for k, v in pairs(t:get("counts") or {}) do agg[k] = (agg[k] or 0) + v end
    end
    for k, v in pairs(agg) do
        if k >= 200 and k < 300 then ok = ok + v else bad = bad + v end
        table.insert(parts, k .. ":" .. v)
    end
    table.sort(parts)
    local e = summary.errors
    io.write(string.format(
        "WRKRESULT requests=%d duration_us=%d rps=%.1f p50_us=%.0f p90_us=%.0f p99_us=%.0f " ..
        "mean_us=%.1f max_us=%.0f ok=%d non2xx=%d connect=%d read=%d write=%d timeout=%d statuses=%s\n",
        summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.mean, latency.max, ok, bad, e.connect, e.read, e.write, e.timeout,
        table.concat(parts, ",")))
end
EOF

declare -A RPS=() P50=() P99=() WRK_FLAG=() WRK_RAW=()
run_wrk() { # key target url host — results stored under key ("name/round")
    local name=$1 target=$2 url=$3 host=$4 out line kv k v
    log "wrk $name: warm-up $WARMUP, then $DURATION with $CONNS connections"
    wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -s "$T/proxy.lua" "$target" -- "$url" "$host" >/dev/null 2>&1 || true
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$T/proxy.lua" "$target" -- "$url" "$host" 2>&1) ||
        { echo "$out" >&2; die "wrk failed for $name"; }
    printf '%s\n' "$out" >"$T/wrk-${name//\//-}.txt"
    line=$(grep '^WRKRESULT ' <<<"$out") || { echo "$out" >&2; die "no WRKRESULT from wrk for $name"; }
    WRK_RAW[$name]=${line#WRKRESULT }
    declare -A r=()
    for kv in ${WRK_RAW[$name]}; do
        k=${kv%%=*}
        v=${kv#*=}
        r[$k]=$v
    done
    RPS[$name]=$(awk -v x="${r[rps]}" 'BEGIN { printf "%.0f", x }')
    P50[$name]=$(awk -v x="${r[p50_us]}" 'BEGIN { printf "%.2f ms", x / 1000 }')
    P99[$name]=$(awk -v x="${r[p99_us]}" 'BEGIN { printf "%.2f ms", x / 1000 }')
    WRK_FLAG[$name]=""
    if ((r[ok] == 0 || r[non2xx] + r[connect] + r[write] + r[timeout] > 0)); then
        WRK_FLAG[$name]=" ⚠"
        log "$name: wrk saw errors: ${WRK_RAW[$name]}"
    elif ((r[read] > 0)); then
        # Every answer was 2xx, but the server closed connections wrk wanted to
        # reuse (tinyproxy answers HTTP/1.1 without "Connection: close" and then
        # closes): wrk counts each as a read error and reconnects.
        WRK_FLAG[$name]=" †"
        log "$name: all answers 2xx, but ${r[read]} connection closes counted as read errors by wrk"
    fi
    log "$name: ${RPS[$name]} req/s, p50 ${P50[$name]}, p99 ${P99[$name]} (${r[statuses]})"
}

alive() { # proxy — die with its console log if the process has gone
    if ! kill -0 "${PROXY_PID[$1]}" 2>/dev/null; then
        wait "${PROXY_PID[$1]}" && rc=0 || rc=$?
        log "$1 exited during the benchmark (status $rc); last console lines:"
        tail -n 30 "$T/$1/console.log" >&2 || true
        die "$1 died"
    fi
}

# ROUNDS > 1 interleaves the targets and reports, per target, the round with
# the median req/s (its p50/p99 with it) — steadier on a machine with other load.
for ((round = 1; round <= ROUNDS; round++)); do
    ((ROUNDS == 1)) || log "wrk round $round of $ROUNDS"
    run_wrk "direct/$round" "http://$ORIGIN_IP:$HTTP_PORT" "/small" "$ORIGIN_IP:$HTTP_PORT"
    for p in $PROXIES; do
        run_wrk "$p/$round" "http://$PROXY_IP:${PROXY_PORT[$p]}" "$SMALL_URL" "$ORIGIN_IP:$HTTP_PORT"
        alive "$p"
    done
done
for n in direct $PROXIES; do
    pick=$(for ((round = 1; round <= ROUNDS; round++)); do echo "${RPS[$n/$round]} $round"; done |
        sort -n | sed -n "$(((ROUNDS + 1) / 2))p" | cut -d' ' -f2)
    RPS[$n]=${RPS[$n/$pick]}
    P50[$n]=${P50[$n/$pick]}
    P99[$n]=${P99[$n/$pick]}
    WRK_FLAG[$n]=""
    for ((round = 1; round <= ROUNDS; round++)); do
        # the worst flag of any round
        if [[ ${WRK_FLAG[$n/$round]} == " ⚠" || -z ${WRK_FLAG[$n]} ]]; then
            WRK_FLAG[$n]=${WRK_FLAG[$n/$round]}
        fi
    done
done

# ---------------------------------------------------------------- tunnel ---
declare -A MBPS=() PCT=() TUN_RAW=() TUN_ARGS=()
tunnel_once() { # name run — one download; appends bytes/s to TUN_RAW[name] or marks FAIL
    local name=$1 i=$2 out code size speed args
    [[ ${MBPS[$name]:-} == FAIL ]] && return 0
    read -r -a args <<<"${TUN_ARGS[$name]}"
    out=$(curl -sS --max-time 300 --cacert "$CA" -o /dev/null \
        -w '%{http_code} %{size_download} %{speed_download}' "${args[@]}" "$BIG_URL" 2>&1) || out="curl-error: $out"
    read -r code size speed <<<"$out"
    if [[ $code != 200 || $size != "$BIG_BYTES" ]]; then
        log "$name: tunnel run $i failed: $out"
        MBPS[$name]=FAIL
        TUN_RAW[$name]="run $i failed: $out"
        return 0
    fi
    TUN_RAW[$name]+="${TUN_RAW[$name]:+ }$speed"
}

# Runs are interleaved (direct, each proxy, direct, ...) so that a burst of
# other load on the machine does not land on one target only.
log "tunnel: ${BIG_MB} MiB over HTTPS, $RUNS interleaved runs per target"
TUN_ARGS[direct]="--noproxy *"
for p in $PROXIES; do TUN_ARGS[$p]="-x http://$PROXY_IP:${PROXY_PORT[$p]}"; done
for ((run = 1; run <= RUNS; run++)); do
    for n in direct $PROXIES; do
        tunnel_once "$n" "$run"
        [[ $n == direct ]] || alive "$n"
    done
done
for n in direct $PROXIES; do
    [[ ${MBPS[$n]:-} == FAIL ]] && continue
    # shellcheck disable=SC2086 # the list of speeds
    speed=$(printf '%s\n' ${TUN_RAW[$n]} | sort -g | sed -n "$(((RUNS + 1) / 2))p")
    MBPS[$n]=$(awk -v x="$speed" 'BEGIN { printf "%.0f", x / 1e6 }')
    TUN_RAW[$n]+=" B/s"
    log "$n: tunnel median ${MBPS[$n]} MB/s (runs: ${TUN_RAW[$n]})"
done
sleep 1 # let log writers catch up before counting records
declare -A RECORDS=()
[[ -n ${PROXY_PID[cdeguard]:-} ]] && RECORDS[cdeguard]="$(wc -l <"$T/cdeguard/audit.log" 2>/dev/null || echo 0) audit records"
[[ -n ${PROXY_PID[squid]:-} ]] && RECORDS[squid]="$(wc -l <"$T/squid/access.log" 2>/dev/null || echo 0) access.log lines"
[[ -n ${PROXY_PID[tinyproxy]:-} ]] && RECORDS[tinyproxy]="no per-request log"
true
for n in direct $PROXIES; do
    if [[ ${MBPS[$n]} == FAIL || ${MBPS[direct]} == FAIL ]]; then
        PCT[$n]="—"
    else
        PCT[$n]=$(awk -v a="${MBPS[$n]}" -v b="${MBPS[direct]}" 'BEGIN { printf "%.0f %%", 100 * a / b }')
    fi
done

# ---------------------------------------------------------------- report ---
ver() { "$@" 2>&1 | head -n 1 || true; }
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
V_CDEGUARD="not run"
[[ " $PROXIES " == *" cdeguard "* ]] && V_CDEGUARD=$(ver "$CDEGUARD" --version)
STAMP=$(date -u +%Y%m%d-%H%M%S)
REPORT=$T/report.md
{
    echo "## Egress benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "| proxy | req/s ($CONNS conns) | p50 | p99 | tunnel MB/s | % of direct |"
    echo "|---|---:|---:|---:|---:|---:|"
    for n in direct $PROXIES; do
        label=$n
        [[ $n == direct ]] && label="direct (nginx, no proxy)"
        [[ $n == squid ]] && label="squid ($SQUID_WORKERS_USED worker$([[ $SQUID_WORKERS_USED == 1 ]] || echo s))"
        if [[ $n == cdeguard ]]; then
            # the worker count cdeguard reports on its "listening" line
            w=$(grep -o -m1 'workers=[0-9]*' "$T/cdeguard/console.log" | cut -d= -f2 || true)
            label="cdeguard (${w:-?} workers)"
        fi
        echo "| $label | ${RPS[$n]}${WRK_FLAG[$n]} | ${P50[$n]} | ${P99[$n]} | ${MBPS[$n]} | ${PCT[$n]} |"
    done
    echo
    echo "Machine: $(nproc) cores, $CPU, $(uname -sr); load average at start $LOAD_AT_START, at end $(cut -d' ' -f1-3 /proc/loadavg). Everything (origin, proxies, load generator) shares these cores over loopback; other load on the machine skews the numbers."
    echo "Versions: $V_CDEGUARD; $(ver squid -v); $(ver tinyproxy -v); $(ver nginx -v); $(ver wrk -v | cut -d' ' -f1-2); $(ver curl --version | cut -d' ' -f1-2); $(ver openssl version | cut -d' ' -f1-2)."
    echo "Command: \`$CMDLINE\`"
    echo
    echo "- req/s, p50, p99: \`wrk -t$THREADS -c$CONNS -d$DURATION --latency\` (after a $WARMUP warm-up; median req/s of $ROUNDS interleaved round(s)), GET of a $SMALL_BYTES-byte body; absolute-form through the proxies, origin-form direct. p50/p99 from wrk's latency histogram (\`latency:percentile()\`). ⚠ = non-2xx answers or socket errors; † = all answers 2xx but the proxy closed the client connection after responses (no keep-alive, no \`Connection: close\`), which wrk counts as read errors and answers by reconnecting — so that row includes a TCP connect per request (raw counts below)."
    echo "- tunnel: \`curl --cacert CA -o /dev/null -w %{speed_download}\` of a $BIG_MB MiB file over HTTPS through CONNECT, median of $RUNS runs (interleaved with the other targets), MB = 10^6 bytes. At several hundred MB/s a 100 MiB transfer lasts well under a second, so runs are noisy: check the spread of the raw runs below before reading a difference (BIG_MB=1000 steadies it)."
    echo "- Logs kept during the run:"
    for p in $PROXIES; do echo "  - $p: ${PROXY_LOGS[$p]} — after the run: ${RECORDS[$p]}"; done
    echo "  - nginx: access_log off, error log only. All logs on $(df --output=source "$T" | tail -n 1) ($T)."
    echo "- Policy checks (allowed GET and CONNECT answered 200 before timing; near misses should be refused):"
    for p in $PROXIES; do echo "  - $p: ${CHECK[$p]}"; done
    echo "- Equivalence caveats: squid and cdeguard both restrict destination IP, plain-HTTP port and CONNECT port."
    echo "  tinyproxy can only allowlist by host name/IP text (\`Filter\` + \`FilterDefaultDeny Yes\`) and CONNECT ports (\`ConnectPort\`);"
    echo "  it cannot restrict plain-HTTP ports, and its filter matches the host string, not the resolved address."
    echo "  cdeguard additionally checks the TLS ClientHello on the tunnel port and writes an audit record per request; squid writes an access.log line; tinyproxy logs nothing per request."
    echo "  squid keeps upstream connections alive (pconn pool); tinyproxy opens a new upstream connection per request."
    [[ $SQUID_WORKERS_USED == 1 ]] && echo "  squid ran with 1 worker: SMP mode (workers 2) did not start here (last error: ${SQUID_FALLBACK_WHY:-none logged})."
    echo "- Raw wrk results:"
    for n in direct $PROXIES; do
        for ((round = 1; round <= ROUNDS; round++)); do
            echo "  - $n$( ((ROUNDS == 1)) || echo " round $round"): \`${WRK_RAW[$n/$round]}\`"
        done
    done
    echo "- Raw tunnel speeds: "
    for n in direct $PROXIES; do echo "  - $n: ${TUN_RAW[$n]}"; done
} >"$REPORT"

mkdir -p "$HERE/results"
cp "$REPORT" "$HERE/results/egress-$STAMP.md"
cat "$REPORT"
log "written to bench/results/egress-$STAMP.md"
