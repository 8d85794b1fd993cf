# A real node: kubelet $KUBE_VERSION (built with the control plane) on containerd, registered
# as $REAL_NODE with the address $NODE_IP on the pod bridge. It is tainted, so only pods that
# tolerate hatchet.run/real-node and select its hostname run here; everything else keeps
# landing on the kwok node. Its client identity is system:node:$REAL_NODE signed by the world's
# CA; its own API (exec, logs, port-forward) takes only clients with a certificate of that CA
# and asks the apiserver what they may do.

REAL_NODE=real-node-0
REAL_NODE_TAINT=hatchet.run/real-node
KUBELET_DIR=$RUN_DIR/kubelet
KUBELET_ROOT=$KUBELET_DIR/root
KUBELET_KUBECONFIG=$KUBELET_DIR/kubelet.kubeconfig
PAUSE_DIR=$KUBE_PEER/pause-$PAUSE_VERSION
OCI_IMAGE=$ENV_DIR/lib/oci-image.py

pause_built() { [ -x "$PAUSE_DIR/pause" ] && [ -s "$PAUSE_DIR/pause.oci.tar" ]; }

# The sandbox image from the Kubernetes release's own source (build/pause/linux/pause.c): a
# static binary that waits for signals, as uid 65535, no registry needed.
pause_build() {
  if pause_built; then
    log "pause $PAUSE_VERSION already built in $PAUSE_DIR"
    return 0
  fi
  command -v gcc >/dev/null || step "install gcc (Debian)" apt_install gcc libc6-dev
  local json dir
  json=$(cd "$RUN_DIR" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION") \
    || die "pause: k8s.io/kubernetes@$KUBE_VERSION is not served"
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
  [ -f "$dir/build/pause/linux/pause.c" ] || die "pause: build/pause/linux/pause.c not in $dir"
  mkdir -p "$PAUSE_DIR"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-hatchet" -o "$PAUSE_DIR/pause" "$dir/build/pause/linux/pause.c" \
    || die "pause: gcc failed"
  python3 "$OCI_IMAGE" --out "$PAUSE_DIR/pause.oci" --archive "$PAUSE_DIR/pause.oci.tar" --name "$PAUSE_IMAGE" \
    --user 65535:65535 --entrypoint '["/pause"]' --file "$PAUSE_DIR/pause:/pause:0755" >/dev/null \
    || die "pause: image assembly failed"
  rm -rf "$PAUSE_DIR/pause.oci"
}

kubelet_build() {
  kube_built || die "kubelet: not built; kube-apiserver's build makes it (tests/env/build-peers)"
  pause_build
  log "kubelet $KUBE_VERSION built with kube-apiserver in $KUBE_BIN; pause image $PAUSE_IMAGE"
}

kubelet_node_ready() {
  local state
  state=$("$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" get node "$REAL_NODE" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) || return 1
  [ "$state" = True ]
}

kubelet_ready() {
  is_running kubelet && curl -fsS --max-time 2 "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" 2>/dev/null | grep -qx ok \
    && kubelet_node_ready
}

# The node's identity: a client certificate (CN=system:node:NAME, O=system:nodes) and a
# kubeconfig; the apiserver authorizes by RBAC only, so the group is bound to system:node, and to
# system:auth-delegator so the kubelet can ask the apiserver who its own clients are.
kubelet_identity() {
  kube_cert "node-$REAL_NODE" "/O=system:nodes/CN=system:node:$REAL_NODE" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  kube_kubeconfig "$KUBELET_KUBECONFIG" node "node-$REAL_NODE"
  "$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" apply --server-side --field-manager=tests-env -f - >>"$LOG_DIR/kubelet.log" 2>&1 <<YAML \
    || component_failed kubelet "could not bind the node's RBAC roles"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "tests-env:nodes"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:nodes"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "tests-env:nodes-auth-delegator"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:nodes"}]
YAML
}

kubelet_config() {
  cat >"$KUBELET_DIR/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This host has hybrid cgroups (v1 hierarchies): 1.37 still supports them when told to.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $KUBE_PKI/ca.crt}
authorization: {mode: Webhook}
podLogsDir: $KUBELET_DIR/pod-logs
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
registerWithTaints:
  - {key: $REAL_NODE_TAINT, value: "true", effect: NoSchedule}
maxPods: 50
serializeImagePulls: false
YAML
}

kubelet_up() {
  kube_built && pause_built || die "kubelet: binaries missing; run tests/env/build-peers"
  containerd_ready || die "kubelet: containerd is not up (tests/env/up starts it first)"
  {
    echo "# The real node (kubelet + containerd): pods opt in with the toleration and nodeSelector below."
    echo "export REAL_NODE=$REAL_NODE"
    echo "export REAL_NODE_TAINT=$REAL_NODE_TAINT"
    echo "export WORKER_IMAGE=$WORKER_IMAGE"
    echo "export OPERATOR_IMAGE=$OPERATOR_IMAGE"
    echo "export IMAGES_DIR=$IMAGES_DIR"
  } >"$ENV_FILE.kubelet"
  if kubelet_ready; then
    log "kubelet already up (node $REAL_NODE Ready at $NODE_IP:$KUBELET_PORT)"
    return 0
  fi
  stop_bg kubelet
  mkdir -p "$KUBELET_ROOT" "$KUBELET_DIR/pod-logs" "$KUBELET_DIR/certs"
  chmod 700 "$KUBELET_DIR"
  kubelet_identity
  kubelet_config
  ctr_ -n k8s.io images import --no-unpack=false "$PAUSE_DIR/pause.oci.tar" >>"$LOG_DIR/kubelet.log" 2>&1 \
    || component_failed kubelet "could not import the pause image into containerd"
  start_bg kubelet "$KUBE_BIN/kubelet" --config="$KUBELET_DIR/config.yaml" --kubeconfig="$KUBELET_KUBECONFIG" \
    --root-dir="$KUBELET_ROOT" --cert-dir="$KUBELET_DIR/certs" --hostname-override="$REAL_NODE" \
    --node-ip="$NODE_IP" --v=1
  kube_wait 90 kubelet kubelet_ready "node $REAL_NODE Ready and the kubelet's /healthz"
  log "kubelet up: node $REAL_NODE Ready at $NODE_IP:$KUBELET_PORT (tainted $REAL_NODE_TAINT)"
}

# What the kubelet changed on the host, undone: its sysctls (to the values before up), its
# iptables chains, its cgroups, its mounts and the paths it created.
kubelet_down() {
  stop_bg kubelet
  # Containers outlive the kubelet: containerd_down kills them; the kubelet's volume mounts
  # (secrets, tokens) and its root dir's self bind-mount go here.
  ! containerd_ready || containerd_kill_pods
  unmount_under "$KUBELET_ROOT"
  local s v
  if [ -f "$HOST_BEFORE" ]; then
    for s in "${NODE_SYSCTLS[@]}"; do
      v=$(sed -n "s/^sysctl $s=//p" "$HOST_BEFORE")
      [ -z "$v" ] || [ "$(sysctl -n "$s")" = "$v" ] || sysctl -qw "$s=$v"
    done
  fi
  kubelet_undo_host
  node_remove_created_paths /var/lib/kubelet /var/log/containers /var/log/pods
}

# kubelet_undo_host: the kubelet's iptables chains (v4 and v6) and its cgroups (bottom-up).
kubelet_undo_host() {
  local t c
  for t in iptables ip6tables; do
    while "$t" -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    while "$t" -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    for c in filter:KUBE-FIREWALL filter:KUBE-KUBELET-CANARY mangle:KUBE-KUBELET-CANARY nat:KUBE-KUBELET-CANARY \
      mangle:KUBE-IPTABLES-HINT nat:KUBE-IPTABLES-HINT filter:KUBE-IPTABLES-HINT; do
      "$t" -t "${c%%:*}" -F "${c#*:}" 2>/dev/null && "$t" -t "${c%%:*}" -X "${c#*:}" 2>/dev/null || true
    done
  done
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/k8s.io; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
