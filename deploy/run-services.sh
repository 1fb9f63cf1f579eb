#!/usr/bin/env bash
# Starts the five services (every role of each in one process, but intake's and routing's
# relays in processes of their own (RELAYS_APART) and intake's API in one process per core
# (INTAKE_API_PROCESSES)) and the development mail sink
# under supervisord, waits until every /readyz answers, prints where they listen, and stops
# them on Ctrl-C. `run-services.sh stop` stops them.
#
# supervisord restarts a process that dies (a crash, kill -9) with backoff and keeps each
# one's log under .data/logs/ (rotated). Feedback gets its own intake credential (pii:read)
# and sends its emails to the mail sink, which keeps each one as a file under .data/mail/.
# Intake's encryption and blind-index keys are random, generated once into
# .data/intake-keys.env (mode 600) and read by its process at start.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${TOUSU_DATA_DIR:-$REPO/.data}"
RUN_DIR="$DATA_DIR/run"
LOG_DIR="$DATA_DIR/logs"
KEY_FILE="$DATA_DIR/dev-admin-key"
# Every service issues credentials, so every one holds the key that signs credential events.
SIGNING_KEY_FILE="$DATA_DIR/credential-signing-key"
# The broker's SASL passwords (deploy/infra.sh): each service gets its own user's, no other.
KAFKA_PASSWORDS_FILE="$DATA_DIR/kafka-passwords"
FEEDBACK_KEY_FILE="$DATA_DIR/feedback-intake-key"
INTAKE_KEYS_FILE="${INTAKE_KEYS_FILE:-$DATA_DIR/intake-keys.env}"
MAIL_DIR="$DATA_DIR/mail"
MAIL_PORT="${MAIL_SINK_PORT:-8025}"
CONF="$RUN_DIR/supervisord.conf"
SOCK="$RUN_DIR/supervisor.sock"
PYTHON="$REPO/.venv/bin/python"
declare -A PORTS=(
  [intake]="${INTAKE_PORT:-8001}" [routing]="${ROUTING_PORT:-8002}"
  [sla-monitor]="${SLA_MONITOR_PORT:-8003}" [feedback]="${FEEDBACK_PORT:-8004}"
  [analytics]="${ANALYTICS_PORT:-8005}"
)
ORDER=(intake routing sla-monitor feedback analytics)
# Intake's API processes (1 = intake's one process runs every role); default: one per core.
INTAKE_API_PROCESSES="${INTAKE_API_PROCESSES:-$(nproc)}"
# The services whose outbox relay runs as a process of its own (empty: none).
RELAYS_APART="${RELAYS_APART-intake routing}"

ctl() { "$REPO/.venv/bin/supervisorctl" -c "$CONF" "$@"; }

stop_services() {
  local pid
  pid="$(cat "$RUN_DIR/supervisord.pid" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  ctl shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  # supervisord stops every program (TERM, then KILL after stopwaitsecs) before it exits.
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  echo "[run] stopped the services and the mail sink"
}

if [ "${1:-}" = "stop" ]; then
  stop_services
  exit 0
fi

mkdir -p "$RUN_DIR" "$LOG_DIR" "$MAIL_DIR"
cd "$REPO"
ADMIN_KEY="$("$PYTHON" -m tousu_shared.cli dev-admin-key --file "$KEY_FILE")"
"$PYTHON" -m tousu_intake.keys dev-file --file "$INTAKE_KEYS_FILE" >/dev/null
SIGNING_KEY="$("$PYTHON" -m tousu_shared.cli dev-signing-key --file "$SIGNING_KEY_FILE")"
[ -s "$KAFKA_PASSWORDS_FILE" ] || { echo "[run] $KAFKA_PASSWORDS_FILE missing: run deploy/infra.sh up" >&2; exit 1; }
kafka_password() { sed -n "s/^$1=//p" "$KAFKA_PASSWORDS_FILE" | head -1; }
stop_services

# One [program] per process. startsecs/startretries give the backoff supervisord applies
# to a process that keeps failing (1 s, 2 s, 3 s, …); autorestart brings back one that ran.
program() {
  local name="$1" command="$2" environment="$3"
  cat <<EOF

[program:$name]
command=$command
directory=$REPO
environment=$environment
autostart=${4:-true}
autorestart=true
startsecs=3
startretries=20
stopsignal=TERM
stopwaitsecs=15
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$LOG_DIR/$name.log
stdout_logfile_maxbytes=20MB
stdout_logfile_backups=5
EOF
}

# The command running one role of a service (or "all" of them, or "roles": their names).
service_command() { # service package role
  case "$1" in
    # Feedback's intake key and intake's encryption keys are read from their files at start,
    # so they stay out of supervisord's configuration.
    feedback) echo "/bin/sh -c 'TOUSU_INTAKE_API_KEY=\$(cat $FEEDBACK_KEY_FILE) exec $PYTHON -m $2 $3'" ;;
    intake) echo "/bin/sh -c '. $INTAKE_KEYS_FILE && exec $PYTHON -m $2 $3'" ;;
    *) echo "$PYTHON -m $2 $3" ;;
  esac
}

service_roles() { # service package: the roles it can run, from the service itself
  if [ "$1" = intake ]; then (. "$INTAKE_KEYS_FILE" && "$PYTHON" -m "$2" roles); else "$PYTHON" -m "$2" roles; fi
}

# The configuration holds every service's secrets: readable by this user only.
: >"$CONF"
chmod 600 "$CONF"
{
  cat <<EOF
[unix_http_server]
file=$SOCK
chmod=0700

[supervisord]
logfile=$LOG_DIR/supervisord.log
pidfile=$RUN_DIR/supervisord.pid
nodaemon=true
silent=true
minfds=1024

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$SOCK
EOF
  program mailsink "$PYTHON -m tousu_feedback.mailsink --port $MAIL_PORT --dir $MAIL_DIR" \
    'PYTHONUNBUFFERED="1"'
  for service in "${ORDER[@]}"; do
    pkg="$(bash deploy/service-package.sh "$service")"
    env="TOUSU_BOOTSTRAP_ADMIN_KEY=\"$ADMIN_KEY\",TOUSU_CREDENTIAL_SIGNING_KEY=\"$SIGNING_KEY\""
    # A developer's stack on 127.0.0.1: the API documents are served (off by default elsewhere).
    env="$env,TOUSU_API_DOCS=\"${TOUSU_API_DOCS:-true}\""
    env="$env,TOUSU_KAFKA_USERNAME=\"$service\",TOUSU_KAFKA_PASSWORD=\"$(kafka_password "$service")\""
    autostart=true
    if [ "$service" = feedback ]; then
      # Started once its intake credential exists; the key is read from its file at start.
      env="$env,TOUSU_INTAKE_URL=\"http://127.0.0.1:${PORTS[intake]}\",TOUSU_SMTP_HOST=\"127.0.0.1\""
      env="$env,TOUSU_SMTP_PORT=\"$MAIL_PORT\",TOUSU_PUBLIC_BASE_URL=\"http://127.0.0.1:${PORTS[feedback]}\""
      autostart=false
    fi
    port_env="TOUSU_HTTP_PORT=\"${PORTS[$service]}\",$env"
    apis_apart=false relay_apart=false
    if [ "$service" = intake ] && [ "$INTAKE_API_PROCESSES" -gt 1 ]; then apis_apart=true; fi
    if [[ " $RELAYS_APART " == *" $service "* ]]; then relay_apart=true; fi
    metrics_dir="$RUN_DIR/metrics/$service"
    rm -rf "$metrics_dir"
    if $apis_apart || $relay_apart; then
      # A service in several processes: they keep their metrics in files of this run (emptied
      # before any starts) and /metrics of each answers for all of them (tousu_shared.metrics).
      mkdir -p "$metrics_dir"
      port_env="$port_env,PROMETHEUS_MULTIPROC_DIR=\"$metrics_dir\""
    fi
    if $apis_apart; then
      # Intake's API is where the CPU goes per complaint, so it gets as many processes as
      # the machine has cores: they share its port (SO_REUSEPORT, the kernel spreads the
      # connections) and the extra ones run the API role alone.
      port_env="$port_env,TOUSU_HTTP_REUSE_PORT=\"true\""
      for n in $(seq 2 "$INTAKE_API_PROCESSES"); do
        program "intake-api-$n" "$(service_command "$service" "$pkg" api)" "$port_env" "$autostart"
      done
    fi
    main_roles=all
    if $relay_apart; then
      # A relay beside a busy API or consumer waits behind every ready request on their event
      # loop (intake at 150/s: 201 → publish p99 1.5 s; 0.1 s in a process of its own).
      program "$service-relay" "$(service_command "$service" "$pkg" relay)" "$port_env" "$autostart"
      main_roles="all --without relay"
    fi
    program "$service" "$(service_command "$service" "$pkg" "$main_roles")" "$port_env" "$autostart"
    if [ -n "${SECOND_INSTANCES:-}" ]; then
      # The fault drills' second instance of each service: each of its roles a process of
      # its own (the API 10 ports up, the consumer in the same group), in one group the
      # drills start and stop.
      members=()
      for role in $(service_roles "$service" "$pkg"); do
        program "$service-2-$role" "$(service_command "$service" "$pkg" "$role")" \
          "TOUSU_HTTP_PORT=\"$((PORTS[$service] + 10))\",$env" false
        members+=("$service-2-$role")
      done
      printf '\n[group:%s]\nprograms=%s\n' "$service-2" "$(IFS=,; echo "${members[*]}")"
    fi
    if [ -n "${DRILL_NETNS:-}" ]; then
      # The network-fault drill's instance, inside the network namespace the drill makes
      # (its API 20 ports up, on every address of the namespace so the host can reach it).
      program "$service-ns" "ip netns exec $DRILL_NETNS $(service_command "$service" "$pkg" all)" \
        "TOUSU_HTTP_PORT=\"$((PORTS[$service] + 20))\",TOUSU_HTTP_HOST=\"0.0.0.0\",$env" false
    fi
  done
} >"$CONF"

# The services must not inherit the path to every user's password (make exports it).
env -u TOUSU_KAFKA_PASSWORDS_FILE "$REPO/.venv/bin/supervisord" -c "$CONF" &
SUPERVISORD_PID=$!
trap 'echo; stop_services; exit 0' INT TERM
for attempt in $(seq 100); do
  [ -S "$SOCK" ] && ctl pid >/dev/null 2>&1 && break
  kill -0 "$SUPERVISORD_PID" 2>/dev/null && [ "$attempt" != 100 ] || {
    echo "[run] supervisord did not start; see $LOG_DIR/supervisord.log" >&2; exit 1;
  }
  sleep 0.1
done

# Feedback's own credential at intake: contact details (pii:read, audited by intake) and
# complaints of channel `survey`. Kept across runs while intake still accepts it.
issue_feedback_key() {
  local intake="http://127.0.0.1:${PORTS[intake]}"
  for _ in $(seq 120); do curl -fsS "$intake/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
  # A refused old key is the expected case after the tables were reset: probe quietly (-fs).
  if [ -s "$FEEDBACK_KEY_FILE" ] && curl -fs -o /dev/null \
      -H "Authorization: Bearer $(cat "$FEEDBACK_KEY_FILE")" "$intake/v1/complaints?limit=1"; then
    return
  fi
  curl -fsS -X POST "$intake/v1/admin/credentials" \
    -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d '{"name": "feedback-service", "role": "service"}' \
    | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["api_key"])' \
    >"$FEEDBACK_KEY_FILE"
  chmod 600 "$FEEDBACK_KEY_FILE"
}
issue_feedback_key || { echo "[run] could not issue feedback's intake credential" >&2; stop_services; exit 1; }
ctl start feedback >/dev/null

for service in "${ORDER[@]}"; do
  url="http://127.0.0.1:${PORTS[$service]}"
  for attempt in $(seq 120); do
    if curl -fsS "$url/readyz" >/dev/null 2>&1; then break; fi
    if ctl status "$service" | grep -q FATAL; then
      echo "[run] $service keeps failing; last lines of $LOG_DIR/$service.log:" >&2
      tail -n 30 "$LOG_DIR/$service.log" >&2
      stop_services
      exit 1
    fi
    [ "$attempt" = 120 ] && { echo "[run] $service not ready after 60 s" >&2; stop_services; exit 1; }
    sleep 0.5
  done
done

echo
echo "Tousu is up (supervised by supervisord; logs in $LOG_DIR):"
for service in "${ORDER[@]}"; do
  printf '  %-12s http://127.0.0.1:%s   (docs: /docs, health: /readyz, metrics: /metrics with a metrics:read key)\n' \
    "$service" "${PORTS[$service]}"
done
[ "$INTAKE_API_PROCESSES" -gt 1 ] && echo "  (intake's API: $INTAKE_API_PROCESSES processes sharing port ${PORTS[intake]}; INTAKE_API_PROCESSES sets how many)"
echo "  Ops console  http://127.0.0.1:${PORTS[analytics]}/console   (sign in with an API key, e.g. the admin key below)"
echo "  Mail sink    127.0.0.1:$MAIL_PORT   (every email feedback sends, as files in $MAIL_DIR)"
echo "  Kafka        127.0.0.1:${KAFKA_PORT:-9092}"
echo "  PostgreSQL   127.0.0.1:${PG_PORT:-5432}/tousu"
echo "  Admin key    $ADMIN_KEY"
echo "               (also in $KEY_FILE; send as 'Authorization: Bearer <key>')"
echo "  Processes    .venv/bin/supervisorctl -c $CONF status"
echo
echo "Ctrl-C or 'make stop' stops everything."
if [ -t 0 ] || [ -z "${CI:-}" ]; then
  wait "$SUPERVISORD_PID"
fi
