# kube-controller-manager (built with kube-apiserver): Deployments -> ReplicaSets -> Pods, garbage
# collection, namespace deletion, default service accounts. Admin kubeconfig, loopback only.

kube-controller-manager_build() {
  kube_built || die "kube-controller-manager: not built; kube-apiserver's build makes it (tests/env/build-peers)"
  log "kube-controller-manager $KUBE_VERSION built with kube-apiserver in $KUBE_BIN"
}

kube-controller-manager_ready() {
  is_running kube-controller-manager \
    && curl -fsS -k --max-time 2 "https://127.0.0.1:$KUBE_CONTROLLER_MANAGER_PORT/healthz" 2>/dev/null | grep -qx ok
}

kube-controller-manager_up() {
  kube_built || die "kube-controller-manager: binary missing in $KUBE_BIN; run tests/env/build-peers"
  if kube-controller-manager_ready; then
    log "kube-controller-manager already up (health 127.0.0.1:$KUBE_CONTROLLER_MANAGER_PORT)"
    return 0
  fi
  stop_bg kube-controller-manager
  start_bg kube-controller-manager "$KUBE_BIN/kube-controller-manager" --kubeconfig="$KUBECONFIG_FILE" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --bind-address=127.0.0.1 --secure-port="$KUBE_CONTROLLER_MANAGER_PORT" \
    --cert-dir="$KUBE_DIR/controller-manager-certs" --leader-elect=false \
    --service-account-private-key-file="$KUBE_PKI/sa.key" --root-ca-file="$KUBE_PKI/ca.crt" \
    --use-service-account-credentials=false --service-cluster-ip-range=10.0.0.0/24 \
    --profiling=false --v=1
  kube_wait 60 kube-controller-manager kube-controller-manager_ready \
    "GET https://127.0.0.1:$KUBE_CONTROLLER_MANAGER_PORT/healthz"
  log "kube-controller-manager up (health 127.0.0.1:$KUBE_CONTROLLER_MANAGER_PORT)"
}

kube-controller-manager_down() { stop_bg kube-controller-manager; }
