# etcd $ETCD_VERSION from the Go module proxy (Debian's 3.4 is too old for Kubernetes 1.37):
# one member, plain HTTP on 127.0.0.1, data under the run dir, no fsync (test data only).

ETCD_PEER=$PEERS_DIR/etcd-$ETCD_VERSION
ETCD_BIN=$ETCD_PEER/bin
ETCD_MODULE=go.etcd.io/etcd/server/v3
ETCD_URL=http://127.0.0.1:$ETCD_CLIENT_PORT

etcd_built() { [ -x "$ETCD_BIN/etcd" ]; }

# The server module's main package is its root. Its replace directives (../api, ...) only apply
# inside etcd's own repository, so a wrapper module requiring it gets the published siblings.
etcd_go_build() { go build -trimpath -ldflags "-s -w" -o "$ETCD_BIN/etcd" "$ETCD_MODULE"; }

etcd_build() { go_peer_build etcd "$ETCD_MODULE" "$ETCD_VERSION" "$ETCD_PEER" etcd_built etcd_go_build; }

etcd_ready() {
  is_running etcd && curl -fsS --max-time 2 "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"'
}

etcd_up() {
  etcd_built || die "etcd: $ETCD_BIN/etcd missing; run tests/env/build-peers"
  if etcd_ready; then
    log "etcd already up at $ETCD_URL"
    return 0
  fi
  stop_bg etcd
  mkdir -p "$RUN_DIR/etcd"
  chmod 700 "$RUN_DIR/etcd"
  start_bg etcd "$ETCD_BIN/etcd" --name=local --data-dir="$RUN_DIR/etcd" \
    --listen-client-urls="$ETCD_URL" --advertise-client-urls="$ETCD_URL" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="local=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync=true --log-level=warn
  wait_until 60 etcd_ready || component_failed etcd "GET $ETCD_URL/health not healthy after 60s"
  log "etcd up at $ETCD_URL"
}

etcd_down() { stop_bg etcd; }
