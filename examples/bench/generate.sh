#!/usr/bin/env bash
# Measures text generation on the weights-dominated benchmark decoder
# (bench-llama, generated here) at 1/4/8/16 concurrent streams: in process
# (the ceiling), then over HTTP against aiassistd with continuous batching
# and with max_sequences: 1, in one run.
# Usage: examples/bench/generate.sh [tokens-per-stream]
set -euo pipefail
cd "$(dirname "$0")/../.."
tokens=${1:-32}
port=18081
out=build/bench
mkdir -p "$out"
make -s build
[ -f examples/models/bench-llama/model.onnx ] ||
	go run ./engine/modelgen/cmd/genmodels -out examples/models -which bench-llama >/dev/null
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$PWD/build/onnxruntime/libonnxruntime.so}
go build -o "$out/generate" ./examples/bench/generate

echo "date: $(date -u +%F)  nproc: $(nproc)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$out/generate" -dir examples/models/bench-llama -tokens "$tokens" 

./bin/aiassistd serve -config examples/bench/generate.cue 2>"$out/daemon-generate.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.2; done
"$out/generate" -url "http://127.0.0.1:$port" -models bench-llama,bench-llama-serial -tokens "$tokens" | tail -n +3
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
