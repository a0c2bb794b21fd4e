package secret

import (
	"bytes"
	"testing"
)

// FuzzDecrypt feeds arbitrary values to Decrypt: it must not panic, must
// refuse everything it did not seal, and a value it did seal must open.
func FuzzDecrypt(f *testing.F) {
	key := bytes.Repeat([]byte{9}, KeySize)
	s, err := NewSealer(key)
	if err != nil {
		f.Fatal(err)
	}
	// A fixed value sealed under key, so that every fuzz worker knows
	// the one input that may open.
	const sealed = "enc:v1:OQ/l3Z5H8Pi8kty6ODEzprNcjlzYMidv04MN5+nc5jI="
	if got, err := s.Decrypt(sealed); err != nil || string(got) != "seed" {
		f.Fatalf("fixed seed does not open: %q, %v", got, err)
	}
	f.Add(sealed)
	f.Add("enc:v1:")
	f.Add("enc:v1:AAAA")
	f.Add("enc:v1:" + sealed[len(Prefix):len(Prefix)+10])
	f.Add("plain")
	f.Fuzz(func(t *testing.T, v string) {
		out, err := s.Decrypt(v)
		if err == nil && v != sealed {
			// Only a value sealed under this key opens; the fuzzer
			// cannot forge a GCM tag.
			t.Fatalf("Decrypt(%q) opened to %q", v, out)
		}
		if IsEncrypted(v) != (len(v) >= len(Prefix) && v[:len(Prefix)] == Prefix) {
			t.Fatalf("IsEncrypted(%q) wrong", v)
		}
		re, err := s.Encrypt([]byte(v))
		if err != nil {
			t.Fatal(err)
		}
		back, err := s.Decrypt(re)
		if err != nil || string(back) != v {
			t.Fatalf("round trip of %q: %q, %v", v, back, err)
		}
	})
}
