// Package onnxpb holds the Go types for the ONNX model format, generated from
// onnx.proto.
//
// onnx.proto is a verbatim copy of /usr/include/onnx/onnx.proto from the
// Debian libonnx-dev 1.12 package (ONNX IR version 8), so the generated code is
// reproducible from a distribution package rather than a network fetch. The
// protoc-gen-go plugin is built from the google.golang.org/protobuf version in
// go.mod, which keeps the generator and the runtime in lockstep.
//
// To regenerate, install protoc (apt-get install protobuf-compiler) and run
// go generate in this directory.
package onnxpb

//go:generate go build -o protoc-gen-go.bin google.golang.org/protobuf/cmd/protoc-gen-go
//go:generate protoc --plugin=protoc-gen-go=protoc-gen-go.bin --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/aiassist/aiassist/engine/onnxpb onnx.proto
//go:generate rm -f protoc-gen-go.bin
