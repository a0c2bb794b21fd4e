// Package secret seals small values with AES-256-GCM under a 32-byte key
// kept in a file, so that the config (and later, log fields) can hold
// secrets as "enc:v1:<base64>" instead of in the clear.
//
// The key file holds the key as 64 hexadecimal digits, optionally
// followed by one newline: text, so it can be printed, backed up and
// made with `openssl rand -hex 32`. A file readable by group or others is
// refused.
//
// Each value gets a fresh random 96-bit nonce; under one key that is
// safe for about 2^32 values (NIST SP 800-38D), plenty for config
// secrets. A log-field sealer writing more than that should rotate keys.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Prefix starts every sealed value; the version lets a later format
// coexist with this one.
const Prefix = "enc:v1:"

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

const nonceSize = 12

// ErrDecrypt means a sealed value failed authentication: the key is not
// the one it was sealed with, or the value was changed.
var ErrDecrypt = errors.New("cannot decrypt: wrong key or altered value; check secrets.key_file and re-run aiassistd encrypt")

// Sealer encrypts and decrypts values under one key. It is safe for
// concurrent use; building it once saves the key schedule per value.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key is %d bytes, want %d (64 hex digits in the key file)", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cannot use secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("cannot use secret key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Encrypt seals plaintext and returns "enc:v1:" followed by the standard
// base64 of nonce|ciphertext|tag.
func (s *Sealer) Encrypt(plaintext []byte) (string, error) {
	buf := make([]byte, nonceSize, nonceSize+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("cannot make a nonce: %w", err)
	}
	buf = s.aead.Seal(buf, buf[:nonceSize], plaintext, nil)
	return Prefix + base64.StdEncoding.EncodeToString(buf), nil
}

// Decrypt opens a value made by Encrypt. Errors say what is wrong with
// the value's form, never what it holds.
func (s *Sealer) Decrypt(v string) ([]byte, error) {
	rest, ok := strings.CutPrefix(v, Prefix)
	if !ok {
		return nil, errors.New(`sealed value must start with "enc:v1:"`)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, errors.New(`sealed value is not valid base64 after "enc:v1:"; copy it whole from aiassistd encrypt`)
	}
	if len(raw) < nonceSize+s.aead.Overhead() {
		return nil, errors.New("sealed value is too short to be an enc:v1 value; copy it whole from aiassistd encrypt")
	}
	out, err := s.aead.Open(nil, raw[:nonceSize], raw[nonceSize:], nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// Encrypt seals plaintext under key; see Sealer.Encrypt.
func Encrypt(key, plaintext []byte) (string, error) {
	s, err := NewSealer(key)
	if err != nil {
		return "", err
	}
	return s.Encrypt(plaintext)
}

// Decrypt opens a value sealed under key; see Sealer.Decrypt.
func Decrypt(key []byte, v string) ([]byte, error) {
	s, err := NewSealer(key)
	if err != nil {
		return nil, err
	}
	return s.Decrypt(v)
}

// IsEncrypted tells whether v is written in the sealed form. It does not
// check that v decrypts.
func IsEncrypted(v string) bool {
	return strings.HasPrefix(v, Prefix)
}

// maxKeyFile bounds what LoadKeyFile reads: a key file is 65 bytes, so
// anything much larger is the wrong file.
const maxKeyFile = 1024

// LoadKeyFile reads a key file: 64 hex digits, optionally followed by a
// newline (LF or CRLF). It refuses a file that group or others may read.
func LoadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open secret key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot open secret key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s has mode %04o, readable by group or others; run: chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read secret key file: %w", err)
	}
	return parseKey(path, data)
}

func parseKey(path string, data []byte) ([]byte, error) {
	text := string(data)
	text = strings.TrimSuffix(text, "\n")
	text = strings.TrimSuffix(text, "\r")
	if len(text) != 2*KeySize {
		return nil, fmt.Errorf("secret key file %s must hold %d hex digits and an optional newline (got %d bytes); make one with aiassistd keygen -master-key FILE", path, 2*KeySize, len(data))
	}
	key, err := hex.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("secret key file %s must hold %d hex digits; it has other characters; make one with aiassistd keygen -master-key FILE", path, 2*KeySize)
	}
	return key, nil
}

// NewKey returns a fresh random 32-byte key.
func NewKey() []byte {
	key := make([]byte, KeySize)
	rand.Read(key) // never fails on the supported platforms
	return key
}

// WriteKeyFile writes a new random key to path as 64 hex digits and a
// newline, with mode 0600. It never replaces an existing file: losing the
// old key would make every value sealed with it unreadable.
func WriteKeyFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("secret key file %s exists; refusing to overwrite it (values sealed with it would become unreadable); choose another path or move the old file away", path)
		}
		return fmt.Errorf("cannot create secret key file: %w", err)
	}
	// The umask cannot widen 0600, but a file created on a filesystem
	// that ignores modes is caught here rather than on next load.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("cannot set mode 0600 on secret key file: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(NewKey()) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("cannot write secret key file: %w", err)
	}
	return nil
}
