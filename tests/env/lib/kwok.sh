# kwok $KWOK_VERSION from the Go module proxy: the controller that plays the kubelet for one fake
# node ($KWOK_NODE), so scheduled pods become Running/Ready without containers.

KWOK_PEER=$PEERS_DIR/kwok-$KWOK_VERSION
KWOK_BIN=$KWOK_PEER/bin
KWOK_MODULE=sigs.k8s.io/kwok
KWOK_NODE=kwok-node-0
# The stage files (fast node start-up, node heartbeat with a lease, pods ready/complete/delete)
# ship in the module zip; the build copies them next to the binary.
KWOK_STAGES=(node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml)

kwok_built() { [ -x "$KWOK_BIN/kwok" ] && [ -s "$KWOK_PEER/stages.yaml" ]; }

# The stage files come from the module's own directory ($1).
kwok_go_build() {
  go build -trimpath -ldflags "-s -w" -o "$KWOK_BIN/kwok" "$KWOK_MODULE/cmd/kwok"
  local f
  for f in "${KWOK_STAGES[@]}"; do
    echo ---
    cat "$1/kustomize/stage/$f"
  done >"$KWOK_PEER/stages.yaml"
}

kwok_build() { go_peer_build kwok "$KWOK_MODULE" "$KWOK_VERSION" "$KWOK_PEER" kwok_built kwok_go_build; }

# Ready, and none of the node lifecycle controller's taints (not-ready, unreachable, ...) left,
# so the scheduler will place pods on it.
kwok_node_ready() {
  local state
  state=$("$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" get node "$KWOK_NODE" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}' 2>/dev/null) || return 1
  [[ $state == True* && $state != *node.kubernetes.io/* ]]
}

kwok_ready() {
  is_running kwok && curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz" && kwok_node_ready
}

# The fake node: only nodes with this annotation are kwok's. Nodes may set their status on
# create, which is how the node gets its capacity and allocatable resources.
kwok_node_manifest() {
  cat <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $KWOK_NODE
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: $KWOK_NODE
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
status:
  allocatable:
    cpu: "32"
    memory: 128Gi
    pods: "110"
  capacity:
    cpu: "32"
    memory: 128Gi
    pods: "110"
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
YAML
}

kwok_up() {
  kwok_built || die "kwok: binary or stages missing in $KWOK_PEER; run tests/env/build-peers"
  echo "export KWOK_NODE=$KWOK_NODE" >"$ENV_FILE.kwok"
  if kwok_ready; then
    log "kwok already up (node $KWOK_NODE Ready; health 127.0.0.1:$KWOK_PORT)"
    return 0
  fi
  stop_bg kwok
  start_bg kwok "$KWOK_BIN/kwok" --kubeconfig="$KUBECONFIG_FILE" --config="$KWOK_PEER/stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --node-lease-duration-seconds=40 \
    --server-address="127.0.0.1:$KWOK_PORT" --cidr=10.0.1.0/24
  kwok_node_manifest | "$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" apply -f - >>"$LOG_DIR/kwok.log" 2>&1 \
    || component_failed kwok "could not create node $KWOK_NODE"
  kube_wait 60 kwok kwok_ready "node $KWOK_NODE Ready and kwok's /healthz"
  log "kwok up: node $KWOK_NODE Ready (health 127.0.0.1:$KWOK_PORT)"
}

kwok_down() { stop_bg kwok; }
