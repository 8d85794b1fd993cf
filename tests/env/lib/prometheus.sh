# Prometheus and promtool from Debian (`prometheus` package): tests validate metrics text with
# promtool and may run a server of their own. Nothing runs here; `up` publishes the paths.

PROMETHEUS=/usr/bin/prometheus
PROMTOOL=/usr/bin/promtool

prometheus_built() { [ -x "$PROMETHEUS" ] && [ -x "$PROMTOOL" ]; }

prometheus_build() {
  if prometheus_built; then
    log "prometheus and promtool already installed ($("$PROMTOOL" --version 2>&1 | head -n 1))"
    return 0
  fi
  step "install prometheus (Debian)" apt_install prometheus
}

prometheus_ready() { prometheus_built; }

prometheus_up() {
  prometheus_built || die "prometheus: $PROMTOOL missing; run tests/env/build-peers"
  {
    echo "export PROMETHEUS=$PROMETHEUS"
    echo "export PROMTOOL=$PROMTOOL"
  } >"$ENV_FILE.prometheus"
}

prometheus_down() { :; }
