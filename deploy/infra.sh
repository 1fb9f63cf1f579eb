#!/usr/bin/env bash
# Tousu local infrastructure: PostgreSQL (own cluster) + Apache Kafka 4 (KRaft, single node),
# no Docker needed. All subcommands are idempotent and never prompt.
#
#   deploy/infra.sh install   apt-get postgresql / java / maven if missing; Kafka jars via Maven
#   deploy/infra.sh up        start (or reuse) Postgres + Kafka, wait until ready, apply bootstrap.sql
#   deploy/infra.sh down      stop both (fine if already stopped)
#   deploy/infra.sh status    show state; exit 0 if both run, 3 otherwise
#   deploy/infra.sh reset     down + delete $TOUSU_DATA_DIR
#   deploy/infra.sh env       print export lines (Kafka bootstrap, per-service database URLs)
#   deploy/infra.sh harden    give every audit_log to the NOLOGIN role tousu_audit (service roles keep
#                             INSERT + SELECT); run after the migrations (make migrate does)
#   deploy/infra.sh backup    pgBackRest backup (incremental; the first one full); the first call turns
#                             on continuous WAL archiving for this data dir (one Postgres restart)
#   deploy/infra.sh restore   stop Postgres, restore the latest backup and replay every archived WAL
#                             segment and the WAL still in pg_wal (to the last commit), start it again
#
# Environment (defaults):
#   TOUSU_DATA_DIR=$REPO/.data            postgres/ kafka/ logs/ live here
#   KAFKA_LIBS_DIR=$REPO/.cache/kafka-libs  jars from deploy/kafka/pom.xml
#   PG_PORT=5432                          Postgres, 127.0.0.1 only
#   KAFKA_PORT=9092                       Kafka client listener (SASL SCRAM-SHA-512), 127.0.0.1 only
#   KAFKA_CONTROLLER_PORT=9093            KRaft controller listener (SASL PLAIN), 127.0.0.1 only
#   KAFKA_HEAP_OPTS="-Xms256m -Xmx512m"
#   KAFKA_START_TIMEOUT=60  KAFKA_STOP_TIMEOUT=30  PG_START_TIMEOUT=60   (seconds)
#   TOUSU_PG_DATA_DIR                     override the Postgres data dir (default $TOUSU_DATA_DIR/postgres;
#                                         /var/tmp/tousu-pg-<hash> if the postgres OS user cannot reach it)
#   TOUSU_DB_PASSWORD_<ROLE>              e.g. TOUSU_DB_PASSWORD_SLA_MONITOR; default password = role name
#
# Database: tousu; roles = schemas = intake, routing, sla_monitor, feedback, analytics.
#   PGPASSWORD=intake psql -h 127.0.0.1 -p 5432 -U intake -d tousu
# Kafka: SASL users admin (super user) and one per service (intake routing sla-monitor feedback
# analytics), passwords generated into $TOUSU_DATA_DIR/kafka-passwords (user=password, mode 600);
# ACLs (nothing allowed unless granted) are applied by `python -m tousu_shared.cli create-topics`.
# The postgres superuser has no password: it connects only over the cluster's own unix
# socket directory (mode 0700) as the postgres OS user (see "env" / "status" for the path).
set -euo pipefail
umask 022

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)

log() { printf '[infra] %s\n' "$*"; }
warn() { printf '[infra] WARNING: %s\n' "$*" >&2; }
die() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }

abspath() { # path may not exist yet; relative paths are relative to the caller's cwd
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(pwd)" "$1" ;;
  esac
}

TOUSU_DATA_DIR=$(abspath "${TOUSU_DATA_DIR:-$REPO/.data}")
KAFKA_LIBS_DIR=$(abspath "${KAFKA_LIBS_DIR:-$REPO/.cache/kafka-libs}")
PG_PORT=${PG_PORT:-5432}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
PG_START_TIMEOUT=${PG_START_TIMEOUT:-60}
TOUSU_PG_DATA_DIR=${TOUSU_PG_DATA_DIR:+$(abspath "$TOUSU_PG_DATA_DIR")}
export TOUSU_DATA_DIR KAFKA_LIBS_DIR

for _p in PG_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_START_TIMEOUT KAFKA_STOP_TIMEOUT PG_START_TIMEOUT; do
  [[ ${!_p} =~ ^[0-9]+$ ]] || die "$_p must be a number (got '${!_p}')"
done
[[ $KAFKA_PORT != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"

ROLES=(intake routing sla_monitor feedback analytics)
KAFKA_POM=$SCRIPT_DIR/kafka/pom.xml
KAFKA_TEMPLATE=$SCRIPT_DIR/kafka/server.properties.template
KAFKA_LOG4J=$SCRIPT_DIR/kafka/log4j2.properties
BOOTSTRAP_SQL=$SCRIPT_DIR/postgres/bootstrap.sql
HARDEN_SQL=$SCRIPT_DIR/postgres/harden.sql

LOG_DIR=$TOUSU_DATA_DIR/logs
KAFKA_DIR=$TOUSU_DATA_DIR/kafka
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_PROPS=$KAFKA_DIR/server.properties
KAFKA_CLUSTER_ID_FILE=$KAFKA_DIR/cluster.id
KAFKA_PID_FILE=$LOG_DIR/kafka.pid
KAFKA_LOG=$LOG_DIR/kafka.log
KAFKA_LIBS_MARKER=$KAFKA_LIBS_DIR/.tousu-pom.sha256
KAFKA_USERS=(admin intake routing sla-monitor feedback analytics)
KAFKA_PASSWORDS_FILE=$TOUSU_DATA_DIR/kafka-passwords
KAFKA_USERS_MARKER=$KAFKA_DIR/scram-users.sha256

hash_of() { printf '%s' "$1" | sha256sum | cut -c1-12; }
DATA_HASH=$(hash_of "$TOUSU_DATA_DIR")
LOCK_FILE=/tmp/tousu-infra-$DATA_HASH.lock

# ----------------------------------------------------------------------------- helpers

alive() { # pid is a live (non-zombie) process
  [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 1
  local st; st=$(sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [[ $st != Z ]]
}

port_open() { # port: something accepts TCP connections on 127.0.0.1:port
  timeout 2 bash -c ": >/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

with_lock() { # serialise up/down/reset of the same data dir (e.g. make -j)
  exec 9>"$LOCK_FILE"
  flock -w 300 9 || die "another infra.sh holds $LOCK_FILE for > 300 s"
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 ||
    die "need packages [$*] but apt-get is not available: install them by hand"
  local sudo=()
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install $*"
    sudo=(sudo -n)
  fi
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o Dpkg::Use-Pty=0)
  # Update the package lists only when needed: no lists yet, or the install fails.
  if ! apt-cache show "$@" >/dev/null 2>&1; then
    log "apt-get update"
    "${apt[@]}" update -qq
  fi
  log "apt-get install $*"
  if ! "${apt[@]}" install -y -qq --no-install-recommends "$@"; then
    log "install failed; apt-get update and retry"
    "${apt[@]}" update -qq
    "${apt[@]}" install -y -qq --no-install-recommends "$@"
  fi
}

java_major() {
  command -v java >/dev/null 2>&1 || { echo 0; return; }
  java -version 2>&1 | sed -nE '1s/.*version "([0-9]+)(\.[0-9]+)?.*/\1/p' | head -1
}

# ----------------------------------------------------------------------------- postgres

pg_bin_dir() { # the binaries of the version the cluster was created with, else the newest
  if [[ -f $PG_DATA/PG_VERSION ]]; then
    local v; v=$(cat "$PG_DATA/PG_VERSION" 2>/dev/null || true)
    [[ -n $v && -x /usr/lib/postgresql/$v/bin/initdb ]] && { echo "/usr/lib/postgresql/$v/bin"; return; }
  fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [[ -n $found && -x $found/initdb ]]; then echo "$found"; return; fi
  local initdb; initdb=$(command -v initdb 2>/dev/null || true)
  [[ -n $initdb ]] && { dirname "$initdb"; return; }
  return 1
}

if [[ $EUID -eq 0 ]]; then
  PG_OS_USER=postgres
  AS_PG=(runuser -u postgres --)
else
  PG_OS_USER=$(id -un)
  AS_PG=()
fi

pg_user_can_traverse() { # dir
  [[ $EUID -ne 0 ]] && return 0
  "${AS_PG[@]}" test -x "$1" 2>/dev/null
}

# Where the Postgres cluster lives. Default: $TOUSU_DATA_DIR/postgres. If the postgres OS user
# cannot reach $TOUSU_DATA_DIR (e.g. the repo is under a 0700 home directory) fall back to
# /var/tmp/tousu-pg-<hash of TOUSU_DATA_DIR> (deterministic, so down/reset find it again).
resolve_pg_paths() {
  local base
  if [[ -n $TOUSU_PG_DATA_DIR ]]; then
    PG_DATA=$TOUSU_PG_DATA_DIR
    base=$(dirname "$PG_DATA")
    PG_LOG=$base/postgres-$DATA_HASH.log
  else
    PG_DATA=$TOUSU_DATA_DIR/postgres
    PG_LOG=$LOG_DIR/postgres.log
    base=$TOUSU_DATA_DIR
    if id postgres >/dev/null 2>&1 && [[ $EUID -eq 0 ]] && [[ -d $TOUSU_DATA_DIR ]] &&
      ! pg_user_can_traverse "$TOUSU_DATA_DIR"; then
      base=/var/tmp/tousu-pg-$DATA_HASH
      PG_DATA=$base/postgres
      PG_LOG=$base/postgres.log
      PG_FALLBACK=1
    fi
  fi
  # pgBackRest's repository, logs and configuration, beside the cluster (owned by its OS user).
  BACKREST_DIR=$base/pgbackrest
  BACKREST_CONF=$BACKREST_DIR/pgbackrest.conf
  PG_SOCK_DIR=$base/pg-socket
  # unix socket paths are limited to 107 bytes
  if ((${#PG_SOCK_DIR} + 15 > 100)); then
    PG_SOCK_DIR=/tmp/tousu-pg-socket-$DATA_HASH
  fi
  PG_BASE=$base
}
PG_FALLBACK=0
resolve_pg_paths

pg_ctl() { "${AS_PG[@]}" "$PG_BIN/pg_ctl" "$@"; }

# A daemon keeps every descriptor it inherits for as long as it runs: our own lock (fd 9),
# and any lock the caller held around us (`flock some.lock make migrate`), which would then
# stay held until the daemon stops. Close all but stdin/stdout/stderr in the daemon's subshell.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

pg_postmaster_pid() { head -1 "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

pg_running() { # our cluster's postmaster is alive (a zombie one does not count)
  [[ -f $PG_DATA/PG_VERSION ]] || return 1
  PG_BIN=$(pg_bin_dir) || return 1
  alive "$(pg_postmaster_pid)" || return 1
  (cd / && pg_ctl status -D "$PG_DATA" >/dev/null 2>&1)
}

pg_wait_zombie_gone() { # a killed postmaster not yet reaped still blocks postmaster.pid
  local pid i; pid=$(pg_postmaster_pid)
  [[ -n $pid ]] || return 0
  for ((i = 0; i < 40; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    alive "$pid" && return 0
    sleep 0.25
  done
}

pg_running_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

pg_superuser_psql() { # psql as the postgres superuser over the private unix socket
  (cd / && "${AS_PG[@]}" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$PG_PORT" -U postgres "$@")
}

stop_debian_clusters_on_port() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  local ver name port status _rest
  while read -r ver name port status _rest; do
    [[ $port == "$PG_PORT" && $status == online* ]] || continue
    log "stopping Debian's own cluster $ver/$name (it holds port $PG_PORT)"
    pg_ctlcluster "$ver" "$name" stop ||
      warn "could not stop cluster $ver/$name"
  done < <(pg_lsclusters --no-header 2>/dev/null || true)
}

pg_write_config() {
  local conf=$PG_DATA/postgresql.conf
  grep -q "^include_if_exists = 'tousu.conf'" "$conf" ||
    printf "\n# Tousu local settings (written by deploy/infra.sh)\ninclude_if_exists = 'tousu.conf'\n" >>"$conf"
  cat >"$PG_DATA/tousu.conf" <<EOF
# Written by deploy/infra.sh on every start; edits here are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK_DIR'
unix_socket_permissions = 0700
max_connections = 300
shared_buffers = 256MB
fsync = on
password_encryption = scram-sha-256
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
log_checkpoints = off
EOF
  if [[ -f $BACKREST_CONF ]]; then
    # Continuous archiving, on since the first `infra.sh backup` of this data dir: every WAL
    # segment to pgBackRest's repository, at the latest 10 s after a commit.
    cat >>"$PG_DATA/tousu.conf" <<EOF
archive_mode = on
archive_command = 'pgbackrest --config=$BACKREST_CONF --stanza=tousu archive-push %p'
archive_timeout = 10
EOF
  fi
  cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Written by deploy/infra.sh on every start; edits here are overwritten.
# TYPE  DATABASE  USER  ADDRESS       METHOD
# unix socket: its directory is mode 0700, so only the postgres OS user (and root) reach it
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
EOF
  if [[ $EUID -eq 0 ]]; then chown "$PG_OS_USER": "$PG_DATA/tousu.conf" "$PG_DATA/pg_hba.conf"; fi
  chmod 600 "$PG_DATA/tousu.conf" "$PG_DATA/pg_hba.conf"
}

pg_up() {
  PG_BIN=$(pg_bin_dir) || die "PostgreSQL binaries not found: run deploy/infra.sh install"
  mkdir -p "$PG_BASE"
  if ((PG_FALLBACK)); then
    warn "the postgres OS user cannot traverse $TOUSU_DATA_DIR; Postgres data lives in $PG_DATA"
  fi
  if pg_running; then
    local running_port; running_port=$(pg_running_port)
    [[ $running_port == "$PG_PORT" ]] ||
      die "our Postgres already runs on port $running_port, not PG_PORT=$PG_PORT: run deploy/infra.sh down first"
    log "postgres: already running (reuse), pid $(pg_postmaster_pid)"
  else
    stop_debian_clusters_on_port
    pg_wait_zombie_gone
    if port_open "$PG_PORT"; then
      die "port 127.0.0.1:$PG_PORT is taken by another process; stop it or set PG_PORT"
    fi
    # data dir + socket dir owned by the postgres OS user
    mkdir -p "$PG_DATA" "$PG_SOCK_DIR"
    if [[ $EUID -eq 0 ]]; then chown "$PG_OS_USER": "$PG_DATA" "$PG_SOCK_DIR"; fi
    chmod 700 "$PG_DATA" "$PG_SOCK_DIR"
    if [[ ! -f $PG_DATA/PG_VERSION ]]; then
      local locale_opt=(--no-locale)
      if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale_opt=(--locale=C.UTF-8); fi
      log "postgres: initdb $PG_DATA ($("$PG_BIN/postgres" --version))"
      local initdb_log=$PG_BASE/initdb.log
      if ! (cd / && "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 "${locale_opt[@]}" \
        --auth-local=trust --auth-host=scram-sha-256) >"$initdb_log" 2>&1; then
        cat "$initdb_log" >&2
        die "initdb failed (log: $initdb_log)"
      fi
      PG_BIN=$(pg_bin_dir)
    fi
    pg_write_config
    if [[ ! -f $PG_LOG ]]; then : >"$PG_LOG"; fi
    if [[ $EUID -eq 0 ]]; then chown "$PG_OS_USER": "$PG_LOG"; fi
    log "postgres: starting on 127.0.0.1:$PG_PORT"
    # setsid: own session, so Ctrl-C / SIGHUP of the calling shell (make run) does not reach it;
    if ! (cd / && close_inherited_fds && setsid -w "${AS_PG[@]}" "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w \
      -t "$PG_START_TIMEOUT" -s </dev/null); then
      tail -n 30 "$PG_LOG" >&2 || true
      die "postgres did not start (log: $PG_LOG)"
    fi
  fi
  local i
  for ((i = 0; i < PG_START_TIMEOUT * 2; i++)); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres && break
    sleep 0.5
  done
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres ||
    die "postgres is not accepting TCP connections on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
  # After a restore the server answers (read-only) while it still replays WAL; it is up when
  # recovery has ended and it was promoted.
  for ((i = 0; i < PG_START_TIMEOUT * 2; i++)); do
    [[ $(pg_superuser_psql -tA -d postgres -c 'SELECT pg_is_in_recovery()') == f ]] && break
    sleep 0.5
  done
  # bootstrap.sql is fed on stdin: the postgres OS user may not be able to read the repo
  if ! pg_superuser_psql -d postgres -f - <"$BOOTSTRAP_SQL"; then
    die "applying $BOOTSTRAP_SQL failed"
  fi
  log "postgres: ready on 127.0.0.1:$PG_PORT, database tousu (data $PG_DATA, log $PG_LOG)"
}

pg_down() {
  if pg_running; then
    log "postgres: stopping (fast)"
    (cd / && pg_ctl stop -D "$PG_DATA" -m fast -w -t 60 -s) || {
      warn "fast shutdown timed out; immediate"
      (cd / && pg_ctl stop -D "$PG_DATA" -m immediate -w -t 30 -s) || true
    }
    log "postgres: stopped"
  else
    log "postgres: not running"
  fi
}

pg_status() {
  if pg_running; then
    local ready=no port; port=$(pg_running_port)
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres && ready=yes
    log "postgres: running, pid $(pg_postmaster_pid), 127.0.0.1:$port, ready=$ready, data $PG_DATA, socket dir $PG_SOCK_DIR"
    [[ $ready == yes ]]
  else
    log "postgres: stopped (data $PG_DATA$([[ -f $PG_DATA/PG_VERSION ]] || echo ', not initialised'))"
    return 1
  fi
}

# ----------------------------------------------------------------------------- kafka

kafka_libs_ok() {
  compgen -G "$KAFKA_LIBS_DIR/kafka_2.13-*.jar" >/dev/null || return 1
  [[ -f $KAFKA_LIBS_MARKER && "$(cat "$KAFKA_LIBS_MARKER")" == "$(sha256sum <"$KAFKA_POM" | cut -d' ' -f1)" ]]
}

kafka_java() { # run a Kafka class from the jar cache, quietly
  java -Dlog4j2.level=WARN -cp "$KAFKA_LIBS_DIR/*" "$@"
}

is_our_kafka() { # pid
  local pid=$1
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  local cmd; cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  [[ $cmd == *kafka.Kafka* && $cmd == *"$KAFKA_PROPS"* ]]
}

kafka_pid() { # pid of our broker, or nothing
  local pid=""
  [[ -f $KAFKA_PID_FILE ]] && pid=$(cat "$KAFKA_PID_FILE" 2>/dev/null || true)
  if is_our_kafka "$pid"; then echo "$pid"; return 0; fi
  # pid file lost or stale: look for a broker started with our properties file
  local p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    if is_our_kafka "$p"; then echo "$p"; return 0; fi
  done
  return 1
}

kafka_passwords() { # every SASL user has a random password in $KAFKA_PASSWORDS_FILE (mode 600)
  mkdir -p "$TOUSU_DATA_DIR"
  (umask 077 && touch "$KAFKA_PASSWORDS_FILE")
  chmod 600 "$KAFKA_PASSWORDS_FILE"
  local user
  for user in "${KAFKA_USERS[@]}"; do
    grep -q "^$user=" "$KAFKA_PASSWORDS_FILE" ||
      printf '%s=%s\n' "$user" "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >>"$KAFKA_PASSWORDS_FILE"
  done
}

kafka_password() { # user
  sed -n "s/^$1=//p" "$KAFKA_PASSWORDS_FILE" | head -1
}

# shellcheck disable=SC2016  # the ${VAR} placeholders are literal on purpose
kafka_render_config() { # output path; holds the admin password, hence mode 600
  mkdir -p "$KAFKA_DIR" "$KAFKA_DATA"
  local line out="" admin_password; admin_password=$(kafka_password admin)
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line//'${KAFKA_PORT}'/$KAFKA_PORT}
    line=${line//'${KAFKA_CONTROLLER_PORT}'/$KAFKA_CONTROLLER_PORT}
    line=${line//'${KAFKA_LOG_DIRS}'/$KAFKA_DATA}
    line=${line//'${KAFKA_ADMIN_PASSWORD}'/$admin_password}
    out+=$line$'\n'
  done <"$KAFKA_TEMPLATE"
  (umask 077 && printf '# GENERATED by deploy/infra.sh from deploy/kafka/server.properties.template\n%s' "$out" >"$1.tmp")
  mv "$1.tmp" "$1"
}

# The broker's command line, one word per element of KAFKA_CMD: kafka_up starts exactly this,
# and kafka_config_changed compares it with the running broker's, so a changed JVM flag (or
# KAFKA_HEAP_OPTS) restarts the broker as a changed server.properties does.
# -XX:-UsePerfData: no hsperfdata counters, which the JVM samples every 50 ms even when
# idle (issue #12); only jps/jstat read them (jcmd and jstack still work, by pid).
# -XX:+UseSerialGC: G1's service, refinement and marking threads wake several times a
# second on an idle broker; a heap of this size (KAFKA_HEAP_OPTS) suits the one-thread
# collector, and a 2-core machine has no spare core for parallel GC threads anyway.
kafka_command() {
  # shellcheck disable=SC2206  # KAFKA_HEAP_OPTS is a list of flags, split on purpose
  KAFKA_CMD=(java $KAFKA_HEAP_OPTS -XX:+UseSerialGC -XX:-UsePerfData -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="$LOG_DIR"
    -cp "$KAFKA_LIBS_DIR/*" kafka.Kafka "$KAFKA_PROPS")
}

kafka_config_changed() { # pid: the running broker was started with other settings (e.g. before SASL)
  kafka_render_config "$KAFKA_PROPS.new"
  if ! cmp -s "$KAFKA_PROPS.new" "$KAFKA_PROPS"; then rm -f "$KAFKA_PROPS.new"; return 0; fi
  rm -f "$KAFKA_PROPS.new"
  # /proc/<pid>/cmdline holds the arguments NUL-terminated, which a bash string cannot.
  kafka_command
  local running wanted
  running=$(sha256sum <"/proc/$1/cmdline" 2>/dev/null | cut -d' ' -f1) || return 0
  wanted=$(printf '%s\0' "${KAFKA_CMD[@]}" | sha256sum | cut -d' ' -f1)
  [[ $running != "$wanted" ]]
}

kafka_users_formatted() { # the storage was formatted with the SCRAM users of the password file
  [[ -f $KAFKA_USERS_MARKER && "$(cat "$KAFKA_USERS_MARKER")" == "$(sha256sum <"$KAFKA_PASSWORDS_FILE" | cut -d' ' -f1)" ]]
}

kafka_format() {
  if [[ -f $KAFKA_DATA/meta.properties ]] && ! kafka_users_formatted; then
    # Formatted before SASL (or with other passwords): no admin credential exists in its
    # metadata, and only a super user could add one. Kept aside, and formatted anew; the
    # topics come back with `make migrate`, the services' state lives in Postgres.
    local aside; aside=$KAFKA_DIR/data.pre-sasl.$(date +%Y%m%d%H%M%S)
    warn "kafka storage $KAFKA_DATA has no SCRAM users for $KAFKA_PASSWORDS_FILE: moving it to $aside and formatting anew"
    mv "$KAFKA_DATA" "$aside"
    rm -f "$KAFKA_DIR/controller.port"
    mkdir -p "$KAFKA_DATA"
  fi
  if [[ -f $KAFKA_DATA/meta.properties ]]; then
    local formatted_port
    formatted_port=$(cat "$KAFKA_DIR/controller.port" 2>/dev/null || echo "$KAFKA_CONTROLLER_PORT")
    [[ $formatted_port == "$KAFKA_CONTROLLER_PORT" ]] ||
      die "Kafka storage was formatted with controller port $formatted_port (KRaft voter endpoint), now KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT: use the old port or run deploy/infra.sh reset"
    return 0
  fi
  if [[ ! -s $KAFKA_CLUSTER_ID_FILE ]]; then
    kafka_java kafka.tools.StorageTool random-uuid >"$KAFKA_CLUSTER_ID_FILE.tmp"
    mv "$KAFKA_CLUSTER_ID_FILE.tmp" "$KAFKA_CLUSTER_ID_FILE"
  fi
  local cid; cid=$(tr -d '[:space:]' <"$KAFKA_CLUSTER_ID_FILE")
  log "kafka: formatting storage $KAFKA_DATA (cluster id $cid, standalone KRaft)"
  # SCRAM credentials live in the cluster metadata: every user's is written at format time
  # (the broker is not running yet, and it is the only way to give the admin its first one).
  local out user scram=()
  for user in "${KAFKA_USERS[@]}"; do
    scram+=(--add-scram "SCRAM-SHA-512=[name=$user,iterations=8192,password=$(kafka_password "$user")]")
  done
  if ! out=$(kafka_java kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_PROPS" --standalone "${scram[@]}" 2>&1); then
    printf '%s\n' "$out" | sed -E 's/password=[^],]*/password=***/g' >&2
    die "kafka storage format failed"
  fi
  echo "$KAFKA_CONTROLLER_PORT" >"$KAFKA_DIR/controller.port"
  sha256sum <"$KAFKA_PASSWORDS_FILE" | cut -d' ' -f1 >"$KAFKA_USERS_MARKER"
  log "kafka: SCRAM users ${KAFKA_USERS[*]} (passwords in $KAFKA_PASSWORDS_FILE)"
}

kafka_ready() { # pid: alive, "started" logged by this run, port accepting (fresh starts)
  alive "$1" && grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null && port_open "$KAFKA_PORT"
}

kafka_serving() { # pid: alive and accepting on its port (a broker we did not just start)
  alive "$1" && port_open "$KAFKA_PORT"
}

kafka_wait_ready() { # pid
  local pid=$1 i
  for ((i = 0; i < KAFKA_START_TIMEOUT * 4; i++)); do
    if ! alive "$pid"; then
      tail -n 40 "$KAFKA_LOG" >&2 || true
      rm -f "$KAFKA_PID_FILE"
      die "kafka exited during startup (log: $KAFKA_LOG)"
    fi
    kafka_ready "$pid" && return 0
    sleep 0.25
  done
  tail -n 40 "$KAFKA_LOG" >&2 || true
  die "kafka not ready after ${KAFKA_START_TIMEOUT}s (pid $pid, log: $KAFKA_LOG)"
}

kafka_up() {
  kafka_libs_ok || die "Kafka jars missing or stale in $KAFKA_LIBS_DIR: run deploy/infra.sh install"
  local major; major=$(java_major)
  ((major >= 17)) || die "Kafka 4 needs Java 17+ (found: ${major:-none}): run deploy/infra.sh install"
  mkdir -p "$LOG_DIR"
  kafka_passwords
  local pid
  if pid=$(kafka_pid); then
    echo "$pid" >"$KAFKA_PID_FILE"
    if ! kafka_serving "$pid"; then
      log "kafka: pid $pid is starting; waiting"
      kafka_wait_ready "$pid"
    fi
    if ! kafka_config_changed "$pid" && kafka_users_formatted; then
      log "kafka: already running (reuse), pid $pid"
      return 0
    fi
    # e.g. a broker started before SASL and ACLs: its data is kept, its settings are not
    log "kafka: running with an older configuration; restarting it with the current one"
    kafka_down
  fi
  rm -f "$KAFKA_PID_FILE"
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$p" && die "port 127.0.0.1:$p is taken by another process (another Kafka?); stop it or set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
  done
  kafka_render_config "$KAFKA_PROPS"
  kafka_format
  [[ -f $KAFKA_LOG ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
  log "kafka: starting on 127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"
  # setsid + nohup: own session, survives the calling shell; the child writes its own pid
  # (bash execs java, so $$ is the JVM's pid); no inherited descriptors (close_inherited_fds).
  kafka_command
  # shellcheck disable=SC2016
  (
    cd / && close_inherited_fds
    setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PID_FILE" "${KAFKA_CMD[@]}" \
      </dev/null >"$KAFKA_LOG" 2>&1 &
  )
  local i
  for ((i = 0; i < 40; i++)); do
    [[ -s $KAFKA_PID_FILE ]] && break
    sleep 0.05
  done
  pid=$(cat "$KAFKA_PID_FILE" 2>/dev/null || true)
  [[ -n $pid ]] || die "kafka did not start (log: $KAFKA_LOG)"
  kafka_wait_ready "$pid"
  log "kafka: ready on 127.0.0.1:$KAFKA_PORT, pid $pid (log $KAFKA_LOG)"
}

kafka_down() {
  local pid
  if ! pid=$(kafka_pid); then
    rm -f "$KAFKA_PID_FILE"
    log "kafka: not running"
    return 0
  fi
  log "kafka: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < KAFKA_STOP_TIMEOUT * 4; i++)); do
    alive "$pid" || break
    sleep 0.25
  done
  if alive "$pid"; then
    warn "kafka pid $pid still alive after ${KAFKA_STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do alive "$pid" || break; sleep 0.25; done
  fi
  rm -f "$KAFKA_PID_FILE"
  log "kafka: stopped"
}

kafka_status() {
  local pid
  if pid=$(kafka_pid); then
    local ready=no
    kafka_serving "$pid" && ready=yes
    log "kafka: running, pid $pid, 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT), ready=$ready, data $KAFKA_DATA, log $KAFKA_LOG"
    [[ $ready == yes ]]
  else
    log "kafka: stopped (data $KAFKA_DATA$([[ -f $KAFKA_DATA/meta.properties ]] || echo ', not formatted'))"
    return 1
  fi
}

# ----------------------------------------------------------------------------- subcommands

INSTALL_VERBOSE=1
say_present() { if ((INSTALL_VERBOSE)); then log "$@"; fi; }

cmd_install() {
  # PostgreSQL server binaries
  if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    say_present "postgresql: present ($(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1))"
  else
    apt_install postgresql
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || die "postgresql install did not provide initdb"
  fi
  # Java 17+
  local major; major=$(java_major)
  if ((major >= 17)); then
    say_present "java: present (major $major)"
  else
    apt_install default-jre-headless
    major=$(java_major)
    ((major >= 17)) || die "Java 17+ required, found major '$major' after install"
  fi
  # Kafka jars
  if kafka_libs_ok; then
    say_present "kafka jars: present in $KAFKA_LIBS_DIR"
  else
    command -v mvn >/dev/null 2>&1 || apt_install maven
    local tmp=$KAFKA_LIBS_DIR.tmp.$$
    rm -rf "$tmp"
    mkdir -p "$(dirname "$KAFKA_LIBS_DIR")"
    log "kafka jars: mvn dependency:copy-dependencies -> $KAFKA_LIBS_DIR"
    # maven 3.8's jansi prints stray colour codes even with -B -q: keep its output in a file
    local mvn_log=$KAFKA_LIBS_DIR.mvn.log
    if ! mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" </dev/null >"$mvn_log" 2>&1; then
      sed 's/\x1b\[[0-9;]*m//g' "$mvn_log" | tail -n 40 >&2
      rm -rf "$tmp"
      die "maven could not fetch the Kafka jars (log: $mvn_log)"
    fi
    rm -f "$mvn_log"
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "maven ran but no kafka_2.13 jar in $tmp"; }
    sha256sum <"$KAFKA_POM" | cut -d' ' -f1 >"$tmp/.tousu-pom.sha256"
    rm -rf "$KAFKA_LIBS_DIR"
    mv "$tmp" "$KAFKA_LIBS_DIR"
    log "kafka jars: $(find "$KAFKA_LIBS_DIR" -name '*.jar' | wc -l) jars ($(basename "$(ls "$KAFKA_LIBS_DIR"/kafka_2.13-*.jar)"))"
  fi
  # The monthly report: a CJK font for its charts and PDF, WeasyPrint's native libraries,
  # and pdftoppm, with which its test looks at the pages. The ops console's browser tests
  # drive Debian's headless Chromium (Playwright's own browser download does not work here).
  # The network-fault drill puts a service in a network namespace with iproute2 (ip, tc
  # netem) and reaches the broker and database from it through socat. pgBackRest: backups
  # and continuous WAL archiving (backup, restore).
  local report_packages=(fonts-wqy-microhei libpango-1.0-0 libpangoft2-1.0-0
                         libharfbuzz-subset0 poppler-utils chromium iproute2 socat pgbackrest)
  local missing=()
  for package in "${report_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  if ((${#missing[@]})); then
    apt_install "${missing[@]}"
  else
    say_present "report packages: present (${report_packages[*]})"
  fi
}

cmd_up() {
  with_lock
  # cheap when everything is there; fetches what a fresh machine lacks
  INSTALL_VERBOSE=0 cmd_install
  mkdir -p "$TOUSU_DATA_DIR" "$LOG_DIR"
  resolve_pg_paths
  pg_up
  kafka_up
  log "up: postgres 127.0.0.1:$PG_PORT db=tousu (roles intake routing sla_monitor feedback analytics; password = role name unless TOUSU_DB_PASSWORD_<ROLE>)"
  log "up: kafka   127.0.0.1:$KAFKA_PORT (TOUSU_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT; SASL SCRAM-SHA-512, passwords in $KAFKA_PASSWORDS_FILE)"
}

cmd_down() {
  with_lock
  kafka_down
  pg_down
}

cmd_status() {
  local rc=0
  pg_status || rc=3
  kafka_status || rc=3
  return $rc
}

cmd_reset() {
  with_lock
  kafka_down
  pg_down
  case "$TOUSU_DATA_DIR" in
    / | "$REPO" | "$HOME" | "$SCRIPT_DIR" | "") die "refusing to delete TOUSU_DATA_DIR=$TOUSU_DATA_DIR" ;;
  esac
  if [[ -e $TOUSU_DATA_DIR ]]; then
    log "reset: deleting $TOUSU_DATA_DIR"
    rm -rf "$TOUSU_DATA_DIR"
  fi
  if [[ -d /var/tmp/tousu-pg-$DATA_HASH ]]; then
    log "reset: deleting /var/tmp/tousu-pg-$DATA_HASH"
    rm -rf "/var/tmp/tousu-pg-$DATA_HASH"
  fi
  if [[ -n $TOUSU_PG_DATA_DIR && -e $TOUSU_PG_DATA_DIR ]]; then
    log "reset: deleting $TOUSU_PG_DATA_DIR"
    rm -rf "$TOUSU_PG_DATA_DIR"
  fi
  rm -rf "/tmp/tousu-pg-socket-$DATA_HASH"
  log "reset: done"
}

cmd_harden() { # the superuser step after the migrations; idempotent
  pg_running || die "postgres is not running: run deploy/infra.sh up first"
  pg_superuser_psql -d postgres -f - <"$HARDEN_SQL" || die "applying $HARDEN_SQL failed"
}

# ----------------------------------------------------------------------------- backups

backrest() { # pgBackRest as the cluster's OS user, on this data dir's stanza
  (cd / && "${AS_PG[@]}" pgbackrest --config="$BACKREST_CONF" --stanza=tousu "$@")
}

backrest_write_config() {
  mkdir -p "$BACKREST_DIR/repo" "$BACKREST_DIR/log" "$BACKREST_DIR/lock" "$BACKREST_DIR/spool"
  cat >"$BACKREST_CONF.new" <<EOF
# Written by deploy/infra.sh backup; its presence turns on WAL archiving for this data dir.
[global]
repo1-path=$BACKREST_DIR/repo
repo1-retention-full=2
log-path=$BACKREST_DIR/log
lock-path=$BACKREST_DIR/lock
spool-path=$BACKREST_DIR/spool
log-level-console=warn
log-level-file=info
start-fast=y
compress-type=lz4
compress-level=1

[tousu]
pg1-path=$PG_DATA
pg1-port=$PG_PORT
pg1-socket-path=$PG_SOCK_DIR
pg1-user=postgres
EOF
  mv "$BACKREST_CONF.new" "$BACKREST_CONF"
  if [[ $EUID -eq 0 ]]; then chown -R "$PG_OS_USER": "$BACKREST_DIR"; fi
  chmod 700 "$BACKREST_DIR"
}

cmd_backup() {
  with_lock
  pg_running || die "postgres is not running: run deploy/infra.sh up first"
  PG_BIN=$(pg_bin_dir)
  if [[ $(pg_superuser_psql -tA -d postgres -c 'SHOW archive_mode') != on ]]; then
    log "backup: turning on continuous WAL archiving (restarting postgres once)"
    backrest_write_config
    pg_down
    pg_up
  fi
  backrest stanza-create >/dev/null
  backrest check
  local type=${BACKUP_TYPE:-incr}
  log "backup: pgBackRest $type backup (the first one is full)"
  backrest backup --type="$type"
  backrest info | sed 's/^/[infra]   /'
}

cmd_restore() {
  with_lock
  [[ -f $BACKREST_CONF ]] || die "no backup configuration: run deploy/infra.sh backup first"
  PG_BIN=$(pg_bin_dir) || die "PostgreSQL binaries not found"
  pg_down
  # The segment in progress at the stop is not archived yet; recovery reads it from pg_wal
  # (after every archived one) so the restore reaches the last commit, not the last archive.
  local saved=$BACKREST_DIR/pg_wal.before-restore
  rm -rf "$saved"
  if [[ -d $PG_DATA/pg_wal ]]; then cp -a "$PG_DATA/pg_wal" "$saved"; fi
  # Restored into an empty data dir, as if its files were lost: everything comes from the
  # repository (with pg_wal lost too, the restore ends at the last archived segment).
  find "$PG_DATA" -mindepth 1 -delete
  log "restore: the latest backup, then every WAL segment to the end"
  backrest restore --type=default >/dev/null
  if [[ -d $saved ]]; then
    find "$saved" -maxdepth 1 -type f -name '0*' -exec cp -n -p {} "$PG_DATA/pg_wal/" \;
    rm -rf "$saved"
  fi
  pg_up
  log "restore: done, timeline $(pg_superuser_psql -tA -d postgres -c 'SELECT timeline_id FROM pg_control_checkpoint()')"
}

cmd_env() {
  echo "export TOUSU_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT"
  echo "export TOUSU_KAFKA_PASSWORDS_FILE=$KAFKA_PASSWORDS_FILE"
  local r var pw
  for r in "${ROLES[@]}"; do
    var=TOUSU_DB_PASSWORD_${r^^}
    pw=${!var:-$r}
    echo "export TOUSU_DATABASE_URL_${r^^}=postgresql+asyncpg://$r:$pw@127.0.0.1:$PG_PORT/tousu"
  done
  echo "# superuser: ${AS_PG[*]:+${AS_PG[*]} }psql -h $PG_SOCK_DIR -p $PG_PORT -U postgres -d tousu"
}

usage() {
  sed -n '2,/^set -euo/p' "$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")" | sed -e '$d' -e 's/^# \{0,1\}//'
}

cd /
case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  env) cmd_env ;;
  harden) cmd_harden ;;
  backup) cmd_backup ;;
  restore) cmd_restore ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
