# Two entry points: `make run` serves the demo config, `make test` runs
# everything CI runs. Both fetch the ONNX Runtime library when missing.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
ORT_DIR := build/onnxruntime
export CGO_ENABLED := 1
export ONNXRUNTIME_LIB ?= $(CURDIR)/$(ORT_DIR)/libonnxruntime.so
GOFLAGS_BUILD := -trimpath -ldflags "-X main.version=$(VERSION)"

.PHONY: all build run test fetch-onnxruntime ui-test-deps models bench bench-generate clean dist package image

all: build

fetch-onnxruntime:
	@packaging/fetch-onnxruntime.sh $(ORT_DIR)

build: fetch-onnxruntime
	go build $(GOFLAGS_BUILD) -o bin/aiassistd ./cmd/aiassistd

# The binary the packages and the container image ship: PIE, stripped,
# version stamped, with the hardening Debian builds C with (fortified libc
# calls in the cgo code, full RELRO). Always relinked (go build's cache
# makes that cheap) so that the stamp follows the tree.
DIST_BIN := build/dist/aiassistd
dist:
	CGO_CFLAGS="-O2 -D_FORTIFY_SOURCE=2" go build -trimpath -buildmode=pie \
		-ldflags "-s -w -X main.version=$(VERSION) -extldflags=-Wl,-z,relro,-z,now" -o $(DIST_BIN) ./cmd/aiassistd

# The .deb and .rpm (README.md, "Packages"). nfpm is installed into
# build/bin as a tool rather than required from go.mod, so that its large
# dependency graph stays out of the daemon's module. PKG_VERSION is the
# tree's git describe made a valid deb and rpm version; PKG_RELEASE is the
# package revision (raise it to rebuild the same tree as a newer package).
NFPM_VERSION := v2.45.2
NFPM := build/bin/nfpm
PKG_OUT ?= build
PKG_RELEASE ?= 1
PKG_STAGE := build/pkg
PKGDATA := build/bin/pkgdata
PKG_FORMATS ?= deb rpm
$(NFPM):
	GOBIN=$(CURDIR)/build/bin go install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

package: fetch-onnxruntime dist $(NFPM)
	go build -o $(PKGDATA) ./packaging/deb/pkgdata
	@set -e; \
	ver=$${PKG_VERSION:-$$($(PKGDATA) version)}; \
	rm -rf $(PKG_STAGE) && mkdir -p $(PKG_STAGE) $(PKG_OUT); \
	$(DIST_BIN) man >$(PKG_STAGE)/aiassistd.8 && gzip -9n $(PKG_STAGE)/aiassistd.8; \
	$(DIST_BIN) rules -config packaging/deb/config.cue >$(PKG_STAGE)/aiassist.rules.yml; \
	for f in deb rpm; do $(PKGDATA) copyright -format $$f -binary $(DIST_BIN) -runtime $(ORT_DIR) >$(PKG_STAGE)/copyright.$$f; done; \
	$(PKGDATA) changelog -version "$$ver-$(PKG_RELEASE)" | gzip -9n >$(PKG_STAGE)/changelog.Debian.gz; \
	export AIASSIST_VERSION=$$ver AIASSIST_RELEASE=$(PKG_RELEASE) \
		AIASSIST_ORT=$$(cut -d' ' -f1 $(ORT_DIR)/.version); \
	for f in $(PKG_FORMATS); do \
		i=0; unset $${!AIASSIST_DEP_*}; \
		while read -r dep; do i=$$((i+1)); export AIASSIST_DEP_$$i="$$dep"; done \
			< <($(PKGDATA) depends -format $$f $(DIST_BIN) $(ORT_DIR)/libonnxruntime.so.$$AIASSIST_ORT); \
		[ $$i -gt 0 ] && [ $$i -le 6 ] || { echo "package: $$i dependencies; packaging/deb/nfpm.yaml takes 1 to 6" >&2; exit 1; }; \
		$(NFPM) package --config packaging/deb/nfpm.yaml --packager $$f --target $(PKG_OUT)/; \
	done

run: build
	./bin/aiassistd serve -config examples/config.cue

# The browser tests' npm packages (playwright-core; Chromium is Debian's).
UI_E2E := daemon/api/ui/testdata/e2e
ui-test-deps:
	@[ -d $(UI_E2E)/node_modules/playwright-core ] || npm ci --prefix $(UI_E2E) --no-audit --no-fund --silent

test: fetch-onnxruntime ui-test-deps
	go vet ./...
	go test -race -count=1 -timeout 20m ./...

# Regenerates the committed example models (a test checks they match).
MODELS_OUT ?= examples/models
models:
	go run ./engine/modelgen/cmd/genmodels -out $(MODELS_OUT) -which demo,types,llama,bert

# The HTTP load benchmark of BENCHMARKS.md (needs wrk).
bench: build
	./examples/bench/run.sh

# The container image (README.md, "Run in a container"): aiassist:VERSION
# and aiassist:latest in one archive that `podman load` and `docker load`
# read, assembled by packaging/image without a container engine or a base
# image. The same commit gives the same image digest: every time in it is
# the commit's (SOURCE_DATE_EPOCH).
IMAGE_ARCHIVE := build/aiassist-$(VERSION).oci.tar
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGE_SOURCE ?= https://github.com/aiassist/aiassist
# The repository declares no license yet; the third-party licenses are in
# the image under /usr/share/doc and /usr/lib/aiassist.
IMAGE_LICENSES ?= NOASSERTION

# The image's daemon is the packages' release build (`make dist`).
image: dist fetch-onnxruntime
	go run ./packaging/image/cmd/mkimage -binary $(DIST_BIN) -library $(ORT_DIR)/libonnxruntime.so \
		-version $(VERSION) -revision "$(REVISION)" -source $(IMAGE_SOURCE) -licenses $(IMAGE_LICENSES) \
		-epoch $(SOURCE_DATE_EPOCH) -out $(IMAGE_ARCHIVE) -list build/aiassist-$(VERSION).files

# The generation benchmark of BENCHMARKS.md: bench-llama at 1/4/8/16
# streams, in process, batched and with max_sequences: 1 (a Go client).
bench-generate: build
	./examples/bench/generate.sh

clean:
	rm -rf bin build
