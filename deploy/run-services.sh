#!/usr/bin/env bash
# Starts the five services (API + consumer + relay each) and the development mail sink, waits
# until every /readyz answers, prints where they listen, and stops them on Ctrl-C.
# `run-services.sh stop` stops them. Feedback gets its own intake credential (pii:read) and
# sends its emails to the mail sink, which keeps each one as a file under .data/mail/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${TOUSU_DATA_DIR:-$REPO/.data}"
RUN_DIR="$DATA_DIR/run"
LOG_DIR="$DATA_DIR/logs"
KEY_FILE="$DATA_DIR/dev-admin-key"
FEEDBACK_KEY_FILE="$DATA_DIR/feedback-intake-key"
MAIL_DIR="$DATA_DIR/mail"
MAIL_PORT="${MAIL_SINK_PORT:-8025}"
declare -A PORTS=(
  [intake]="${INTAKE_PORT:-8001}" [routing]="${ROUTING_PORT:-8002}"
  [sla-monitor]="${SLA_MONITOR_PORT:-8003}" [feedback]="${FEEDBACK_PORT:-8004}"
  [analytics]="${ANALYTICS_PORT:-8005}"
)
ORDER=(intake routing sla-monitor feedback analytics)
PY=(python3.11 -m uv run --frozen python)

stop_services() {
  for service in "${ORDER[@]}" mailsink; do
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

start_service() {
  local service="$1"; shift
  local pkg
  pkg="$(bash deploy/service-package.sh "$service")"
  env TOUSU_HTTP_PORT="${PORTS[$service]}" TOUSU_BOOTSTRAP_ADMIN_KEY="$ADMIN_KEY" "$@" \
    setsid "${PY[@]}" -m "$pkg" >"$LOG_DIR/$service.log" 2>&1 &
  echo $! >"$RUN_DIR/$service.pid"
}

# Feedback's own credential at intake: contact details (pii:read, audited by intake) and
# complaints of channel `survey`. Kept across runs while intake still accepts it.
feedback_intake_key() {
  local intake="http://127.0.0.1:${PORTS[intake]}"
  for _ in $(seq 120); do curl -fsS "$intake/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
  if [ -s "$FEEDBACK_KEY_FILE" ] && curl -fsS -o /dev/null \
      -H "Authorization: Bearer $(cat "$FEEDBACK_KEY_FILE")" "$intake/v1/complaints?limit=1"; then
    cat "$FEEDBACK_KEY_FILE"
    return
  fi
  curl -fsS -X POST "$intake/v1/admin/credentials" \
    -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d '{"name": "feedback-service", "role": "admin",
         "scopes": ["complaints:read", "complaints:write", "pii:read"]}' \
    | "${PY[@]}" -c 'import json, sys; print(json.load(sys.stdin)["api_key"])' \
    | tee "$FEEDBACK_KEY_FILE"
  chmod 600 "$FEEDBACK_KEY_FILE"
}

mkdir -p "$MAIL_DIR"
setsid "${PY[@]}" -m tousu_feedback.mailsink --port "$MAIL_PORT" --dir "$MAIL_DIR" \
  >"$LOG_DIR/mailsink.log" 2>&1 &
echo $! >"$RUN_DIR/mailsink.pid"
for service in "${ORDER[@]}"; do
  [ "$service" = feedback ] || start_service "$service"
done
trap 'echo; stop_services; exit 0' INT TERM
FEEDBACK_INTAKE_KEY="$(feedback_intake_key)" || {
  echo "[run] could not issue feedback's intake credential" >&2; stop_services; exit 1;
}
start_service feedback TOUSU_INTAKE_API_KEY="$FEEDBACK_INTAKE_KEY" \
  TOUSU_INTAKE_URL="http://127.0.0.1:${PORTS[intake]}" TOUSU_SMTP_HOST=127.0.0.1 \
  TOUSU_SMTP_PORT="$MAIL_PORT" TOUSU_PUBLIC_BASE_URL="http://127.0.0.1:${PORTS[feedback]}"

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
echo "  Mail sink    127.0.0.1:$MAIL_PORT   (every email feedback sends, as files in $MAIL_DIR)"
echo "  Kafka        127.0.0.1:${KAFKA_PORT:-9092}"
echo "  PostgreSQL   127.0.0.1:${PG_PORT:-5432}/tousu"
echo "  Admin key    $ADMIN_KEY"
echo "               (also in $KEY_FILE; send as 'Authorization: Bearer <key>')"
echo
echo "Ctrl-C or 'make stop' stops everything."
if [ -t 0 ] || [ -z "${CI:-}" ]; then
  wait
fi
