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
kill $pid; wait $pid 2>/dev/null || true
trap - EXIT
echo
echo "in-process ceiling (go test -run XXX -bench SessionCeiling -benchtime 3s ./engine/):"
go test -run XXX -bench 'SessionCeiling' -benchtime 3s ./engine/ | grep -E '^Benchmark'
echo "load after: $(cut -d" " -f1-3 /proc/loadavg)"
