# The world's Prometheus: the server built from its Go module (Debian's package is built without
# Kubernetes service discovery), with only the Kubernetes discovery compiled in; promtool from
# Debian (`prometheus` package), with which tests check metrics text and rule files. `up` runs
# the server on 127.0.0.1:$PROMETHEUS_PORT, finding what to scrape through Kubernetes service
# discovery against the local apiserver: every pod on the real node annotated
# `prometheus.io/scrape: "true"` (the operator annotates worker pods so, the chart annotates the
# operator's pods), on the port and path its `prometheus.io/port` and `prometheus.io/path`
# annotations name. Pods on kwok's fake node are left out (nothing listens there). It loads
# monitoring/prometheus-rules.yaml and scrapes every 2 s so tests and the demo see a change
# within seconds; a cluster's Prometheus would use its usual 15–30 s (monitoring/README.md).

PROMETHEUS_VERSION=v0.316.0 # its Go module's numbering of release 3.16.0
PROMETHEUS_RELEASE=3.16.0
PROMETHEUS_MODULE=github.com/prometheus/prometheus
PROMETHEUS_PEER=$PEERS_DIR/prometheus-$PROMETHEUS_VERSION
PROMETHEUS=$PROMETHEUS_PEER/bin/prometheus
PROMTOOL=/usr/bin/promtool
PROMETHEUS_PORT=19090
PROMETHEUS_DIR=$RUN_DIR/prometheus
PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT

prometheus_built() { [ -x "$PROMETHEUS" ] && [ -x "$PROMTOOL" ]; }

prometheus_go_build() {
  go build -trimpath -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE -X github.com/prometheus/common/version.Branch=release" \
    -o "$PROMETHEUS" "$PROMETHEUS_MODULE/cmd/prometheus"
}

prometheus_build() {
  if [ ! -x "$PROMTOOL" ]; then
    step "install promtool (Debian prometheus)" apt_install prometheus
  fi
  go_peer_build prometheus "$PROMETHEUS_MODULE" "$PROMETHEUS_VERSION" "$PROMETHEUS_PEER" prometheus_built prometheus_go_build
}

prometheus_ready() { curl -fsS "$PROMETHEUS_URL/-/ready" >/dev/null 2>&1; }

prometheus_config() {
  cat <<YAML
global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 2s
rule_files:
  - $REPO_ROOT/monitoring/prometheus-rules.yaml
scrape_configs:
  - job_name: kubernetes-pods
    honor_labels: true
    kubernetes_sd_configs:
      - role: pod
        kubeconfig_file: $KUBECONFIG_FILE
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        regex: "true"
        action: keep
      - source_labels: [__meta_kubernetes_pod_node_name]
        regex: $KWOK_NODE
        action: drop
      - source_labels: [__meta_kubernetes_pod_phase]
        regex: Running
        action: keep
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
        regex: (.+)
        target_label: __metrics_path__
      - source_labels: [__meta_kubernetes_pod_ip, __meta_kubernetes_pod_annotation_prometheus_io_port]
        regex: (.+);(\d+)
        replacement: \$1:\$2
        target_label: __address__
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_pod_label_hatchet_run_fleet]
        target_label: fleet
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_name]
        target_label: app
YAML
}

prometheus_up() {
  prometheus_built || die "prometheus: $PROMETHEUS or $PROMTOOL missing; run tests/env/build-peers"
  {
    echo "export PROMETHEUS=$PROMETHEUS"
    echo "export PROMTOOL=$PROMTOOL"
    echo "export PROMETHEUS_URL=$PROMETHEUS_URL"
    echo "export PROMETHEUS_RULES=$REPO_ROOT/monitoring/prometheus-rules.yaml"
  } >"$ENV_FILE.prometheus"
  mkdir -p "$PROMETHEUS_DIR/data"
  prometheus_config >"$PROMETHEUS_DIR/prometheus.yml.tmp"
  mv "$PROMETHEUS_DIR/prometheus.yml.tmp" "$PROMETHEUS_DIR/prometheus.yml"
  if prometheus_ready && is_running prometheus; then
    curl -fsS -X POST "$PROMETHEUS_URL/-/reload" >/dev/null || component_failed prometheus "could not reload its configuration"
    log "prometheus already up ($PROMETHEUS_URL); configuration reloaded"
    return 0
  fi
  stop_bg prometheus
  start_bg prometheus "$PROMETHEUS" --config.file="$PROMETHEUS_DIR/prometheus.yml" \
    --storage.tsdb.path="$PROMETHEUS_DIR/data" --storage.tsdb.retention.time=1d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --web.enable-lifecycle
  wait_until 60 prometheus_ready || component_failed prometheus "not ready on $PROMETHEUS_URL in 60 s"
  log "prometheus up: $PROMETHEUS_URL (pods annotated prometheus.io/scrape on the real node)"
}

prometheus_down() { stop_bg prometheus; }
