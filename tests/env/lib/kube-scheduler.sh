# kube-scheduler (built with kube-apiserver): binds pods to the kwok node. Admin kubeconfig,
# loopback only.

kube-scheduler_build() { kube_built || die "kube-scheduler: built with kube-apiserver; run tests/env/build-peers"; }

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
  wait_until 60 kube-scheduler_ready \
    || component_failed kube-scheduler "GET https://127.0.0.1:$KUBE_SCHEDULER_PORT/healthz not ok after 60s"
  log "kube-scheduler up (health 127.0.0.1:$KUBE_SCHEDULER_PORT)"
}

kube-scheduler_down() { stop_bg kube-scheduler; }
