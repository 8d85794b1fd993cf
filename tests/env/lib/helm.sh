# Helm $HELM_VERSION from the Go module proxy, with its built-in Kubernetes version set to the
# control plane's minor (Helm 3 otherwise assumes 1.20 for `template` and `lint` capabilities).
# A client only: nothing runs, `up` just publishes its path.

HELM_PEER=$PEERS_DIR/helm-$HELM_VERSION
HELM_BIN=$HELM_PEER/bin
HELM_MODULE=helm.sh/helm/v3

helm_built() { [ -x "$HELM_BIN/helm" ]; }

helm_go_build() {
  local minor
  minor=$(cut -d. -f2 <<<"${KUBE_VERSION#v}")
  go build -trimpath -ldflags "-s -w \
    -X $HELM_MODULE/internal/version.version=$HELM_VERSION -X $HELM_MODULE/internal/version.gitTreeState=clean \
    -X $HELM_MODULE/pkg/chartutil.k8sVersionMinor=$minor -X $HELM_MODULE/pkg/lint/rules.k8sVersionMinor=$minor" \
    -o "$HELM_BIN/helm" "$HELM_MODULE/cmd/helm"
}

helm_build() { go_peer_build helm "$HELM_MODULE" "$HELM_VERSION" "$HELM_PEER" helm_built helm_go_build; }

helm_ready() { helm_built; }

helm_up() {
  helm_built || die "helm: $HELM_BIN/helm missing; run tests/env/build-peers"
  {
    echo "export HELM=$HELM_BIN/helm"
    echo "export PATH=\"$HELM_BIN:\$PATH\""
  } >"$ENV_FILE.helm"
}

helm_down() { :; }
