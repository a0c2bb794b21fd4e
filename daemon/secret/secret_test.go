package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestRoundTrip(t *testing.T) {
	key := NewKey()
	for _, plain := range []string{"", "x", "hs256 secret value with spaces", strings.Repeat("é", 1000)} {
		sealed, err := Encrypt(key, []byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		if !IsEncrypted(sealed) {
			t.Fatalf("IsEncrypted(%q) = false", sealed)
		}
		if len(plain) > 8 && strings.Contains(sealed, plain) { // a short one may occur in base64 by chance
			t.Fatalf("sealed value holds the plaintext")
		}
		got, err := Decrypt(key, sealed)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != plain {
			t.Fatalf("Decrypt = %q, want %q", got, plain)
		}
	}
}

func TestNonceIsFresh(t *testing.T) {
	key := testKey(1)
	a, _ := Encrypt(key, []byte("same"))
	b, _ := Encrypt(key, []byte("same"))
	if a == b {
		t.Fatal("two encryptions of one value are equal: nonce reused")
	}
}

func TestDecryptRefuses(t *testing.T) {
	key := testKey(1)
	plain := "top-secret-plaintext"
	sealed, err := Encrypt(key, []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, Prefix))
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-1] ^= 1
	nonceFlipped := bytes.Clone(raw)
	nonceFlipped[0] ^= 1

	f := func(name string, key []byte, v, want string) {
		t.Helper()
		_, err := Decrypt(key, v)
		if err == nil {
			t.Fatalf("%s: Decrypt succeeded", name)
		}
		msg := err.Error()
		if !strings.Contains(msg, want) {
			t.Fatalf("%s: error %q does not contain %q", name, msg, want)
		}
		if strings.Contains(msg, plain) || strings.Contains(msg, hex.EncodeToString(key)) || strings.Contains(msg, string(key)) {
			t.Fatalf("%s: error %q leaks the key or the plaintext", name, msg)
		}
	}
	f("wrong key", testKey(2), sealed, "wrong key or altered value")
	f("tampered tag", key, Prefix+base64.StdEncoding.EncodeToString(flipped), "wrong key or altered value")
	f("tampered nonce", key, Prefix+base64.StdEncoding.EncodeToString(nonceFlipped), "wrong key or altered value")
	f("no prefix", key, strings.TrimPrefix(sealed, Prefix), `must start with "enc:v1:"`)
	f("other version", key, "enc:v2:"+strings.TrimPrefix(sealed, Prefix), `must start with "enc:v1:"`)
	f("bad base64", key, Prefix+"!!!!", "not valid base64")
	f("too short", key, Prefix+base64.StdEncoding.EncodeToString(raw[:20]), "too short")
	f("empty", key, Prefix, "too short")
	f("short key", key[:16], sealed, "want 32")
	if _, err := Decrypt(testKey(2), sealed); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong key: error %v is not ErrDecrypt", err)
	}
	if _, err := Encrypt(key[:31], []byte("x")); err == nil {
		t.Fatal("Encrypt accepted a 31-byte key")
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	if err := WriteKeyFile(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if len(data) != 65 || data[64] != '\n' {
		t.Fatalf("key file is %q, want 64 hex digits and a newline", data)
	}
	key, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != KeySize || hex.EncodeToString(key) != string(data[:64]) {
		t.Fatalf("LoadKeyFile returned %x, file holds %s", key, data[:64])
	}
	// The key works for a round trip.
	sealed, _ := Encrypt(key, []byte("v"))
	if got, err := Decrypt(key, sealed); err != nil || string(got) != "v" {
		t.Fatalf("round trip with loaded key: %q, %v", got, err)
	}

	// Never overwrite.
	err = WriteKeyFile(path)
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second WriteKeyFile: %v", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Fatal("second WriteKeyFile changed the file")
	}

	// Two new keys differ.
	other := filepath.Join(dir, "other.key")
	if err := WriteKeyFile(other); err != nil {
		t.Fatal(err)
	}
	if k2, _ := LoadKeyFile(other); bytes.Equal(k2, key) {
		t.Fatal("two new key files hold the same key")
	}
}

func TestLoadKeyFileRefuses(t *testing.T) {
	dir := t.TempDir()
	good := strings.Repeat("ab", 32)
	f := func(name, content string, mode os.FileMode, want string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeyFile(path)
		if want == "" {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %v, want it to contain %q", name, err, want)
		}
		if strings.Contains(err.Error(), good) {
			t.Fatalf("%s: error leaks the key", name)
		}
	}
	f("ok-lf", good+"\n", 0o600, "")
	f("ok-crlf", good+"\r\n", 0o400, "")
	f("ok-bare", strings.ToUpper(good), 0o600, "")
	f("group", good+"\n", 0o640, "chmod 600 "+filepath.Join(dir, "group"))
	f("world", good+"\n", 0o604, "chmod 600")
	f("short", good[:62]+"\n", 0o600, "64 hex digits")
	f("long", good+"00\n", 0o600, "64 hex digits")
	f("two-newlines", good+"\n\n", 0o600, "64 hex digits")
	f("not-hex", strings.Repeat("zz", 32), 0o600, "other characters")
	f("raw", string(testKey(7)), 0o600, "64 hex digits")
	f("huge", strings.Repeat("a", 5000), 0o600, "64 hex digits")
	if _, err := LoadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
	if _, err := LoadKeyFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: %v", err)
	}
}

func BenchmarkSealer(b *testing.B) {
	s, _ := NewSealer(testKey(3))
	plain := []byte(strings.Repeat("user query text ", 16))
	b.Run("encrypt", func(b *testing.B) {
		for b.Loop() {
			s.Encrypt(plain)
		}
	})
	sealed, _ := s.Encrypt(plain)
	b.Run("decrypt", func(b *testing.B) {
		for b.Loop() {
			s.Decrypt(sealed)
		}
	})
}
