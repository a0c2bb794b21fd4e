# Two entry points: `make run` serves the demo config, `make test` runs
# everything CI runs. Both fetch the ONNX Runtime library when missing.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
ORT_DIR := build/onnxruntime
export CGO_ENABLED := 1
export ONNXRUNTIME_LIB ?= $(CURDIR)/$(ORT_DIR)/libonnxruntime.so
GOFLAGS_BUILD := -trimpath -ldflags "-X main.version=$(VERSION)"

.PHONY: all build run test fetch-onnxruntime models bench bench-generate clean

all: build

fetch-onnxruntime:
	@packaging/fetch-onnxruntime.sh $(ORT_DIR)

build: fetch-onnxruntime
	go build $(GOFLAGS_BUILD) -o bin/aiassistd ./cmd/aiassistd

run: build
	./bin/aiassistd serve -config examples/config.cue

test: fetch-onnxruntime
	go vet ./...
	go test -race -count=1 -timeout 20m ./...

# Regenerates the committed example models (a test checks they match).
MODELS_OUT ?= examples/models
models:
	go run ./engine/modelgen/cmd/genmodels -out $(MODELS_OUT) -which demo,types,llama

# The HTTP load benchmark of BENCHMARKS.md (needs wrk).
bench: build
	./examples/bench/run.sh

# The generation benchmark of BENCHMARKS.md: bench-llama at 1/4/8/16
# streams, in process, batched and with max_sequences: 1 (a Go client).
bench-generate: build
	./examples/bench/generate.sh

clean:
	rm -rf bin build
