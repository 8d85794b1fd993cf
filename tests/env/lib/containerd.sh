# containerd $CONTAINERD_VERSION from the Go module proxy (Debian's 1.6 lacks the CRI
# RuntimeConfig call kubelet 1.38 will require) with Debian's runc and CNI plugins: the real
# node's container runtime. Everything it keeps (root, state, sockets, runc state) lives under
# the run dir; no system-wide containerd is touched.

CONTAINERD_PEER=$PEERS_DIR/containerd-$CONTAINERD_VERSION
CONTAINERD_BIN=$CONTAINERD_PEER/bin
CONTAINERD_MODULE=github.com/containerd/containerd/v2
CONTAINERD_CMDS=(containerd containerd-shim-runc-v2 ctr)
CONTAINERD_DIR=$RUN_DIR/containerd
CONTAINERD_SOCK=$CONTAINERD_DIR/containerd.sock
CNI_CONF_DIR=$CONTAINERD_DIR/cni-conf
CNI_IPAM_DIR=$CONTAINERD_DIR/cni-ipam
RUNC=/usr/sbin/runc
CNI_BIN_DIR=/usr/lib/cni
# The sandbox ("pause") image, built locally by kubelet_build: there is no registry to pull from.
PAUSE_IMAGE=hatchet.local/pause:$PAUSE_VERSION

containerd_built() {
  local c
  for c in "${CONTAINERD_CMDS[@]}"; do [ -x "$CONTAINERD_BIN/$c" ] || return 1; done
}

containerd_go_build() {
  local pkgs=() c v=github.com/containerd/containerd/v2/version
  for c in "${CONTAINERD_CMDS[@]}"; do pkgs+=("$CONTAINERD_MODULE/cmd/$c"); done
  go build -trimpath -tags "no_btrfs no_zfs no_devmapper" \
    -ldflags "-s -w -X $v.Version=$CONTAINERD_VERSION -X $v.Revision=module-proxy" -o "$CONTAINERD_BIN/" "${pkgs[@]}"
}

containerd_build() {
  local missing=() t
  for t in "$RUNC:runc" "$CNI_BIN_DIR/bridge:containernetworking-plugins" /usr/sbin/conntrack:conntrack; do
    [ -x "${t%%:*}" ] || missing+=("${t#*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then step "install ${missing[*]} (Debian)" apt_install "${missing[@]}"; fi
  go_peer_build containerd "$CONTAINERD_MODULE" "$CONTAINERD_VERSION" "$CONTAINERD_PEER" containerd_built containerd_go_build
}

ctr_() { "$CONTAINERD_BIN/ctr" --address "$CONTAINERD_SOCK" "$@"; }

containerd_ready() { is_running containerd && ctr_ version >/dev/null 2>&1; }

# The CNI network: our bridge, addresses from the pod subnet, and two routes only (the subnet,
# and the service range through the node, where the kubernetes Service is DNATed). No
# masquerade and no gateway on the bridge from CNI's side: the pod network pod-network made.
containerd_cni_conf() {
  mkdir -p "$CNI_CONF_DIR" "$CNI_IPAM_DIR"
  cat >"$CNI_CONF_DIR/10-hatchet-pods.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "hatchet-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_IPAM_DIR",
        "ranges": [[{"subnet": "$POD_SUBNET", "rangeStart": "${NODE_IP%.*}.10", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR", "gw": "$NODE_IP"}]
      }
    }
  ]
}
JSON
}

containerd_config() {
  cat >"$CONTAINERD_DIR/config.toml" <<TOML
version = 3
root = "$CONTAINERD_DIR/root"
state = "$CONTAINERD_DIR/state"

[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_DIR/opt"
[plugins."io.containerd.nri.v1.nri"]
  disable = true
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_IMAGE"
[plugins."io.containerd.cri.v1.runtime"]
  # This VM lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$RUNC"
        Root = "$CONTAINERD_DIR/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$CNI_BIN_DIR"]
    conf_dir = "$CNI_CONF_DIR"
    max_conf_num = 1
TOML
}

containerd_up() {
  containerd_built || die "containerd: binaries missing in $CONTAINERD_BIN; run tests/env/build-peers"
  pod-network_ready || die "containerd: the pod network is not up (tests/env/up starts it first)"
  mkdir -p "$CONTAINERD_DIR"
  chmod 700 "$CONTAINERD_DIR"
  {
    echo "export CONTAINERD_ADDRESS=$CONTAINERD_SOCK"
    echo "export CTR=\"$CONTAINERD_BIN/ctr --address $CONTAINERD_SOCK --namespace k8s.io\""
  } >"$ENV_FILE.containerd"
  if containerd_ready; then
    log "containerd already up ($CONTAINERD_SOCK)"
    return 0
  fi
  stop_bg containerd
  containerd_cni_conf
  containerd_config
  # Its own bin dir first, so it finds the shim built with it.
  PATH="$CONTAINERD_BIN:/usr/sbin:/usr/bin:/sbin:/bin" start_bg containerd "$CONTAINERD_BIN/containerd" --config "$CONTAINERD_DIR/config.toml" \
    --log-level warn
  kube_wait 60 containerd containerd_ready "ctr version on $CONTAINERD_SOCK"
  log "containerd $CONTAINERD_VERSION up ($CONTAINERD_SOCK)"
}

# unmount_under DIR...: every mount point at or below each DIR, deepest first.
unmount_under() {
  local d m
  for d in "$@"; do
    awk -v d="$d" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
    done
  done
}

# containerd_kill_pods: every container the kubelet left (tasks killed, containers removed),
# so no shim, mount or network namespace outlives the node.
containerd_kill_pods() {
  local id
  for id in $(ctr_ -n k8s.io tasks ls -q 2>/dev/null); do
    ctr_ -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr_ -n k8s.io tasks ls -q 2>/dev/null); do
    for _ in 1 2 3 4 5 6 7 8 9 10; do ctr_ -n k8s.io tasks rm -f "$id" >/dev/null 2>&1 && break; sleep 0.2; done
  done
  for id in $(ctr_ -n k8s.io containers ls -q 2>/dev/null); do
    ctr_ -n k8s.io containers rm "$id" >/dev/null 2>&1 || true
  done
}

containerd_down() {
  ! containerd_ready || containerd_kill_pods
  stop_bg containerd
  containerd_kill_shims
  unmount_under "$CONTAINERD_DIR" /run/containerd
  containerd_remove_netns
  rm -rf "$CNI_IPAM_DIR" "$CONTAINERD_DIR/state" "$CONTAINERD_DIR/runc"
  node_remove_created_paths /run/containerd /run/netns /var/lib/cni /etc/cni /opt/cni
}

# node_remove_created_paths PATH...: remove each PATH the host did not have before up.
node_remove_created_paths() {
  local p
  [ -f "$HOST_BEFORE" ] || return 0
  for p in "$@"; do
    grep -qx "path $p" "$HOST_BEFORE" || rm -rf "$p"
  done
}

# containerd_kill_shims: shims run in sessions of their own; stop the ones running our binary.
containerd_kill_shims() {
  local pid exe
  for pid in $(pgrep -f containerd-shim-runc-v2 || true); do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    [ "$exe" != "$CONTAINERD_BIN/containerd-shim-runc-v2" ] || kill -KILL "$pid" 2>/dev/null || true
  done
}

# containerd_remove_netns: the pods' network namespaces (CNI names them cni-*).
containerd_remove_netns() {
  local ns
  for ns in /run/netns/cni-*; do
    [ -e "$ns" ] || continue
    umount "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
}
