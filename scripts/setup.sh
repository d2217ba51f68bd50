#!/usr/bin/env bash
# Installs what `make test` needs on a fresh machine. Idempotent: checks before installing.
set -euo pipefail
need=()
command -v kubectl >/dev/null || need+=(kubectl)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: missing ${need[*]}: the tests drive real kubectl (1.30+); install it and re-run" >&2
  exit 1
fi
command -v cargo >/dev/null || { echo "setup: cargo is missing" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt 2>/dev/null || true
# Prometheus and promtool (Debian's `prometheus` package) for the metrics and deploy/ tests:
# `promtool check metrics|rules`, `promtool test rules`, and a real Prometheus that scrapes
# podgate's metrics. Installed only when missing.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing prometheus (Debian package) for the metrics tests" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package enables a system service on :9090 where an init system runs; the tests start
  # their own Prometheus, and 9090 is podgate's admin port.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# The OpenID provider the auth tests run (panva's oidc-provider, pinned by its lockfile).
# Reinstalled only when node_modules is missing or the lockfile changed since the last install.
oidc_dir="$(cd "$(dirname "$0")/.." && pwd)/auth/tests/oidc-provider"
if command -v node >/dev/null && command -v npm >/dev/null; then
  lock_sum=$( (sha256sum 2>/dev/null || shasum -a 256) < "$oidc_dir/package-lock.json" | cut -d' ' -f1)
  stamp="$oidc_dir/node_modules/.podgate-lock.sha256"
  if [ ! -d "$oidc_dir/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    echo "setup: installing the test OpenID provider ($oidc_dir)"
    (cd "$oidc_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > "$stamp"
  fi
elif [ "${CI:-}" = "true" ]; then
  echo "setup: node and npm are required (the auth tests run a real OpenID provider)" >&2
  exit 1
else
  echo "setup: node/npm missing: the OpenID provider tests will be skipped" >&2
fi

# Debian's Chromium for the web UI tests (tests/tests/ui.rs drives it with playwright-core;
# Playwright's own browser download is not used). Installed only when missing, with a
# monospace font: xterm.js measures its cells from the font, and Chromium's fonts are only
# recommended by the package.
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing chromium (Debian package) for the web UI tests" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
# The web UI's npm dependencies (xterm.js, esbuild, playwright-core), pinned by its lockfile.
"$(dirname "$0")/web.sh" deps

# The official Kubernetes Python client, to check that devcluster kubeconfigs work with it
# unchanged. In a virtualenv inside the build directory, pinned; installed only when missing.
py="$(cd "$(dirname "$0")/.." && pwd)/target/py"
if [ ! -x "$py/bin/python" ] || ! "$py/bin/python" -c 'import kubernetes' 2>/dev/null; then
  echo "setup: installing the Kubernetes Python client into $py"
  python3 -m venv "$py"
  "$py/bin/pip" install --quiet --disable-pip-version-check kubernetes==37.0.2
fi
# pyte, a terminal emulator, replays recordings (resizes included) to check that they end on
# the screen the live terminal showed. Same virtualenv, pinned.
if ! "$py/bin/python" -c 'import pyte' 2>/dev/null; then
  echo "setup: installing pyte into $py"
  "$py/bin/pip" install --quiet --disable-pip-version-check pyte==0.8.2
fi

# Debian's asciinema (the recording tests check that `asciinema cat` takes every recording
# and reproduces its output byte for byte) and curl (fetches through `kubectl port-forward`,
# as people try it). Installed only when missing.
debs=()
command -v asciinema >/dev/null || debs+=(asciinema)
command -v curl >/dev/null || debs+=(curl)
if [ ${#debs[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${debs[*]} (Debian packages) for the recording and port-forward tests" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi
