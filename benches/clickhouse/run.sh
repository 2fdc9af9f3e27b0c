#!/usr/bin/env bash
# The ClickHouse engine measured: points/s from carbon through the daemon
# into ClickHouse (one or two shards), with the daemon's and the servers'
# RSS, then render latency of the same requests on a daemon reading its
# embedded store and on one reading ClickHouse.
#
#   benches/clickhouse/run.sh            # SHARDS=1 SERIES=100000 POINTS=30
#   SHARDS=2 benches/clickhouse/run.sh
#
# Needs Debian's clickhouse-server (./dev setup installs it) and a release
# build (`cargo build --release --bin rollupd`; CARGO_TARGET_DIR is honoured).
# Everything listens on loopback ports in a temp dir, removed at the end.
set -euo pipefail
SHARDS=${SHARDS:-1}
SERIES=${SERIES:-100000}
POINTS=${POINTS:-30}
RUNS=${RUNS:-20}
TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rollupd/target}
BIN=${ROLLUPD_BIN:-$TARGET_DIR/release/rollupd}
SERVER=${ROLLUPD_CLICKHOUSE_SERVER:-/usr/sbin/clickhouse-server}
[ -x "$BIN" ] || { echo "no release build at $BIN: cargo build --release --bin rollupd" >&2; exit 1; }
[ -x "$SERVER" ] || { echo "no $SERVER: ./dev setup installs clickhouse-server" >&2; exit 1; }
TMP=$(mktemp -d /tmp/rollupd-chbench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
q() { curl -sS --data-binary "$2" "http://127.0.0.1:$1/"; }

# --- ClickHouse servers, one shard each of cluster `bench`.
XML=$("$BIN" clickhouse-schema --xml)
HTTP=(); TCP=()
for i in $(seq 1 "$SHARDS"); do HTTP+=("$(port)"); TCP+=("$(port)"); done
SHARD_XML=""
for t in "${TCP[@]}"; do SHARD_XML+="<shard><replica><host>127.0.0.1</host><port>$t</port></replica></shard>"; done
CH_PIDS=()
for i in $(seq 0 $((SHARDS - 1))); do
  d=$TMP/ch$i; mkdir -p "$d"/{data,tmp,log,config.d}
  echo "$XML" > "$d/config.d/rollupd.xml"
  cat > "$d/config.xml" <<X
<yandex>
  <logger><level>warning</level><log>$d/log/server.log</log><errorlog>$d/log/error.log</errorlog></logger>
  <http_port>${HTTP[$i]}</http_port><tcp_port>${TCP[$i]}</tcp_port><listen_host>127.0.0.1</listen_host>
  <path>$d/data/</path><tmp_path>$d/tmp/</tmp_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <remote_servers><bench>$SHARD_XML</bench></remote_servers>
</yandex>
X
  (cd "$d" && exec "$SERVER" --config-file="$d/config.xml" >/dev/null 2>"$d/log/stderr") &
  PIDS+=($!); CH_PIDS+=($!)
done
for h in "${HTTP[@]}"; do
  for _ in $(seq 1 60); do q "$h" "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
done
echo "clickhouse $(q "${HTTP[0]}" 'SELECT version()') x $SHARDS shard(s)"

URLS=$(printf '"http://127.0.0.1:%s",' "${HTTP[@]}"); URLS="[${URLS%,}]"
CLUSTER=""; [ "$SHARDS" -gt 1 ] && CLUSTER='cluster = "bench"'
daemon() { # name engine -> writes $TMP/$name.toml, starts it, sets DAEMON_PID, D_HTTP, D_CARBON
  local name=$1 engine=$2
  D_HTTP=$(port); D_CARBON=$(port)
  mkdir -p "$TMP/$name"
  cat > "$TMP/$name.toml" <<X
[server]
data_dir = "$TMP/$name/data"
http = "127.0.0.1:$D_HTTP"
carbon_tcp = "127.0.0.1:$D_CARBON"
carbon_udp = "127.0.0.1:$(port)"
statsd_udp = "127.0.0.1:$(port)"
statsd_tcp = "127.0.0.1:$(port)"
admin_tcp = "127.0.0.1:$(port)"
max_points_per_request = 200000000
[storage]
engine = "$engine"
[storage.clickhouse]
urls = $URLS
database = "bench"
$CLUSTER
X
  "$BIN" --config "$TMP/$name.toml" > "$TMP/$name.log" 2>&1 &
  DAEMON_PID=$!; PIDS+=($!)
  for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$D_HTTP/health" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "daemon $name did not start:"; cat "$TMP/$name.log"; exit 1
}

# --- Writes: SERIES series x POINTS points, 10 s apart, ending now.
daemon writer embedded
W_PID=$DAEMON_PID; W_HTTP=$D_HTTP; W_CARBON=$D_CARBON
NOW=$(( $(date +%s) / 60 * 60 ))
python3 - "$SERIES" "$POINTS" "$NOW" > "$TMP/lines" <<'PY'
import sys
n, k, now = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = sys.stdout
for j in range(k):
    t = now - (k - j) * 10
    out.write(''.join(f"bench.host{i // 1000:04d}.m{i % 1000:03d} {(i * 7 + j * 13) % 1000 / 4} {t}\n" for i in range(n)))
PY
TOTAL=$((SERIES * POINTS))
START=$(date +%s.%N)
cat "$TMP/lines" > "/dev/tcp/127.0.0.1/$W_CARBON"
SENT=$(date +%s.%N)
TABLE=""
while :; do
  [ -z "$TABLE" ] && TABLE=$(q "${HTTP[0]}" "SELECT name FROM system.tables WHERE database = 'bench' AND name LIKE 'points_average%' AND name NOT LIKE '%_local' FORMAT TabSeparated" 2>/dev/null || true)
  if [ -n "$TABLE" ]; then
    N=$(q "${HTTP[0]}" "SELECT count() FROM (SELECT Path, Time FROM bench.$TABLE WHERE startsWith(Path, 'bench.') GROUP BY Path, Time)" 2>/dev/null || echo 0)
    [ "$N" = "$TOTAL" ] && break
  fi
  sleep 0.5
done
DONE=$(date +%s.%N)
CH_RSS=""; for p in "${CH_PIDS[@]}"; do CH_RSS+="$(rss_mb "$p") MB "; done
python3 - "$START" "$SENT" "$DONE" "$TOTAL" "$(rss_mb "$W_PID")" "$CH_RSS" "$SHARDS" <<'PY'
import sys
start, sent, done, total = map(float, sys.argv[1:5])
print(f"writes: {int(total)} carbon points ({sys.argv[7]} shard(s)): sent in {sent-start:.1f} s, all in ClickHouse after {done-start:.1f} s = {total/(done-start)/1e3:.0f}k points/s end to end; daemon peak RSS {sys.argv[5]} MB, ClickHouse peak RSS {sys.argv[6].strip()}")
PY

# Bytes a point on ClickHouse's disk (the points tables' active parts,
# after what merges ran meanwhile) against the embedded store's data dir.
PARTS=0
for h in "${HTTP[@]}"; do
  b=$(q "$h" "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'bench' AND active AND table LIKE 'points_%'")
  PARTS=$((PARTS + ${b:-0}))
done
EMB=$(du -sb "$TMP/writer/data/store" | cut -f1)
python3 -c "import sys; p,e,t=map(int,sys.argv[1:]); print(f'disk: ClickHouse points tables {p/1e6:.1f} MB = {p/t:.2f} B/point; the embedded store {e/1e6:.1f} MB = {e/t:.2f} B/point')" "$PARTS" "$EMB" "$TOTAL"

# --- Reads: the same requests on the embedded store and on ClickHouse.
daemon reader clickhouse
R_HTTP=$D_HTTP
time_render() { # port target from -> p50 p99 ms
  local ts=()
  for _ in $(seq 1 "$RUNS"); do
    ts+=("$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$1/render?target=$2&from=$3&until=$NOW&format=json")")
  done
  printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {printf "p50 %.1f ms p99 %.1f ms", a[int(NR*0.5)+1]*1000, a[int(NR*0.99)+ (NR*0.99>int(NR*0.99))]*1000}'
}
for t in "bench.host0000.m000" "bench.host0000.*" "sumSeries(bench.host0000.*)" "bench.host000*.m00*"; do
  for from in $((NOW - 3600)) $((NOW - 86400)); do
    e=$(time_render "$W_HTTP" "$t" "$from"); c=$(time_render "$R_HTTP" "$t" "$from")
    n=$(curl -s "http://127.0.0.1:$R_HTTP/render?target=$t&from=$from&until=$NOW&format=json" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    echo "render $t from -$(( (NOW - from) / 3600 ))h ($n series): embedded $e; clickhouse $c"
  done
done
