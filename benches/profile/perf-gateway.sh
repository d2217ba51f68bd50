#!/bin/bash
# Samples podgate with perf (cpu-clock) while one podgate-load scenario runs through it.
#
#   benches/profile/perf-gateway.sh BIN_DIR SCENARIO OUT_PREFIX [podgate-load options]
#
# BIN_DIR holds podgate, devcluster and podgate-load (target/release). The load runs with
# --spawn; recording starts once podgate holds FD_RISE (20) more fds than at start (the
# gateway phase), after PROF_DELAY (2) seconds, for PROF_SECS (8) seconds. Writes
# OUT_PREFIX.{json,log,perf.data} and OUT_PREFIX.top.txt (self time by dso and symbol).
# Samples / (1999 Hz x PROF_SECS) = cores podgate used.
set -u
BIN=$(cd "$1" && pwd); SC=$2; OUT=$3; shift 3
"$BIN/podgate-load" --spawn --bin-dir "$BIN" --work-dir "$OUT.run" --scenario "$SC" \
  --out "$OUT.json" "$@" > "$OUT.log" 2>&1 &
LOAD=$!
PID=
for _ in $(seq 1 100); do
  PID=$(pgrep -f "^$BIN/podgate serve" | head -1)
  [ -n "$PID" ] && break
  sleep 0.2
done
[ -n "$PID" ] || { echo "podgate did not start; see $OUT.log" >&2; wait $LOAD; exit 2; }
BASE=$(ls /proc/$PID/fd | wc -l)
while kill -0 $LOAD 2>/dev/null; do
  N=$(ls /proc/$PID/fd 2>/dev/null | wc -l)
  [ "$N" -gt $((BASE + ${FD_RISE:-20})) ] && break
  sleep 0.2
done
sleep "${PROF_DELAY:-2}"
perf record -F 1999 -p "$PID" -o "$OUT.perf.data" -- sleep "${PROF_SECS:-8}" > "$OUT.perf.log" 2>&1
wait $LOAD
echo "podgate-load exit $?"
perf report -i "$OUT.perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
  | grep "%" > "$OUT.top.txt"
grep -m1 "samples" "$OUT.perf.log"
head -30 "$OUT.top.txt"
