# The real node's pod network: the bridge $POD_BRIDGE with the node's address $NODE_IP (the CNI
# bridge for pods, no masquerade, no default route: nothing a pod sends can leave the machine),
# and the two doors pods have to the world on this machine, both on $NODE_IP:
#  - the Hatchet engine's gRPC (loopback-only) through a forwarder on :$HATCHET_GRPC_PORT; its
#    REST (hatchet-lite listens on every interface) directly on :$HATCHET_RUNTIME_PORT;
#  - the apiserver through a forwarder on :$KUBE_APISERVER_PORT, and in-cluster clients'
#    `kubernetes` Service ($KUBERNETES_SERVICE_IP:443, there is no kube-proxy) DNATed to it.
# The host is snapshotted before the first change, and `down` checks it is back as it was.

# The host's state from before the first real node started, kept machine-wide (under /run, so
# a reboot forgets it) rather than per checkout: a checkout whose world was killed without
# `down` leaves it for the next one, which then restores the true originals.
HOST_STATE_DIR=/run/hatchet-operator
HOST_BEFORE=$HOST_STATE_DIR/host-before
POD_CHAIN=HATCHET-PODS
# What the kubelet, containerd and CNI create outside their own directories (removed by down
# when up found them absent).
NODE_HOST_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /run/netns /var/lib/cni /run/containerd
  /etc/cni /opt/cni)
NODE_SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward)

pod-network_build() {
  local missing=() t
  for t in ip:iproute2 iptables:iptables socat:socat; do
    command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then step "install ${missing[*]} (Debian)" apt_install "${missing[@]}"; fi
  log "pod network tools present (ip, iptables, socat)"
}

# host_state: what the real node may change on the host, one fact a line (compared by down).
host_state() {
  local s p t
  for s in "${NODE_SYSCTLS[@]}"; do echo "sysctl $s=$(sysctl -n "$s")"; done
  ip -o link show | awk -F': ' '{print "link " $2}' | sed 's/@.*//' | sort
  for t in filter nat mangle; do
    iptables -t "$t" -S 2>/dev/null | sed "s/^/iptables $t /"
    ip6tables -t "$t" -S 2>/dev/null | sed "s/^/ip6tables $t /"
  done | sort
  for p in "${NODE_HOST_PATHS[@]}"; do [ ! -e "$p" ] || echo "path $p"; done
  awk '{print "mount " $2}' /proc/mounts | grep -v ' /proc/' | sort
  for t in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/k8s.io; do [ ! -d "$t" ] || echo "cgroup $t"; done
}

# host_check: exit 0 when the host is as the snapshot up took (which is then kept as
# host-before.last); else print what differs and keep the snapshot.
host_check() {
  [ -f "$HOST_BEFORE" ] || return 0
  local now
  now=$(host_state)
  if diff <(sort "$HOST_BEFORE") <(sort <<<"$now") >"$HOST_STATE_DIR/host-diff" 2>&1; then
    # Kept for tests/env/host-check, which compares the host with it again.
    mv "$HOST_BEFORE" "$HOST_BEFORE.last"
    rm -f "$HOST_STATE_DIR/host-diff"
    return 0
  fi
  log "the host differs from before up (< before, > now):"
  sed 's/^/[env]   /' "$HOST_STATE_DIR/host-diff" >&2
  return 1
}

pod_forward_up() {
  local name=$1 port=$2
  is_running "$name" && return 0
  stop_bg "$name"
  start_bg "$name" socat "TCP-LISTEN:$port,bind=$NODE_IP,fork,reuseaddr" "TCP:127.0.0.1:$port"
}

pod-network_ready() {
  ip -4 -o addr show dev "$POD_BRIDGE" 2>/dev/null | grep -q " $NODE_IP/" \
    && is_running pod-network-engine && is_running pod-network-apiserver
}

pod-network_up() {
  as_root || die "pod-network: the real node needs root (bridge, iptables, mounts)"
  mkdir -p "$HOST_STATE_DIR"
  # What a node that was not stopped left goes first (never under a running node of ours).
  is_running kubelet || is_running containerd || pod_network_leftovers
  [ -f "$HOST_BEFORE" ] || host_state >"$HOST_BEFORE"
  # Run dirs of nodes started since the snapshot: where a killed node's mounts are.
  grep -qxF "$RUN_DIR" "$HOST_STATE_DIR/run-dirs" 2>/dev/null || echo "$RUN_DIR" >>"$HOST_STATE_DIR/run-dirs"
  if ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
    ip link add "$POD_BRIDGE" type bridge || component_failed pod-network "cannot create bridge $POD_BRIDGE"
  fi
  ip -4 -o addr show dev "$POD_BRIDGE" | grep -q " $NODE_IP/" || ip addr add "$NODE_IP/${POD_SUBNET#*/}" dev "$POD_BRIDGE"
  ip link set "$POD_BRIDGE" up
  # Our own chains, jumped to only for traffic from the bridge: the kubernetes Service goes to
  # the apiserver's door, and nothing from a pod is ever forwarded (ip_forward is off as well).
  iptables -t nat -N "$POD_CHAIN" 2>/dev/null || iptables -t nat -F "$POD_CHAIN"
  iptables -t nat -A "$POD_CHAIN" -d "$KUBERNETES_SERVICE_IP/32" -p tcp --dport 443 \
    -j DNAT --to-destination "$NODE_IP:$KUBE_APISERVER_PORT"
  iptables -t nat -C PREROUTING -i "$POD_BRIDGE" -j "$POD_CHAIN" 2>/dev/null \
    || iptables -t nat -A PREROUTING -i "$POD_BRIDGE" -j "$POD_CHAIN"
  iptables -N "$POD_CHAIN" 2>/dev/null || iptables -F "$POD_CHAIN"
  iptables -A "$POD_CHAIN" -j DROP
  iptables -C FORWARD -i "$POD_BRIDGE" -j "$POD_CHAIN" 2>/dev/null || iptables -I FORWARD -i "$POD_BRIDGE" -j "$POD_CHAIN"
  pod_forward_up pod-network-engine "$HATCHET_GRPC_PORT"
  pod_forward_up pod-network-apiserver "$KUBE_APISERVER_PORT"
  wait_until 10 pod-network_ready || component_failed pod-network-engine "forwarders not running"
  {
    echo "# The real node's pod network: pods reach the engine and the apiserver on NODE_IP."
    echo "export NODE_IP=$NODE_IP"
    echo "export POD_BRIDGE=$POD_BRIDGE"
    echo "export POD_SUBNET=$POD_SUBNET"
    echo "export POD_ENGINE_HOST_PORT=$NODE_IP:$HATCHET_GRPC_PORT"
    echo "export POD_ENGINE_SERVER_URL=http://$NODE_IP:$HATCHET_RUNTIME_PORT"
    echo "export POD_APISERVER_URL=https://$NODE_IP:$KUBE_APISERVER_PORT"
  } >"$ENV_FILE.pod-network"
  log "pod network up: bridge $POD_BRIDGE $NODE_IP, engine and apiserver forwarded for pods"
}

# pod_network_leftovers: a real node whose processes were killed without `down` (from this
# checkout or another) leaves a bridge, chains, namespaces and cgroups behind; they go before
# this node starts (and before a first snapshot), so `down` can bring the host back to it.
pod_network_leftovers() {
  touch "$HOST_STATE_DIR/run-dirs"
  if ip link show "$POD_BRIDGE" >/dev/null 2>&1 || iptables -S KUBE-FIREWALL >/dev/null 2>&1 \
    || compgen -G '/run/netns/cni-*' >/dev/null || [ -s "$HOST_STATE_DIR/run-dirs" ]; then
    log "removing what a real node that was not stopped left behind"
    stop_bg pod-network-engine
    stop_bg pod-network-apiserver
    containerd_kill_shims
    local d
    while read -r d; do
      [ -z "$d" ] || unmount_under "$d/kubelet/root" "$d/containerd"
    done <"$HOST_STATE_DIR/run-dirs"
    containerd_remove_netns
    kubelet_undo_host
    pod_network_undo
    : >"$HOST_STATE_DIR/run-dirs"
  fi
}

# pod_network_undo: our iptables chains and the bridge.
pod_network_undo() {
  while iptables -t nat -D PREROUTING -i "$POD_BRIDGE" -j "$POD_CHAIN" 2>/dev/null; do :; done
  iptables -t nat -F "$POD_CHAIN" 2>/dev/null && iptables -t nat -X "$POD_CHAIN"
  while iptables -D FORWARD -i "$POD_BRIDGE" -j "$POD_CHAIN" 2>/dev/null; do :; done
  iptables -F "$POD_CHAIN" 2>/dev/null && iptables -X "$POD_CHAIN"
  if ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
    ip link del "$POD_BRIDGE" && log "bridge $POD_BRIDGE removed"
  fi
}

pod-network_down() {
  stop_bg pod-network-engine
  stop_bg pod-network-apiserver
  pod_network_undo
  if [ -f "$HOST_STATE_DIR/run-dirs" ]; then
    grep -vxF "$RUN_DIR" "$HOST_STATE_DIR/run-dirs" >"$HOST_STATE_DIR/run-dirs.tmp" || true
    mv "$HOST_STATE_DIR/run-dirs.tmp" "$HOST_STATE_DIR/run-dirs"
  fi
  host_check || log "warning: tests/env/host-check will fail until the differences above are undone"
}
