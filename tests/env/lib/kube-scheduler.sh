# kube-scheduler (built with kube-apiserver): binds pods to the kwok node. Admin kubeconfig,
# loopback only.

kube-scheduler_build() {
  kube_built || die "kube-scheduler: not built; kube-apiserver's build makes it (tests/env/build-peers)"
  log "kube-scheduler $KUBE_VERSION built with kube-apiserver in $KUBE_BIN"
}

kube-scheduler_ready() {
  is_running kube-scheduler \
    && curl -fsS -k --max-time 2 "https://127.0.0.1:$KUBE_SCHEDULER_PORT/healthz" 2>/dev/null | grep -qx ok
}

kube-scheduler_up() {
  kube_built || die "kube-scheduler: binary missing in $KUBE_BIN; run tests/env/build-peers"
  if kube-scheduler_ready; then
    log "kube-scheduler already up (health 127.0.0.1:$KUBE_SCHEDULER_PORT)"
    return 0
  fi
  stop_bg kube-scheduler
  start_bg kube-scheduler "$KUBE_BIN/kube-scheduler" --kubeconfig="$KUBECONFIG_FILE" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --bind-address=127.0.0.1 --secure-port="$KUBE_SCHEDULER_PORT" \
    --cert-dir="$KUBE_DIR/scheduler-certs" --leader-elect=false --profiling=false --v=1
  kube_wait 60 kube-scheduler kube-scheduler_ready "GET https://127.0.0.1:$KUBE_SCHEDULER_PORT/healthz"
  log "kube-scheduler up (health 127.0.0.1:$KUBE_SCHEDULER_PORT)"
}

kube-scheduler_down() { stop_bg kube-scheduler; }
