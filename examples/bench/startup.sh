#!/usr/bin/env bash
# Measures the daemon's start-up on examples/config.cue: the time from
# exec to the first 200 from /v2/health/ready, and the resident memory once
# idle, less the model files it loaded (their weights). The config is
# copied beside the original with another port, so that a daemon already on
# 8080 does not answer for this one.
# Usage: examples/bench/startup.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
port=18082
make -s build
cfg=examples/.startup-bench.cue
sed "s/port: 8080/port: $port/" examples/config.cue >"$cfg"
trap 'rm -f "$cfg"' EXIT
weights=$(du -cb examples/models/demo-mlp/model.onnx examples/models/types/model.onnx examples/models/tiny-llama/model.onnx | tail -1 | cut -f1)
echo "date: $(date -u +%F)  nproc: $(nproc)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| run | ready ms | idle RSS MB | model files MB | RSS less model files MB |"
echo "| --- | --- | --- | --- | --- |"
for i in $(seq "$runs"); do
	start=$(date +%s%N)
	./bin/aiassistd serve -config "$cfg" 2>/dev/null &
	pid=$!
	until curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1; do
		kill -0 $pid 2>/dev/null || { echo "startup.sh: the daemon exited" >&2; exit 1; }
		sleep 0.002
	done
	ready=$(( ($(date +%s%N) - start) / 1000000 ))
	sleep 2
	rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
	kill $pid; wait $pid 2>/dev/null || true
	awk -v i="$i" -v r="$ready" -v rss="$rss" -v w="$weights" 'BEGIN { printf "| %d | %d | %.1f | %.2f | %.1f |\n", i, r, rss/1024, w/1048576, rss/1024 - w/1048576 }'
done
