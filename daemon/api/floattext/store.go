package floattext

import "unsafe"

// The stores of AppendFloat32s, through a pointer into capacity it has
// grown: the text's bytes in memory order, first byte lowest.

func store1(p unsafe.Pointer, v byte) { *(*byte)(p) = v }

func store4(p unsafe.Pointer, v uint32) { *(*uint32)(p) = littleEndian32(v) }

func store8(p unsafe.Pointer, v uint64) { *(*uint64)(p) = littleEndian64(v) }
