#!/usr/bin/env bash
# Fetches the official ONNX Runtime CPU build for linux/x64 from the npm
# package onnxruntime-node (npm pack runs no install scripts), checks the
# tarball against a pinned checksum and extracts only the shared library.
# The npm package carries no license file, so ONNX Runtime's (MIT, from its
# repository's LICENSE) is kept beside this script and copied next to the
# library, where the deb and rpm copyright file takes it from.
# Usage: packaging/fetch-onnxruntime.sh [DEST_DIR]   (default: build/onnxruntime)
set -euo pipefail

ORT_VERSION=1.24.1
ORT_TGZ_SHA256=57181cf6e6e711b155c5b942d591fd63ded0b5de5c4922d51fd994e7f6ac2772
ORT_LIB_IN_TGZ=package/bin/napi-v6/linux/x64/libonnxruntime.so.1

here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$here/build/onnxruntime}
lib=$dest/libonnxruntime.so.$ORT_VERSION
stamp=$dest/.version
license=$here/packaging/onnxruntime.LICENSE

if [ -f "$lib" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$ORT_VERSION $ORT_TGZ_SHA256" ]; then
	cmp -s "$license" "$dest/LICENSE" || install -m 0644 "$license" "$dest/LICENSE"
	exit 0
fi

case "$(uname -m)" in
x86_64) ;;
*) echo "fetch-onnxruntime: only linux/x64 is supported by this script, not $(uname -m)" >&2; exit 1 ;;
esac
command -v npm >/dev/null || { echo "fetch-onnxruntime: npm is required (apt-get install npm)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
tgz=$tmp/onnxruntime-node-$ORT_VERSION.tgz
got=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$ORT_TGZ_SHA256" ]; then
	echo "fetch-onnxruntime: checksum mismatch for onnxruntime-node@$ORT_VERSION: got $got, want $ORT_TGZ_SHA256" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp" "$ORT_LIB_IN_TGZ"
mkdir -p "$dest"
install -m 0644 "$tmp/$ORT_LIB_IN_TGZ" "$lib"
ln -sf "libonnxruntime.so.$ORT_VERSION" "$dest/libonnxruntime.so"
install -m 0644 "$license" "$dest/LICENSE"
echo "$ORT_VERSION $ORT_TGZ_SHA256" >"$stamp"
echo "fetch-onnxruntime: installed $lib"
