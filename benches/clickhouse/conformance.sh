#!/usr/bin/env bash
# The render conformance harness (../shared/conformance/render: the real
# graphite-web beside rollupd on the same data) with rollupd reading
# ClickHouse: a copy of the harness whose rollupd config gains
# `[storage] engine = "clickhouse"`, one ClickHouse server on loopback
# ports in a temp dir, removed at the end.
#
#   benches/clickhouse/conformance.sh [harness args, e.g. --only movingAverage]
set -euo pipefail
HARNESS=${HARNESS:-$(cd "$(dirname "$0")/../.." && pwd)/../shared/conformance/render}
TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rollupd/target}
BIN=${ROLLUPD_BIN:-$TARGET_DIR/release/rollupd}
SERVER=${ROLLUPD_CLICKHOUSE_SERVER:-/usr/sbin/clickhouse-server}
[ -d "$HARNESS" ] || { echo "no harness at $HARNESS" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no release build at $BIN: cargo build --release --bin rollupd" >&2; exit 1; }
TMP=$(mktemp -d /tmp/rollupd-chconf.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

HTTP=$(port); TCP=$(port); D=$TMP/ch
mkdir -p "$D"/{data,tmp,log,config.d}
"$BIN" clickhouse-schema --xml > "$D/config.d/rollupd.xml"
cat > "$D/config.xml" <<X
<yandex>
  <logger><level>warning</level><log>$D/log/server.log</log><errorlog>$D/log/error.log</errorlog></logger>
  <http_port>$HTTP</http_port><tcp_port>$TCP</tcp_port><listen_host>127.0.0.1</listen_host>
  <path>$D/data/</path><tmp_path>$D/tmp/</tmp_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
</yandex>
X
(cd "$D" && exec "$SERVER" --config-file="$D/config.xml" >/dev/null 2>"$D/log/stderr") &
PID=$!
for _ in $(seq 1 60); do curl -s "http://127.0.0.1:$HTTP/?query=SELECT%201" >/dev/null 2>&1 && break; sleep 1; done

cp -r "$HARNESS" "$TMP/render"
python3 - "$TMP/render/render_oracle.py" "http://127.0.0.1:$HTTP" <<'PY'
import sys
path, url = sys.argv[1], sys.argv[2]
s = open(path).read()
anchor = '    return "\\n".join(lines) + "\\n"\n'
assert anchor in s, "the harness's rollupd_config() changed"
extra = ('    lines += ["", "[storage]", \'engine = "clickhouse"\', "", "[storage.clickhouse]",\n'
         f'              \'urls = ["{url}"]\', \'database = "conformance"\', \'batch_interval = "200ms"\']\n')
s = s.replace(anchor, extra + anchor, 1)
open(path, "w").write(s)
PY
cd "$TMP/render"
python3 render_oracle.py run --rollupd-bin "$BIN" "$@"
