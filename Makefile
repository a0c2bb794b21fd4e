# Two entry points: `make run` serves the demo config, `make test` runs
# everything CI runs. Both fetch the ONNX Runtime library when missing.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
ORT_DIR := build/onnxruntime
export CGO_ENABLED := 1
export ONNXRUNTIME_LIB ?= $(CURDIR)/$(ORT_DIR)/libonnxruntime.so
GOFLAGS_BUILD := -trimpath -ldflags "-X main.version=$(VERSION)"

.PHONY: all build run test fetch-onnxruntime models bench clean image image-binary

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

# The container image (README.md, "Run in a container"): aiassist:VERSION
# and aiassist:latest in one archive that `podman load` and `docker load`
# read, assembled by packaging/image without a container engine or a base
# image. The same commit gives the same image digest: every time in it is
# the commit's (SOURCE_DATE_EPOCH).
IMAGE_ARCHIVE := build/aiassist-$(VERSION).oci.tar
IMAGE_BIN := build/image/aiassistd
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGE_SOURCE ?= https://github.com/aiassist/aiassist
# The repository declares no license yet; the third-party licenses are in
# the image under /usr/share/doc and /usr/lib/aiassist.
IMAGE_LICENSES ?= NOASSERTION

# image-binary is the image's own release build of the daemon (stripped,
# PIE, version-stamped), the same as the packages' `make dist`
# (build/dist/aiassistd): one of the two goes when both are in main.
image-binary: fetch-onnxruntime
	go build -trimpath -buildmode=pie -ldflags "-s -w -X main.version=$(VERSION)" -o $(IMAGE_BIN) ./cmd/aiassistd

image: image-binary
	go run ./packaging/image/cmd/mkimage -binary $(IMAGE_BIN) -library $(ORT_DIR)/libonnxruntime.so \
		-version $(VERSION) -revision "$(REVISION)" -source $(IMAGE_SOURCE) -licenses $(IMAGE_LICENSES) \
		-epoch $(SOURCE_DATE_EPOCH) -out $(IMAGE_ARCHIVE) -list build/aiassist-$(VERSION).files

clean:
	rm -rf bin build
