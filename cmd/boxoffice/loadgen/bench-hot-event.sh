#!/usr/bin/env bash
# bench-hot-event.sh BIN RATE [serve flags...]
#
# The hot-event measurement of docs/BENCHMARKS.md: a fresh server on a
# temporary data directory (rate limits off), a fresh stadium event, and
# RATE × 20 buyers arriving steadily over 20 s, each making one hold of 1–4
# adjacent seats picked on the live seat map, left to expire after 1 s.
# Prints the generator's report and the CPU of the server, of the generator
# and of the rest of the machine over 13 s of the steady part of the sale,
# read from /proc every 0.5 s. Run it on a quiet machine.
set -euo pipefail
BIN=$1 RATE=$2
shift 2
PORT=${BENCH_HOT_PORT:-18282}
DIR=$(mktemp -d)
trap 'kill $SP 2>/dev/null; wait $SP 2>/dev/null; rm -rf "$DIR"' EXIT
"$BIN" serve --data "$DIR/data" --addr 127.0.0.1:$PORT --anonymous-sessions --rate-limit-per-second 0 \
	--admin-token T "$@" >"$DIR/serve.log" 2>&1 &
SP=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.1; done
"$BIN" load --target http://127.0.0.1:$PORT --admin-token T \
	--create-event-from testdata/venues/harbour-stadium.json --hold-ttl 1s \
	--customers 20000 --no-event-page --hand-picked-share 1 --max-attempts 1 --patience 0 \
	--pay-share 0 --cancel-share 0 --abandon-share 1 --think 0 \
	--buyers $((RATE * 20)) --arrival steady --arrival-over 20s --progress lines \
	>"$DIR/load.out" 2>"$DIR/load.err" &
GP=$!
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
while kill -0 $GP 2>/dev/null; do
	echo "$(date +%s.%N) $(ticks $GP) $(ticks $SP) $(grep -c 'decisions/s' "$DIR/load.err" || true) $(head -1 /proc/stat | awk '{print $2+$3+$4+$6+$7+$8}')" >>"$DIR/cpu"
	sleep 0.5
done
status=0
wait $GP || status=$?
cat "$DIR/load.out"
# The first progress line comes 5 s into the sale; the window is seconds 3–16.
awk -v rate="$RATE" -v hz="$(getconf CLK_TCK)" '
	NF == 5 { t[n] = $1; g[n] = $2; s[n] = $3; p[n] = $4; m[n] = $5; n++ }
	END {
		for (i = 0; i < n && p[i] < 1; i++) {}
		t0 = t[i] - 5; a = -1
		for (i = 0; i < n; i++) { if (t[i] >= t0 + 3 && a < 0) a = i; if (t[i] <= t0 + 16) b = i }
		if (a < 0 || b <= a) { print "cpu: the sale was too short to measure"; exit }
		dt = t[b] - t[a]; gc = (g[b] - g[a]) / hz / dt; sc = (s[b] - s[a]) / hz / dt; mc = (m[b] - m[a]) / hz / dt
		printf "cpu over %.1f s: server %.2f cores (%.0f µs per offered hold), generator %.2f cores (%.0f µs), rest of the machine %.2f cores\n", dt, sc, sc / rate * 1e6, gc, gc / rate * 1e6, mc - sc - gc
	}' "$DIR/cpu"
exit $status
