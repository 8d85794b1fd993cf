# prometheus-operator's ServiceMonitor CRD, taken from its Go module (the proxy serves
# v0.88.0), so the chart's ServiceMonitor is validated against the real schema. Nothing runs
# here; `up` publishes the file's path.

SERVICEMONITOR_VERSION=v0.88.0
SERVICEMONITOR_MODULE=github.com/prometheus-operator/prometheus-operator
SERVICEMONITOR_DIR=$PEERS_DIR/servicemonitor-crd-$SERVICEMONITOR_VERSION
SERVICEMONITOR_CRD=$SERVICEMONITOR_DIR/monitoring.coreos.com_servicemonitors.yaml

servicemonitor-crd_built() { [ -s "$SERVICEMONITOR_CRD" ]; }

servicemonitor-crd_build() {
  if servicemonitor-crd_built; then
    log "ServiceMonitor CRD $SERVICEMONITOR_VERSION already in $SERVICEMONITOR_DIR"
    return 0
  fi
  command -v go >/dev/null || die "go is required to fetch the ServiceMonitor CRD"
  local json dir
  json=$(cd /tmp && go mod download -json "$SERVICEMONITOR_MODULE@$SERVICEMONITOR_VERSION") ||
    die "servicemonitor-crd: $SERVICEMONITOR_MODULE@$SERVICEMONITOR_VERSION is not served by the module proxy"
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
  mkdir -p "$SERVICEMONITOR_DIR"
  cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$SERVICEMONITOR_CRD.tmp"
  mv "$SERVICEMONITOR_CRD.tmp" "$SERVICEMONITOR_CRD"
}

servicemonitor-crd_ready() { servicemonitor-crd_built; }

servicemonitor-crd_up() {
  servicemonitor-crd_built || die "servicemonitor-crd: $SERVICEMONITOR_CRD missing; run tests/env/build-peers"
  echo "export SERVICEMONITOR_CRD=$SERVICEMONITOR_CRD" >"$ENV_FILE.servicemonitor-crd"
}

servicemonitor-crd_down() { :; }
