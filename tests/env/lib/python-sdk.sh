# The official Hatchet Python SDK (`hatchet-sdk` from PyPI, pinned) in a venv of its own in the
# peers cache: interop tests feed what our worker reported to the SDK's own parsers. Nothing
# runs here; `up` publishes the interpreter.

PYTHON_SDK_VERSION=1.43.1
PYTHON_SDK_DIR=$PEERS_DIR/python-hatchet-sdk-$PYTHON_SDK_VERSION

python-sdk_built() { [ -x "$PYTHON_SDK_DIR/bin/python" ] && [ -f "$PYTHON_SDK_DIR/.complete" ]; }

python-sdk_build() {
  if python-sdk_built; then
    log "hatchet-sdk $PYTHON_SDK_VERSION already installed in $PYTHON_SDK_DIR"
    return 0
  fi
  command -v python3 >/dev/null || step "install python3 (Debian)" apt_install python3 python3-venv
  python3 -m venv --help >/dev/null 2>&1 || step "install python3-venv (Debian)" apt_install python3-venv
  rm -rf "$PYTHON_SDK_DIR"
  python3 -m venv "$PYTHON_SDK_DIR"
  "$PYTHON_SDK_DIR/bin/pip" install --quiet --disable-pip-version-check "hatchet-sdk==$PYTHON_SDK_VERSION"
  "$PYTHON_SDK_DIR/bin/python" -c 'import hatchet_sdk.exceptions' || die "python-sdk: hatchet_sdk does not import"
  touch "$PYTHON_SDK_DIR/.complete"
}

python-sdk_ready() { python-sdk_built; }

python-sdk_up() {
  python-sdk_built || die "python-sdk: $PYTHON_SDK_DIR missing; run tests/env/build-peers"
  echo "export HATCHET_PYTHON_SDK=$PYTHON_SDK_DIR/bin/python" >"$ENV_FILE.python-sdk"
}

python-sdk_down() { :; }
