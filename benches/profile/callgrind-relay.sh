#!/bin/bash
# Instructions podgate spends per relayed keystroke and per session setup, under callgrind:
# deterministic, unlike timings on a shared machine (no PMU here, so no `perf stat`).
#
#   benches/profile/callgrind-relay.sh BIN_DIR OUT_DIR
#
# Starts a devcluster and `podgate serve` under valgrind (callgrind), then with podgate-load:
# a warm-up, counters zeroed, 20 interactive sessions typing 10/s for 20 s (dump 1), zeroed,
# a churn of 200 sessions, 4 in flight (dump 2). Then callgrind_split.py subtracts the 20
# setups from dump 1 to leave the keystrokes. Needs openssl for a throwaway CA.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(cd "$1" && pwd); D=$2; mkdir -p "$D"; D=$(cd "$D" && pwd)
cd "$D"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 2 -subj "/CN=bench-ca" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout gw.key -out gw.csr \
  -subj "/CN=127.0.0.1" 2>/dev/null
printf "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" > ext.cnf
openssl x509 -req -in gw.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out gw.crt -days 2 \
  -extfile ext.cnf 2>/dev/null
TOKEN=callgrind-bench-token-$(od -An -tx8 -N16 /dev/urandom | tr -d ' \n')
printf -- "- token: %s\n  user: admin\n  groups: [system:masters]\n" "$TOKEN" > tokens.yaml
chmod 600 tokens.yaml gw.key ca.key
cat > podgate.yaml <<YAML
listen: 127.0.0.1:0
tls:
  cert_file: $D/gw.crt
  key_file: $D/gw.key
clusters:
  - id: bench
    kubeconfig: $D/dc.kubeconfig
    context: podgate
    impersonate: true
auth:
  tokens_file: $D/tokens.yaml
sessions:
  keepalive: 20s
limits:
  max_sessions: 200000
  max_sessions_per_user: 200000
  max_sessions_per_cluster: 200000
  max_connections: 400000
YAML
rm -f dc.kubeconfig
"$BIN/devcluster" --listen 127.0.0.1:0 --kubeconfig-out "$D/dc.kubeconfig" > dc.log 2>&1 &
DC=$!
for _ in $(seq 100); do [ -s dc.kubeconfig ] && break; sleep 0.2; done
valgrind --tool=callgrind --callgrind-out-file="$D/cg.out.%p" "$BIN/podgate" serve \
  --config "$D/podgate.yaml" > pg.out 2> pg.err &
PG=$!
for _ in $(seq 300); do grep -q "https://" pg.out 2>/dev/null && break; sleep 0.2; done
URL=$(grep -o "https://127.0.0.1:[0-9]*" pg.out | head -1)
load() {
  "$BIN/podgate-load" --gateway "$URL" --cluster bench --token "$TOKEN" --gateway-ca "$D/ca.pem" \
    --gateway-pid "$PG" --direct "$D/dc.kubeconfig" --direct-pid "$DC" --leak-timeout 60s \
    --work-dir "$D" "$@" 2>&1 | grep -A3 "^scenario" | tail -3
}
load --scenario interactive --sessions 20 --duration 2s --out warm.json
callgrind_control -z "$PG" > /dev/null
load --scenario interactive --sessions 20 --duration 20s --out inter.json
callgrind_control -d inter "$PG" > /dev/null
callgrind_control -z "$PG" > /dev/null
load --scenario churn --sessions 200 --concurrency 4 --out churn.json
callgrind_control -d churn "$PG" > /dev/null
kill "$PG"; wait "$PG" || true
kill "$DC"; wait "$DC" || true
KEYS=$(python3 -c "import json;print(json.load(open('inter.json'))['scenarios']['interactive']['gateway']['echo_samples'])")
python3 "$HERE/callgrind_split.py" "$D" 20 "$KEYS" 200
