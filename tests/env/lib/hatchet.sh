# The real Hatchet engine (hatchet-lite), built from the Go module proxy at $HATCHET_VERSION.

HATCHET_PEER=$PEERS_DIR/hatchet-$HATCHET_VERSION
HATCHET_BIN=$HATCHET_PEER/bin
HATCHET_MODULE=github.com/hatchet-dev/hatchet
HATCHET_CMDS=(hatchet-lite hatchet-admin hatchet-migrate)
# The tenant that `hatchet-admin quickstart` seeds.
HATCHET_TENANT_ID=707d0855-80ab-4e1f-a156-f1c4546cbf52
HATCHET_SERVER_URL=http://127.0.0.1:$HATCHET_RUNTIME_PORT
HATCHET_GRPC_ADDRESS=127.0.0.1:$HATCHET_GRPC_PORT

hatchet_built() {
  local c
  for c in "${HATCHET_CMDS[@]}"; do [ -x "$HATCHET_BIN/$c" ] || return 1; done
}

hatchet_go_build() {
  local pkgs=() c
  for c in "${HATCHET_CMDS[@]}"; do pkgs+=("$HATCHET_MODULE/cmd/$c"); done
  go build -trimpath -ldflags "-s -w -X main.Version=$HATCHET_VERSION" -o "$HATCHET_BIN/" "${pkgs[@]}"
}

hatchet_build() { go_peer_build hatchet "$HATCHET_MODULE" "$HATCHET_VERSION" "$HATCHET_PEER" hatchet_built hatchet_go_build; }

# The engine's configuration: everything on loopback, Postgres as message queue, plaintext gRPC.
hatchet_env() {
  export DATABASE_URL
  export SERVER_URL=$HATCHET_SERVER_URL
  export SERVER_PORT=$HATCHET_API_PORT
  export SERVER_GRPC_PORT=$HATCHET_GRPC_PORT
  export SERVER_GRPC_BIND_ADDRESS=127.0.0.1
  export SERVER_GRPC_BROADCAST_ADDRESS=$HATCHET_GRPC_ADDRESS
  export SERVER_GRPC_INSECURE=t
  export SERVER_INTERNAL_CLIENT_INTERNAL_GRPC_BROADCAST_ADDRESS=$HATCHET_GRPC_ADDRESS
  export SERVER_HEALTHCHECK_PORT=$HATCHET_HEALTH_PORT
  export SERVER_AUTH_COOKIE_DOMAIN=127.0.0.1
  export SERVER_AUTH_COOKIE_INSECURE=t
  export SERVER_AUTH_SET_EMAIL_VERIFIED=t
  export SERVER_SECURITY_CHECK_ENABLED=false
  export SERVER_MSGQUEUE_KIND=postgres
  export SERVER_OBSERVABILITY_ENABLED=t
  export SERVER_LOGGER_LEVEL=${SERVER_LOGGER_LEVEL:-warn}
  export SERVER_LOGGER_FORMAT=console
  export DATABASE_LOGGER_LEVEL=${DATABASE_LOGGER_LEVEL:-warn}
  export LITE_STATIC_ASSET_DIR=$RUN_DIR/hatchet/static
  export LITE_FRONTEND_PORT=$HATCHET_FRONTEND_PORT
  export LITE_RUNTIME_PORT=$HATCHET_RUNTIME_PORT
}

hatchet_ready() {
  is_running hatchet && curl -fsS -o /dev/null --max-time 2 "$HATCHET_SERVER_URL/api/ready"
}

# One-time set-up of a fresh database: schema, keys and seed (admin user, default tenant), token.
hatchet_init() {
  local dir=$RUN_DIR/hatchet
  mkdir -p "$dir/static" "$LOG_DIR"
  [ -f "$dir/static/index.html" ] || printf '<!doctype html><title>hatchet-lite</title>\n' >"$dir/static/index.html"
  (cd "$dir" && "$HATCHET_BIN/hatchet-migrate") >>"$LOG_DIR/hatchet-init.log" 2>&1 \
    || component_failed hatchet-init "hatchet-migrate failed"
  if [ ! -f "$dir/config/server.yaml" ]; then
    (cd "$dir" && "$HATCHET_BIN/hatchet-admin" quickstart --config "$dir/config" --skip certs \
      --generated-config-dir "$dir/config" --overwrite=false) >>"$LOG_DIR/hatchet-init.log" 2>&1 \
      || component_failed hatchet-init "hatchet-admin quickstart failed"
  fi
  if [ ! -s "$dir/token" ]; then
    local token
    token=$(cd "$dir" && "$HATCHET_BIN/hatchet-admin" token create --config "$dir/config" \
      --tenant-id "$HATCHET_TENANT_ID" --name local-tests 2>>"$LOG_DIR/hatchet-init.log" | grep -o 'ey[A-Za-z0-9_.-]*' | tail -n 1) \
      || true
    [ -n "$token" ] || component_failed hatchet-init "hatchet-admin token create printed no token"
    (umask 077 && printf '%s\n' "$token" >"$dir/token")
  fi
}

hatchet_up() {
  hatchet_built || die "hatchet: binaries missing in $HATCHET_BIN; run tests/env/build-peers"
  hatchet_env
  if hatchet_ready; then
    log "hatchet already up at $HATCHET_SERVER_URL (gRPC $HATCHET_GRPC_ADDRESS)"
  else
    stop_bg hatchet
    hatchet_init
    start_bg hatchet "$HATCHET_BIN/hatchet-lite" --config "$RUN_DIR/hatchet/config"
    wait_until 120 hatchet_ready || component_failed hatchet "GET $HATCHET_SERVER_URL/api/ready not 200 after 120s"
    log "hatchet up at $HATCHET_SERVER_URL (gRPC $HATCHET_GRPC_ADDRESS)"
  fi
  hatchet_write_env
}

hatchet_write_env() {
  local token
  token=$(cat "$RUN_DIR/hatchet/token")
  (
    umask 077
    {
      echo "# Written by tests/env/up: source it to reach the local Hatchet engine."
      echo "export HATCHET_CLIENT_TOKEN=$token"
      echo "export HATCHET_CLIENT_HOST_PORT=$HATCHET_GRPC_ADDRESS"
      echo "export HATCHET_CLIENT_SERVER_URL=$HATCHET_SERVER_URL"
      echo "export HATCHET_CLIENT_TLS_STRATEGY=none"
      echo "export HATCHET_CLIENT_TENANT_ID=$HATCHET_TENANT_ID"
      echo "export HATCHET_ENGINE_VERSION=$HATCHET_VERSION"
      echo "export HATCHET_DATABASE_URL='$DATABASE_URL'"
    } >"$ENV_FILE.hatchet"
  )
}

hatchet_down() { stop_bg hatchet; }
