#!/usr/bin/env bash
# Starts the five services (API + consumer + relay each), waits until every /readyz answers,
# prints where they listen, and stops them on Ctrl-C. `run-services.sh stop` stops them.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${TOUSU_DATA_DIR:-$REPO/.data}"
RUN_DIR="$DATA_DIR/run"
LOG_DIR="$DATA_DIR/logs"
KEY_FILE="$DATA_DIR/dev-admin-key"
declare -A PORTS=(
  [intake]="${INTAKE_PORT:-8001}" [routing]="${ROUTING_PORT:-8002}"
  [sla-monitor]="${SLA_MONITOR_PORT:-8003}" [feedback]="${FEEDBACK_PORT:-8004}"
  [analytics]="${ANALYTICS_PORT:-8005}"
)
ORDER=(intake routing sla-monitor feedback analytics)
PY=(python3.11 -m uv run --frozen python)

stop_services() {
  for service in "${ORDER[@]}"; do
    pid_file="$RUN_DIR/$service.pid"
    [ -f "$pid_file" ] || continue
    pid="$(cat "$pid_file")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      echo "[run] stopped $service"
    fi
    rm -f "$pid_file"
  done
}

if [ "${1:-}" = "stop" ]; then
  stop_services
  exit 0
fi

mkdir -p "$RUN_DIR" "$LOG_DIR"
cd "$REPO"
ADMIN_KEY="$("${PY[@]}" -m tousu_shared.cli dev-admin-key --file "$KEY_FILE")"
stop_services

for service in "${ORDER[@]}"; do
  pkg="$(bash deploy/service-package.sh "$service")"
  TOUSU_HTTP_PORT="${PORTS[$service]}" TOUSU_BOOTSTRAP_ADMIN_KEY="$ADMIN_KEY" \
    setsid "${PY[@]}" -m "$pkg" >"$LOG_DIR/$service.log" 2>&1 &
  echo $! >"$RUN_DIR/$service.pid"
done
trap 'echo; stop_services; exit 0' INT TERM

for service in "${ORDER[@]}"; do
  url="http://127.0.0.1:${PORTS[$service]}"
  for attempt in $(seq 120); do
    if curl -fsS "$url/readyz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(cat "$RUN_DIR/$service.pid")" 2>/dev/null; then
      echo "[run] $service exited; last lines of $LOG_DIR/$service.log:" >&2
      tail -n 30 "$LOG_DIR/$service.log" >&2
      stop_services
      exit 1
    fi
    [ "$attempt" = 120 ] && { echo "[run] $service not ready after 60 s" >&2; stop_services; exit 1; }
    sleep 0.5
  done
done

echo
echo "Tousu is up (logs in $LOG_DIR):"
for service in "${ORDER[@]}"; do
  printf '  %-12s http://127.0.0.1:%s   (docs: /docs, health: /readyz, metrics: /metrics)\n' \
    "$service" "${PORTS[$service]}"
done
echo "  Kafka        127.0.0.1:${KAFKA_PORT:-9092}"
echo "  PostgreSQL   127.0.0.1:${PG_PORT:-5432}/tousu"
echo "  Admin key    $ADMIN_KEY"
echo "               (also in $KEY_FILE; send as 'Authorization: Bearer <key>')"
echo
echo "Ctrl-C or 'make stop' stops everything."
if [ -t 0 ] || [ -z "${CI:-}" ]; then
  wait
fi
