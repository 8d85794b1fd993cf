# PostgreSQL from Debian: its own data dir, UTC, loopback only. The engine's migrations create
# btree_gist themselves (a trusted extension, so the database owner may), so we only check it ships.

PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_DB=hatchet
PG_USER=hatchet
PG_PASSWORD=hatchet
DATABASE_URL="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable"

postgres_build() {
  if [ -x "$PG_BIN/postgres" ] && [ -f "/usr/share/postgresql/$PG_MAJOR/extension/btree_gist.control" ]; then
    log "postgresql-$PG_MAJOR already installed"
    return 0
  fi
  step "install postgresql-$PG_MAJOR (Debian)" apt_install "postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR"
}

# The server refuses to run as root, so root runs it as the Debian 'postgres' user
# (setpriv execs in place, so the pid we record is the postmaster's own).
PG_RUNAS=()
if as_root; then
  PG_RUNAS=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi

# Where the cluster lives: under the run dir, unless the postgres user cannot reach it
# (a private checkout), in which case a private dir elsewhere, linked from the run dir.
postgres_data_dir() {
  local want=$RUN_DIR/postgres
  if [ -L "$want" ]; then
    readlink "$want"
    return
  fi
  if ! as_root || "${PG_RUNAS[@]}" test -x "$RUN_DIR"; then
    echo "$want"
    return
  fi
  local alt
  alt=$(mktemp -d /tmp/hatchet-operator-pg.XXXXXX)
  ln -s "$alt" "$want"
  echo "$alt"
}

pg_psql() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}

postgres_ready() {
  is_running postgres && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d "$PG_DB" -U "$PG_USER"
}

postgres_up() {
  [ -x "$PG_BIN/postgres" ] || die "postgres: $PG_BIN/postgres missing; run tests/env/build-peers"
  if postgres_ready; then
    log "postgres already up on 127.0.0.1:$PG_PORT"
    return 0
  fi
  mkdir -p "$RUN_DIR"
  local data
  data=$(postgres_data_dir)
  mkdir -p "$LOG_DIR"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    as_root && chown postgres:postgres "$data"
    chmod 700 "$data"
    "${PG_RUNAS[@]}" "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$LOG_DIR/postgres-initdb.log" 2>&1 \
      || component_failed postgres-initdb "initdb failed"
  fi
  start_bg postgres "${PG_RUNAS[@]}" "$PG_BIN/postgres" -D "$data" \
    -c listen_addresses=127.0.0.1 -c port="$PG_PORT" -c unix_socket_directories= \
    -c timezone=UTC -c log_timezone=UTC -c max_connections=300 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off
  wait_until 60 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres \
    || component_failed postgres "not accepting connections after 60s"
  if ! pg_psql -tAc "select 1 from pg_roles where rolname = '$PG_USER'" | grep -q 1; then
    pg_psql -c "create role $PG_USER login password '$PG_PASSWORD'"
  fi
  if ! pg_psql -tAc "select 1 from pg_database where datname = '$PG_DB'" | grep -q 1; then
    pg_psql -c "create database $PG_DB owner $PG_USER"
    pg_psql -c "alter database $PG_DB set timezone to 'UTC'"
  fi
  postgres_ready || component_failed postgres "database $PG_DB not ready"
  log "postgres up on 127.0.0.1:$PG_PORT"
}

# Fast shutdown: SIGINT rolls back open transactions instead of waiting for clients.
postgres_down() { stop_bg postgres INT; }
