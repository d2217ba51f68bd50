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
