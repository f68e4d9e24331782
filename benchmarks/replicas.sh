#!/usr/bin/env bash
# Replicas behind nginx, measured: for 1, 2 and 3 `serve` replicas (one shared --output-dir, --public-url at the
# balancer) behind Debian's nginx configured as docs/deploy.md says, send REQUESTS URL-format OpenAI requests,
# CONCURRENCY at a time, and report requests, 429s, retries, p50/p95 latency and images/s.
#
#   benchmarks/replicas.sh                       # shapes model, 60 requests, 8 at a time, 20 steps
#   REQUESTS=200 CONCURRENCY=16 STEPS=20 MODEL=/models/sd15 SIZE=512x512 DEVICE=cuda benchmarks/replicas.sh
#
# Needs: dotnet (builds the CLI in Release), nginx (/usr/sbin/nginx), curl. Everything listens on 127.0.0.1.
# 429s: answers "queue full" from any replica (nginx passes them on to the next replica; the client retries one that
# every replica refused, after its Retry-After). Retries: extra replica attempts by nginx plus client retries.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-60} CONCURRENCY=${CONCURRENCY:-8} STEPS=${STEPS:-20} SIZE=${SIZE:-64x64}
MODEL=${MODEL:-models/shapes} DEVICE=${DEVICE:-cpu} MAX_QUEUE=${MAX_QUEUE:-4} REPLICAS=${REPLICAS:-"1 2 3"}
NGINX=${NGINX:-/usr/sbin/nginx} BASE_PORT=${BASE_PORT:-18900}
command -v curl >/dev/null || { echo "replicas.sh: curl is missing" >&2; exit 1; }
[ -x "$NGINX" ] || { echo "replicas.sh: $NGINX is missing (apt-get install nginx)" >&2; exit 1; }
dotnet build src/LocalDiffusion.Cli -c Release -v q -nologo >/dev/null
CLI=src/LocalDiffusion.Cli/bin/Release/net10.0/LocalDiffusion.Cli.dll
WORK=$(mktemp -d /tmp/localdiffusion-replicas.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

nginx_conf() { # $1 prefix dir, $2 listen port, $3.. upstream ports
    local dir=$1 port=$2; shift 2
    cat <<CONF
$([ "$(id -u)" = 0 ] && echo "user root;")
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    log_format upstreams '\$status statuses="\$upstream_status"';
    access_log $dir/access.log upstreams;
    client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp; uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
    upstream localdiffusion {
        least_conn;
$(for p in "$@"; do echo "        server 127.0.0.1:$p max_fails=0;"; done)
    }
    server {
        listen 127.0.0.1:$port;
        client_max_body_size 50m;
        location / {
            proxy_pass http://localdiffusion;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_read_timeout 600s;
            proxy_next_upstream error timeout http_429 http_503 non_idempotent;
        }
    }
}
CONF
}

# One request, retried by the client after a 429/502/503 that nginx could not place anywhere: "code tries seconds".
request() {
    local k=$1 url=$2 tries=0 code start end
    start=$(date +%s.%N)
    while :; do
        tries=$((tries + 1))
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 600 "$url/v1/images/generations" -H 'Content-Type: application/json' \
            -d "{\"prompt\": \"a red circle on a blue background, $k\", \"size\": \"$SIZE\", \"steps\": $STEPS, \"seed\": $k}") || code=000
        case $code in 429|502|503|000) [ $tries -lt 20 ] && { sleep 1; continue; } ;; esac
        break
    done
    end=$(date +%s.%N)
    echo "$code $tries $(echo "$end - $start" | bc)"
}
export -f request
export SIZE STEPS

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# model $MODEL, $SIZE, $STEPS steps, device $DEVICE, $REQUESTS requests, $CONCURRENCY at a time, --max-queue $MAX_QUEUE"
printf '%-9s %9s %5s %5s %8s %8s %8s %9s\n' replicas requests ok 429s retries p50_s p95_s images/s
for n in $REPLICAS; do
    dir=$WORK/r$n; mkdir -p "$dir/tmp" "$dir/images"
    lb_port=$((BASE_PORT + 10 * n)); ports=()
    for i in $(seq 1 "$n"); do ports+=($((lb_port + i))); done
    for p in "${ports[@]}"; do
        dotnet "$CLI" serve --port "$p" --model "$MODEL" --device "$DEVICE" --max-queue "$MAX_QUEUE" \
            --output-dir "$dir/images" --public-url "http://127.0.0.1:$lb_port/" >"$dir/serve-$p.log" 2>&1 &
        PIDS+=($!)
    done
    nginx_conf "$dir" "$lb_port" "${ports[@]}" >"$dir/nginx.conf"
    "$NGINX" -p "$dir" -e "$dir/error.log" -c nginx.conf -g 'daemon off;' &
    PIDS+=($!)
    for p in "${ports[@]}"; do
        until curl -sf -o /dev/null "http://127.0.0.1:$p/health"; do sleep 0.2; done
        # one warm-up generation per replica (first-call costs are not what this measures)
        curl -sf -o /dev/null "http://127.0.0.1:$p/v1/images/generations" -H 'Content-Type: application/json' \
            -d "{\"prompt\": \"warm up\", \"size\": \"$SIZE\", \"steps\": $STEPS}"
    done
    : >"$dir/access.log"
    start=$(date +%s.%N)
    seq 1 "$REQUESTS" | xargs -P "$CONCURRENCY" -I{} bash -c "request {} http://127.0.0.1:$lb_port" >"$dir/results.txt"
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    ok=$(awk '$1 == 200' "$dir/results.txt" | wc -l)
    client_retries=$(awk '{ s += $2 - 1 } END { print s + 0 }' "$dir/results.txt")
    nginx_retries=$(awk -F', ' '/statuses=/ { s += NF - 1 } END { print s + 0 }' "$dir/access.log")
    rejected=$(awk 'match($0, /statuses="[^"]*"/) { t = substr($0, RSTART, RLENGTH); s += gsub(/429/, "", t) } END { print s + 0 }' "$dir/access.log")
    read -r p50 p95 < <(awk '$1 == 200 { print $3 }' "$dir/results.txt" | sort -n | awk '{ a[NR] = $1 } END { i50 = int((NR + 1) * 0.50); i95 = int((NR + 1) * 0.95); if (i95 > NR) i95 = NR; printf "%.2f %.2f\n", a[i50 < 1 ? 1 : i50], a[i95 < 1 ? 1 : i95] }')
    printf '%-9s %9s %5s %5s %8s %8s %8s %9.2f   (load average %s)\n' "$n" "$REQUESTS" "$ok" "$rejected" $((client_retries + nginx_retries)) "$p50" "$p95" "$(echo "$ok / $wall" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
done
