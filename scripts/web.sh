#!/usr/bin/env bash
# Builds the browser terminal (gateway/web) into gateway/web/dist, which the gateway embeds.
# `npm ci` runs only when node_modules is missing or package-lock.json changed since the last
# install; the type check and esbuild run every time (a few seconds). `web.sh deps` only installs
# (scripts/setup.sh uses it: playwright-core, the UI tests' browser driver, is a devDependency).
set -euo pipefail
web="$(cd "$(dirname "$0")/.." && pwd)/gateway/web"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [ "${CI:-}" = "true" ]; then
    echo "web: node and npm are required to build the web UI" >&2
    exit 1
  fi
  echo "web: node/npm missing: the gateway will serve 'web UI not built' at /" >&2
  exit 0
fi
lock_sum=$( (sha256sum 2>/dev/null || shasum -a 256) < "$web/package-lock.json" | cut -d' ' -f1)
stamp="$web/node_modules/.podgate-lock.sha256"
if [ ! -d "$web/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  echo "web: installing npm dependencies ($web)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$stamp"
fi
[ "${1:-}" = "deps" ] && exit 0
cd "$web"
node_modules/.bin/tsc --noEmit -p .
node build.mjs
