# Helm $HELM_VERSION from the Go module proxy, with its built-in Kubernetes version set to the
# control plane's minor (Helm 3 otherwise assumes 1.20 for `template` and `lint` capabilities).
# A client only: nothing runs, `up` just publishes its path.

HELM_PEER=$PEERS_DIR/helm-$HELM_VERSION
HELM_BIN=$HELM_PEER/bin
HELM_MODULE=helm.sh/helm/v3

helm_built() { [ -x "$HELM_BIN/helm" ]; }

helm_build() {
  if helm_built; then
    log "helm $HELM_VERSION already built in $HELM_BIN"
    return 0
  fi
  command -v go >/dev/null || die "go is required to build helm"
  local wrap=$HELM_PEER/wrapper
  rm -rf "$wrap"
  mkdir -p "$wrap" "$HELM_BIN"
  (
    cd "$wrap"
    printf 'module local.invalid/helm-peer\n\ngo 1.26\n\nrequire %s %s\n' "$HELM_MODULE" "$HELM_VERSION" >go.mod
    local dir minor
    dir=$(go mod download -json "$HELM_MODULE@$HELM_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -f "$dir/go.sum" ] || die "helm: module $HELM_MODULE@$HELM_VERSION not in the module cache"
    cp "$dir/go.sum" go.sum
    chmod u+w go.sum
    minor=$(cut -d. -f2 <<<"${KUBE_VERSION#v}")
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w \
      -X $HELM_MODULE/internal/version.version=$HELM_VERSION -X $HELM_MODULE/internal/version.gitTreeState=clean \
      -X $HELM_MODULE/pkg/chartutil.k8sVersionMinor=$minor -X $HELM_MODULE/pkg/lint/rules.k8sVersionMinor=$minor" \
      -o "$HELM_BIN/helm" "$HELM_MODULE/cmd/helm"
  ) || die "helm: build of $HELM_MODULE@$HELM_VERSION failed"
  rm -rf "$wrap"
}

helm_ready() { helm_built; }

helm_up() {
  helm_built || die "helm: $HELM_BIN/helm missing; run tests/env/build-peers"
  {
    echo "export HELM=$HELM_BIN/helm"
    echo "export PATH=\"$HELM_BIN:\$PATH\""
  } >"$ENV_FILE.helm"
}

helm_down() { :; }
