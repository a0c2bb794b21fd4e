// Package modelgen builds small ONNX models deterministically, for tests,
// examples and benchmarks.
//
// Every generator is a pure function of its arguments: weights come from a
// seeded splitmix64 stream and serialization is deterministic, so the same
// arguments always give byte-identical files. That lets the repository commit
// the small example models and have a test prove they match a fresh
// generation, while large benchmark models are generated on demand.
//
// The package depends only on onnxpb and protobuf; it never links ONNX Runtime,
// so the generator builds without cgo. The graph helpers in graph.go (Graph,
// Tensor, ValueInfo, attributes) are meant to be reused by further generators.
package modelgen
