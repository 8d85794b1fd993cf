# Shared paths, versions, ports and process helpers for the local test world.
# Sourced by tests/env/{build-peers,up,down,status}; never run directly.

set -euo pipefail

ENV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$ENV_DIR/../.." && pwd)
RUN_DIR=${HATCHET_OPERATOR_RUN_DIR:-$ENV_DIR/.run}
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/hatchet-operator
PEERS_DIR=$CACHE_ROOT/peers
LOG_DIR=$RUN_DIR/logs
PID_DIR=$RUN_DIR/pids
ENV_FILE=$RUN_DIR/env

# Versions of the real peers. Each is built once into $PEERS_DIR/<name>-<version>/.
HATCHET_VERSION=v0.104.7
PG_MAJOR=15
KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0
CONTAINERD_VERSION=v2.4.2
PAUSE_VERSION=3.10.2 # build/pause in the Kubernetes release

# Ports: all on 127.0.0.1, away from the standard ones so a developer's own services keep theirs.
PG_PORT=${HATCHET_OPERATOR_PG_PORT:-55432}
HATCHET_RUNTIME_PORT=18888 # hatchet-lite front door: /api is proxied to the API server
HATCHET_API_PORT=18080
HATCHET_FRONTEND_PORT=18081
HATCHET_GRPC_PORT=17077
HATCHET_HEALTH_PORT=18733
ETCD_CLIENT_PORT=12379
ETCD_PEER_PORT=12380
KUBE_APISERVER_PORT=16443
KUBE_CONTROLLER_MANAGER_PORT=16257
KUBE_SCHEDULER_PORT=16259
KWOK_PORT=16247
KUBELET_PORT=16250
KUBELET_HEALTHZ_PORT=16248

# The real node's pod network: a bridge of our own whose address is the node's IP and the
# pods' only gateway. Pods get the subnet route and the service range through it, nothing else.
POD_BRIDGE=hatchet0
POD_SUBNET=10.77.0.0/24
NODE_IP=10.77.0.1
SERVICE_CIDR=10.0.0.0/24
KUBERNETES_SERVICE_IP=10.0.0.1

# Images built by tests/env/build-images and run on the real node (imported, never pulled).
IMAGES_DIR=$RUN_DIR/images
WORKER_IMAGE=hatchet.local/hatchet-worker:dev
OPERATOR_IMAGE=hatchet.local/hatchet-operator:dev

# Go builds never switch toolchains behind our back, and share the user's module cache.
export GOTOOLCHAIN=local

log() { printf '[env] %s\n' "$*" >&2; }
die() { printf '[env] error: %s\n' "$*" >&2; exit 1; }

# step NAME CMD...: run CMD, printing the step's name and how long it took.
step() {
  local name=$1 start rc=0
  shift
  start=$(date +%s)
  log "==> $name"
  "$@" || rc=$?
  log "<== $name ($(($(date +%s) - start))s)"
  return "$rc"
}

as_root() { [ "$(id -u)" -eq 0 ]; }

# apt_install PKG...: install Debian packages (root only; otherwise say what is missing).
apt_install() {
  if ! as_root; then
    die "missing Debian packages: $* (run as root, or install them with apt-get)"
  fi
  if [ ! -f "$RUN_DIR/.apt-updated" ] && [ -z "${HATCHET_OPERATOR_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    export HATCHET_OPERATOR_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# go_peer_build NAME MODULE VERSION PEER_DIR BUILT_FN BUILD_FN: unless BUILT_FN says the peer is
# already there, build it from the Go module proxy in a throwaway wrapper module under PEER_DIR (`go install module@version` is refused here: the proxy
# does not serve the version lists it reads for deprecation notices). The wrapper requires
# MODULE@VERSION and starts its go.sum from MODULE's own, because some dependencies are served
# by the proxy but unknown to the checksum database. BUILD_FN runs inside the wrapper with
# GOFLAGS=-mod=mod and CGO disabled; its arguments are MODULE's directory and go.mod in the cache.
go_peer_build() {
  local name=$1 module=$2 version=$3 peer=$4 built_fn=$5 build_fn=$6
  if "$built_fn"; then
    log "$name $version already built in $peer/bin"
    return 0
  fi
  command -v go >/dev/null || die "go is required to build $name"
  local wrap=$peer/wrapper
  rm -rf "$wrap"
  mkdir -p "$wrap" "$peer/bin"
  (
    cd "$wrap"
    local json dir gomod
    json=$(go mod download -json "$module@$version") || die "$name: $module@$version is not served by the module proxy"
    dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
    gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' <<<"$json")
    [ -f "$dir/go.sum" ] && [ -f "$gomod" ] || die "$name: $module@$version not in the module cache"
    printf 'module local.invalid/%s-peer\n\ngo 1.26\n\nrequire %s %s\n' "$name" "$module" "$version" >go.mod
    cp "$dir/go.sum" go.sum
    chmod u+w go.sum
    export GOFLAGS=-mod=mod CGO_ENABLED=0
    "$build_fn" "$dir" "$gomod"
  ) || die "$name: build of $module@$version failed"
  rm -rf "$wrap"
}

# --- processes: started detached, tracked by pid and executable so down never kills by name ---

pid_file() { echo "$PID_DIR/$1.pid"; }

# start_bg NAME CMD...: start CMD in its own session, logging to $LOG_DIR/NAME.log, with only
# stdin (/dev/null), stdout and stderr (the log) open.
start_bg() {
  local name=$1
  shift
  mkdir -p "$PID_DIR" "$LOG_DIR"
  (
    # Descriptors the caller holds (a lock, a pipe) must not live on in a daemon.
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -le 2 ] || eval "exec $fd>&-"
    done
    exec setsid "$@"
  ) >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  local pid=$!
  # Record the pid with the executable it runs, so a recycled pid is never mistaken for ours.
  sleep 0.2
  local exe
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  printf '%s %s\n' "$pid" "$exe" >"$(pid_file "$name")"
}

# is_running NAME: the process we started is still alive.
is_running() {
  local f pid exe cur
  f=$(pid_file "$1")
  [ -f "$f" ] || return 1
  read -r pid exe <"$f"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  cur=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  [ -z "$exe" ] || [ "$cur" = "$exe" ]
}

# stop_bg NAME [SIGNAL]: stop the process we started (and its session), waiting up to 30 s.
stop_bg() {
  local name=$1 sig=${2:-TERM} f pid exe
  f=$(pid_file "$name")
  [ -f "$f" ] || return 0
  if is_running "$name"; then
    read -r pid exe <"$f"
    log "stopping $name (pid $pid)"
    kill "-$sig" "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 30s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    # Children left in the session we created (setsid made pid the session and group leader).
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# wait_until SECONDS CMD...: poll CMD every 0.5 s until it succeeds or time runs out.
wait_until() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# component_failed NAME: name the component, show its log's tail, exit non-zero.
component_failed() {
  local name=$1 reason=$2
  printf '[env] error: %s: %s\n' "$name" "$reason" >&2
  if [ -f "$LOG_DIR/$name.log" ]; then
    printf '[env] last lines of %s:\n' "$LOG_DIR/$name.log" >&2
    tail -n 40 "$LOG_DIR/$name.log" >&2
  fi
  exit 1
}

# The components of the world, in start order; down stops them in reverse.
COMPONENTS=(postgres hatchet etcd kube-apiserver kube-controller-manager kube-scheduler kwok helm prometheus python-sdk servicemonitor-crd
  pod-network containerd kubelet)

for _c in "${COMPONENTS[@]}"; do
  # shellcheck source=/dev/null
  . "$ENV_DIR/lib/$_c.sh"
done
unset _c
