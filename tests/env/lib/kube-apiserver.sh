# Kubernetes $KUBE_VERSION from the Go module proxy: kube-apiserver, kube-controller-manager,
# kube-scheduler and kubectl, built together from one wrapper module. This file also owns the
# control plane's PKI, tokens and the admin kubeconfig that the other Kubernetes components use.

KUBE_PEER=$PEERS_DIR/kubernetes-$KUBE_VERSION
KUBE_BIN=$KUBE_PEER/bin
KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet)
KUBECTL=$KUBE_BIN/kubectl
KUBE_DIR=$RUN_DIR/kube
KUBE_PKI=$KUBE_DIR/pki
KUBECONFIG_FILE=$KUBE_DIR/admin.kubeconfig
KUBE_API_URL=https://127.0.0.1:$KUBE_APISERVER_PORT

kube_built() {
  local c
  for c in "${KUBE_CMDS[@]}"; do [ -x "$KUBE_BIN/$c" ] || return 1; done
}

# `go install k8s.io/kubernetes/cmd/...@v1.x` cannot work: k8s.io/kubernetes requires its staging
# modules (k8s.io/api, client-go, ...) at v0.0.0 and replaces them with ./staging/... paths. The
# wrapper module replaces each of them with its published v0.<minor>.<patch>; the list is read from
# the go.mod the proxy serves for k8s.io/kubernetes ($2), so it follows the release exactly. The
# wrapper also takes the release's go directive, which sets the binaries' GODEBUG defaults.
kube_go_build() {
  local gomod=$2 minor staging m n=0
  minor=$(cut -d. -f2 <<<"${KUBE_VERSION#v}")
  staging=v0.${KUBE_VERSION#v1.}
  go mod edit -go="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
  for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => \./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace="$m=$m@$staging"
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || die "kubernetes: no staging replaces found in $gomod"
  log "kubernetes: $n staging modules replaced by their published $staging"
  local ldf="-s -w" p pkgs=() c
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldf+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for c in "${KUBE_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  go build -trimpath -ldflags "$ldf" -o "$KUBE_BIN/" "${pkgs[@]}"
}

kube_build() { go_peer_build kubernetes k8s.io/kubernetes "$KUBE_VERSION" "$KUBE_PEER" kube_built kube_go_build; }

kube_ssl() { openssl "$@" >>"$LOG_DIR/kube-pki.log" 2>&1 || component_failed kube-pki "openssl $1 failed"; }

# kube_cert NAME SUBJECT EXT: a key and a certificate signed by the cluster CA.
kube_cert() {
  local name=$1 subj=$2 ext=$3
  [ -s "$KUBE_PKI/$name.crt" ] && return 0
  kube_ssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$KUBE_PKI/$name.key" -out "$KUBE_PKI/$name.csr"
  printf '%s\n' "$ext" >"$KUBE_PKI/$name.ext"
  kube_ssl x509 -req -in "$KUBE_PKI/$name.csr" -CA "$KUBE_PKI/ca.crt" -CAkey "$KUBE_PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$KUBE_PKI/$name.ext" -out "$KUBE_PKI/$name.crt"
  rm -f "$KUBE_PKI/$name.csr"
}

# Generated once under the run dir and kept by `down` (only --purge removes them): a CA, the
# serving certificate, the service-account signing key and the admin client certificate
# (group system:masters), plus an admin kubeconfig with everything embedded.
kube_pki() {
  mkdir -p "$KUBE_PKI" "$LOG_DIR"
  chmod 700 "$KUBE_DIR" "$KUBE_PKI"
  if [ ! -s "$KUBE_PKI/ca.crt" ]; then
    kube_ssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=hatchet-operator-test-ca \
      -keyout "$KUBE_PKI/ca.key" -out "$KUBE_PKI/ca.crt"
  fi
  # Pods reach the apiserver on the node's bridge address (a certificate from before the real
  # node lacks it, and is made again).
  if [ -s "$KUBE_PKI/apiserver.crt" ] && ! openssl x509 -in "$KUBE_PKI/apiserver.crt" -noout -ext subjectAltName \
    2>/dev/null | grep -q "IP Address:$NODE_IP\b"; then
    rm -f "$KUBE_PKI/apiserver.crt"
  fi
  kube_cert apiserver /CN=kube-apiserver "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:$KUBERNETES_SERVICE_IP,IP:$NODE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
  # The apiserver's identity towards kubelets (exec, logs), which check it against the CA.
  kube_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  kube_cert admin "/O=system:masters/CN=admin" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  [ -s "$KUBE_PKI/sa.key" ] || kube_ssl genrsa -out "$KUBE_PKI/sa.key" 2048
  [ -s "$KUBE_PKI/sa.pub" ] || kube_ssl rsa -in "$KUBE_PKI/sa.key" -pubout -out "$KUBE_PKI/sa.pub"
  kube_kubeconfig "$KUBECONFIG_FILE" admin admin
}

# kube_kubeconfig FILE USER CERT: a kubeconfig (once) for the local apiserver authenticating
# with the client certificate CERT of the cluster CA, everything embedded.
kube_kubeconfig() {
  local file=$1 user=$2 cert=$3
  [ ! -s "$file" ] || return 0
  local k=("$KUBECTL" config --kubeconfig="$file.tmp")
  rm -f "$file.tmp"
  {
    "${k[@]}" set-cluster local --server="$KUBE_API_URL" --certificate-authority="$KUBE_PKI/ca.crt" --embed-certs=true
    "${k[@]}" set-credentials "$user" --client-certificate="$KUBE_PKI/$cert.crt" \
      --client-key="$KUBE_PKI/$cert.key" --embed-certs=true
    "${k[@]}" set-context local --cluster=local --user="$user" --namespace=default
    "${k[@]}" use-context local
  } >>"$LOG_DIR/kube-pki.log" 2>&1 || component_failed kube-pki "kubectl config for $user failed"
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}

# kube_wait SECONDS NAME PROBE WHAT: wait for PROBE, failing at once (with the log's tail) if the
# process we started for NAME exits meanwhile.
kube_wait() {
  local secs=$1 name=$2 probe=$3 what=$4
  _kube_probe_or_exited() { "$probe" || ! is_running "$name"; }
  wait_until "$secs" _kube_probe_or_exited || component_failed "$name" "$what not ok after ${secs}s"
  is_running "$name" || component_failed "$name" "exited during start-up"
  "$probe" || component_failed "$name" "$what not ok"
}

kube-apiserver_build() {
  command -v openssl >/dev/null || step "install openssl (Debian)" apt_install openssl
  kube_build
}

kube_readyz() {
  curl -fsS --max-time 3 --cacert "$KUBE_PKI/ca.crt" --cert "$KUBE_PKI/admin.crt" --key "$KUBE_PKI/admin.key" \
    "$KUBE_API_URL/readyz" 2>/dev/null | grep -qx ok
}

kube-apiserver_ready() { is_running kube-apiserver && kube_readyz; }

kube-apiserver_up() {
  kube_built || die "kube-apiserver: binaries missing in $KUBE_BIN; run tests/env/build-peers"
  kube_pki
  if kube-apiserver_ready; then
    log "kube-apiserver already up at $KUBE_API_URL"
  else
    stop_bg kube-apiserver
    start_bg kube-apiserver "$KUBE_BIN/kube-apiserver" \
      --etcd-servers="$ETCD_URL" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
      --secure-port="$KUBE_APISERVER_PORT" --cert-dir="$KUBE_DIR/apiserver-certs" \
      --tls-cert-file="$KUBE_PKI/apiserver.crt" --tls-private-key-file="$KUBE_PKI/apiserver.key" \
      --client-ca-file="$KUBE_PKI/ca.crt" --authorization-mode=RBAC --anonymous-auth=false \
      --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
      --service-account-issuer="$KUBE_API_URL" --service-account-key-file="$KUBE_PKI/sa.pub" \
      --service-account-signing-key-file="$KUBE_PKI/sa.key" \
      --kubelet-client-certificate="$KUBE_PKI/apiserver-kubelet-client.crt" \
      --kubelet-client-key="$KUBE_PKI/apiserver-kubelet-client.key" --kubelet-preferred-address-types=InternalIP \
      --endpoint-reconciler-type=none --profiling=false --v=1
    kube_wait 120 kube-apiserver kube_readyz "GET $KUBE_API_URL/readyz"
    log "kube-apiserver up at $KUBE_API_URL"
  fi
  kube_write_env
}

kube_write_env() {
  (
    umask 077
    {
      echo "# Kubernetes $KUBE_VERSION control plane on 127.0.0.1 (etcd, apiserver, controller-manager, scheduler, kwok)."
      echo "export KUBECONFIG=$KUBECONFIG_FILE"
      echo "export KUBECTL=$KUBECTL"
      echo "export KUBE_VERSION=$KUBE_VERSION"
      echo "export KUBE_API_URL=$KUBE_API_URL"
      echo "export PATH=\"$KUBE_BIN:$ETCD_BIN:\$PATH\""
    } >"$ENV_FILE.kube-apiserver"
  )
}

kube-apiserver_down() { stop_bg kube-apiserver; }
