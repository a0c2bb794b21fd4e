#!/usr/bin/env bash
# Measures aiassistd over loopback HTTP with wrk against the in-process
# ONNX Runtime ceiling (go test -bench), on the same machine in one run.
# Usage: examples/bench/run.sh [seconds-per-point]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
port=18080
out=build/bench
mkdir -p "$out"
command -v wrk >/dev/null || { echo "run.sh: wrk is required (apt-get install wrk)" >&2; exit 1; }
make -s build
go run ./engine/modelgen/cmd/genmodels -out examples/models -which big >/dev/null
go run ./examples/bench/bodies -out "$out"

./bin/aiassistd serve -config examples/bench/bench.cue 2>"$out/daemon.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.2; done

echo "date: $(date -u +%F)  nproc: $(nproc)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  load: $(cut -d" " -f1-3 /proc/loadavg)"
echo
echo "| model | body | batching | clients | req/s (= rows/s) | p50 ms | p99 ms | non-200 |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
point() { # model body-kind clients
	local model=$1 kind=$2 c=$3 body hl=""
	body=$out/${model%-unbatched}.$kind
	[ "$kind" = bin ] && hl=$(cat "$body.hlen")
	BODY_FILE=$body HEADER_LEN=$hl wrk -t1 -c"$c" -d"${secs}s" --latency -s examples/bench/post.lua \
		"http://127.0.0.1:$port/v2/models/$model/infer" >"$out/wrk.txt"
	local rps p50 p99 bad batching=on
	rps=$(awk '/^Requests\/sec/ {print $2}' "$out/wrk.txt")
	p50=$(awk '$1=="50%" {print $2}' "$out/wrk.txt")
	p99=$(awk '$1=="99%" {print $2}' "$out/wrk.txt")
	bad=$(awk '/Non-2xx/ {print $NF}' "$out/wrk.txt")
	case $model in *-unbatched) batching=off ;; esac
	echo "| ${model%-unbatched} | $kind | $batching | $c | $rps | $(ms "$p50") | $(ms "$p99") | ${bad:-0} |"
}
ms() { # wrk prints 1.23ms, 456.00us or 1.02s
	awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'
}
for model in big-mlp demo-mlp; do
	# warm up
	BODY_FILE=$out/$model.json wrk -t1 -c8 -d2s -s examples/bench/post.lua "http://127.0.0.1:$port/v2/models/$model/infer" >/dev/null
	for kind in json bin; do
		for c in 1 8 32 64; do
			point "$model" "$kind" "$c"
			point "$model-unbatched" "$kind" "$c"
		done
	done
done
# This machine's speed drifts by ±10 % from minute to minute (other
# tenants of the host), more than the gaps measured: so the ratios to the
# ceiling come from rounds that each time the ceiling and, right after it,
# the daemon at 64 clients, and the median round is what counts.
go test -c -o "$out/engine.test" ./engine/
ceiling() { # rows/s of the in-process session at batch 32, 3 s
	(cd engine && "../$out/engine.test" -test.run XXX -test.bench 'SessionCeiling/big-mlp/batch=32$' -test.benchtime 3s) |
		awk '{for (i = 2; i <= NF; i++) if ($i == "rows/s") print $(i-1)}'
}
rps() { # kind: req/s of big-mlp at 64 clients
	local body=$out/big-mlp.$1 hl=""
	[ "$1" = bin ] && hl=$(cat "$body.hlen")
	BODY_FILE=$body HEADER_LEN=$hl wrk -t1 -c64 -d"${secs}s" -s examples/bench/post.lua \
		"http://127.0.0.1:$port/v2/models/big-mlp/infer" | awk '/^Requests\/sec/ {print $2}'
}
echo
echo "big-mlp at 64 clients against the in-process ceiling at batch 32 (the batch it forms), in alternating rounds:"
echo
echo "| round | ceiling rows/s | JSON rows/s | JSON / ceiling | binary rows/s | binary / ceiling |"
echo "| --- | --- | --- | --- | --- | --- |"
: >"$out/ratios.txt"
for r in $(seq "${ROUNDS:-5}"); do
	c=$(ceiling)
	j=$(rps json)
	b=$(rps bin)
	awk -v r="$r" -v c="$c" -v j="$j" -v b="$b" 'BEGIN { printf "| %d | %.0f | %.0f | %.2f | %.0f | %.2f |\n", r, c, j, j / c, b, b / c }'
	echo "$c $j $b" >>"$out/ratios.txt"
done
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] }'; }
echo
echo "median round: JSON $(awk '{ print $2 / $1 }' "$out/ratios.txt" | median), binary $(awk '{ print $3 / $1 }' "$out/ratios.txt" | median) the ceiling"
kill $pid; wait $pid 2>/dev/null || true
trap - EXIT
echo
echo "in-process ceiling (go test -run XXX -bench SessionCeiling -benchtime 3s ./engine/):"
go test -run XXX -bench 'SessionCeiling' -benchtime 3s ./engine/ | grep -E '^Benchmark'
echo "load after: $(cut -d" " -f1-3 /proc/loadavg)"
