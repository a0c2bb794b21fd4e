//go:build !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm)

package floattext

import "math/bits"

// On a big-endian machine a word's lowest byte is last in memory.

func littleEndian32(v uint32) uint32 { return bits.ReverseBytes32(v) }

func littleEndian64(v uint64) uint64 { return bits.ReverseBytes64(v) }
