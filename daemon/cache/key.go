package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math"
)

// Key names one cached answer: the model it is for, the identity of that
// model's files when loaded, and the SHA-256 of the normalised request.
type Key struct {
	// Model is the model's config name, the metric label.
	Model string
	// ID is the model's identity (Identity); a model loaded from other
	// files has another, so its old answers are never served for it.
	ID  string
	sum [sha256.Size]byte
}

// KeyBuilder hashes the fields of a request that change its answer. Each
// field is written with its name and length, so that two different lists
// of fields never hash the same bytes ("ab"+"c" is not "a"+"bc").
type KeyBuilder struct {
	k Key
	h hash.Hash
}

// NewKey starts the key of a request to model, whose identity is id,
// served the way kind names: requests of different kinds never share an
// answer. The text routes use KindText, embeddings KindEmbeddings.
func NewKey(kind, model, id string) *KeyBuilder {
	b := &KeyBuilder{k: Key{Model: model, ID: id}, h: sha256.New()}
	return b.String("kind", kind).String("model", model).String("id", id)
}

// Kinds of answers.
const (
	KindText       = "text"
	KindEmbeddings = "embeddings"
)

func (b *KeyBuilder) field(name string, kind byte, n int) {
	var hdr [9]byte
	b.h.Write(binary.BigEndian.AppendUint32(hdr[:0], uint32(len(name))))
	b.h.Write([]byte(name))
	hdr[0] = kind
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	b.h.Write(hdr[:])
}

// String adds a string field.
func (b *KeyBuilder) String(name, v string) *KeyBuilder {
	b.field(name, 's', len(v))
	b.h.Write([]byte(v))
	return b
}

// Bytes adds a field of raw bytes.
func (b *KeyBuilder) Bytes(name string, v []byte) *KeyBuilder {
	b.field(name, 'b', len(v))
	b.h.Write(v)
	return b
}

// Strings adds a list of strings; nil and empty are the same.
func (b *KeyBuilder) Strings(name string, v []string) *KeyBuilder {
	b.field(name, 'l', len(v))
	for _, s := range v {
		b.String("", s)
	}
	return b
}

// Int adds an integer field.
func (b *KeyBuilder) Int(name string, v int64) *KeyBuilder {
	b.field(name, 'i', 8)
	b.h.Write(binary.BigEndian.AppendUint64(nil, uint64(v)))
	return b
}

// Float adds a number; -0 is 0, as the sampler cannot tell them apart.
func (b *KeyBuilder) Float(name string, v float64) *KeyBuilder {
	if v == 0 {
		v = 0
	}
	b.field(name, 'f', 8)
	b.h.Write(binary.BigEndian.AppendUint64(nil, math.Float64bits(v)))
	return b
}

// Bool adds a flag.
func (b *KeyBuilder) Bool(name string, v bool) *KeyBuilder {
	x := byte(0)
	if v {
		x = 1
	}
	b.field(name, 't', 1)
	b.h.Write([]byte{x})
	return b
}

// Sum returns the key. The builder must not be used after.
func (b *KeyBuilder) Sum() Key {
	copy(b.k.sum[:], b.h.Sum(nil))
	return b.k
}
