package gate

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// API keys look like aia_<id>_<secret>: the id is 8 characters of
// lowercase base32 (40 bits) that logs and metrics may show, the secret
// 26 characters of lowercase base32 (130 bits) from crypto/rand. The
// config holds only sha256 of the whole key.
const (
	keyPrefix    = "aia_"
	keyIDLen     = 8
	minSecretLen = 26 // 130 bits; 128 is the floor
	maxSecretLen = 64
	hashPrefix   = "sha256:"
)

// NewKey returns a new random API key.
func NewKey() string {
	// rand.Text is 26 base32 characters, at least 128 bits.
	secret := strings.ToLower(rand.Text())
	id := strings.ToLower(rand.Text())[:keyIDLen]
	return keyPrefix + id + "_" + secret
}

// HashKey returns the form of key the config holds: "sha256:<hex>".
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// KeyID returns the id part of an API key, which may be logged, and
// whether key has the form of an API key at all.
func KeyID(key string) (string, bool) {
	id, ok := parseKey([]byte(key))
	return string(id), ok
}

func isBase32Lower(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// parseKey checks the form aia_<id>_<secret> and returns the id.
func parseKey(k []byte) (id []byte, ok bool) {
	if !bytes.HasPrefix(k, []byte(keyPrefix)) {
		return nil, false
	}
	rest := k[len(keyPrefix):]
	if len(rest) < keyIDLen+1+minSecretLen || len(rest) > keyIDLen+1+maxSecretLen || rest[keyIDLen] != '_' {
		return nil, false
	}
	id, secret := rest[:keyIDLen], rest[keyIDLen+1:]
	if !isBase32Lower(id) || !isBase32Lower(secret) {
		return nil, false
	}
	return id, true
}

// credential is what a request presented.
type credential struct {
	kind  credKind
	value []byte // the key or token; never logged
}

type credKind uint8

const (
	credNone    credKind = iota
	credKey              // an aia_ key
	credToken            // a bearer value that is not an aia_ key: a JWT candidate
	credBadKey           // X-API-Key that is not an aia_ key
	credBadAuth          // Authorization that is not "Bearer <value>"
)

// maxCredential bounds the credential a request may present; a JWT from
// a usual identity provider is well under 4 KiB.
const maxCredential = 8 << 10

// parseCredential reads X-API-Key, else Authorization: Bearer. A client
// that sends both (an OpenAI SDK with a placeholder key and the seed's
// header) is judged by X-API-Key, the more specific one.
func parseCredential(apiKey, authorization []byte) credential {
	if v := bytes.TrimSpace(apiKey); len(v) > 0 {
		if _, ok := parseKey(v); ok {
			return credential{credKey, v}
		}
		return credential{kind: credBadKey}
	}
	a := bytes.TrimSpace(authorization)
	if len(a) == 0 {
		return credential{}
	}
	const scheme = "bearer "
	if len(a) <= len(scheme) || !bytes.EqualFold(a[:len(scheme)], []byte(scheme)) {
		return credential{kind: credBadAuth}
	}
	v := bytes.TrimSpace(a[len(scheme):])
	if len(v) == 0 || len(v) > maxCredential {
		return credential{kind: credBadAuth}
	}
	if bytes.HasPrefix(v, []byte(keyPrefix)) {
		if _, ok := parseKey(v); ok {
			return credential{credKey, v}
		}
		return credential{kind: credBadKey}
	}
	return credential{credToken, v}
}

// Key is one configured API key.
type Key struct {
	// Name is the key's name in the config (auth.api_keys.NAME); logs
	// and the expiry gauge use it.
	Name string
	// Hash is "sha256:<64 hex digits>" of the key.
	Hash string
	// Principal is who the key stands for; several keys may name one
	// principal so that rotations overlap. Default: Name.
	Principal string
	// Created is when the key was made, for rotation.max_age; zero
	// falls back to NotBefore.
	Created time.Time
	// NotBefore and NotAfter bound when the key works; zero is unbounded.
	NotBefore, NotAfter time.Time
	// Models the key may call; empty means all.
	Models []string
	// AllowIPs narrows access.allow_ips for this key (CIDR or address).
	AllowIPs []string
	// Scopes the key grants; empty means DefaultKeyScopes.
	Scopes []string
	// Limit names the key's rate-limit class; the gate only carries it.
	Limit string
	// NoCache keeps the key's requests out of the response cache; the
	// gate only carries it.
	NoCache bool
}

// DefaultKeyScopes are what a key without scopes grants.
var DefaultKeyScopes = []string{ScopeModelCall}

// ScopeModelCall is the scope inference needs (the seed's).
const ScopeModelCall = "model:call"

// ScopeAdmin is the scope the operator's status data (/status.json)
// needs when auth is on.
const ScopeAdmin = "admin"

// keyEntry is a configured key, ready for lookup.
type keyEntry struct {
	Key
	hash   [sha256.Size]byte
	allow  IPList
	models map[string]struct{} // nil: all
	scopes []string
	// principal is built once per key; its KeyID comes from the first
	// request that presents the key (the config does not know the id).
	principal principalCell
}

func parseHash(h string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	hexPart, ok := strings.CutPrefix(h, hashPrefix)
	if !ok || len(hexPart) != 2*sha256.Size {
		return out, fmt.Errorf(`hash must be "sha256:" followed by 64 hex digits, as aiassistd keygen prints it`)
	}
	if _, err := hex.Decode(out[:], []byte(hexPart)); err != nil {
		return out, fmt.Errorf(`hash must be "sha256:" followed by 64 hex digits, as aiassistd keygen prints it`)
	}
	return out, nil
}

func newKeyEntries(keys []Key) ([]keyEntry, error) {
	out := make([]keyEntry, len(keys))
	seen := map[[sha256.Size]byte]string{}
	names := map[string]bool{}
	for i, k := range keys {
		if k.Name == "" {
			return nil, fmt.Errorf("api key %d has no name", i)
		}
		if !validKeyName(k.Name) {
			return nil, fmt.Errorf("api key name %s: use up to 64 letters, digits, '.', '_' or '-' (it is a metric label)", echo(k.Name))
		}
		if names[k.Name] {
			return nil, fmt.Errorf("api key %q is listed twice", k.Name)
		}
		names[k.Name] = true
		h, err := parseHash(k.Hash)
		if err != nil {
			return nil, fmt.Errorf("api key %q: %w", k.Name, err)
		}
		if other, dup := seen[h]; dup {
			return nil, fmt.Errorf("api keys %q and %q have the same hash; give each client its own key (aiassistd keygen)", other, k.Name)
		}
		seen[h] = k.Name
		if !k.NotBefore.IsZero() && !k.NotAfter.IsZero() && !k.NotAfter.After(k.NotBefore) {
			return nil, fmt.Errorf("api key %q: not_after %s is not after not_before %s", k.Name, k.NotAfter.Format(time.RFC3339), k.NotBefore.Format(time.RFC3339))
		}
		allow, err := ParseIPList(k.AllowIPs)
		if err != nil {
			return nil, fmt.Errorf("api key %q: allow_ips: %w", k.Name, err)
		}
		e := &out[i] // in place: an entry holds an atomic pointer
		e.Key, e.hash, e.allow = k, h, allow
		if e.Principal == "" {
			e.Principal = k.Name
		}
		if len(k.Models) > 0 {
			e.models = make(map[string]struct{}, len(k.Models))
			for _, m := range k.Models {
				e.models[m] = struct{}{}
			}
		}
		e.scopes = k.Scopes
		if len(e.scopes) == 0 {
			e.scopes = DefaultKeyScopes
		}
	}
	return out, nil
}

// lookupKey finds the configured key whose hash is sha256(presented).
// Every configured hash is compared, in constant time, whatever matches:
// the time taken says how many keys there are, not which one matched.
func lookupKey(keys []keyEntry, presented []byte) *keyEntry {
	sum := sha256.Sum256(presented)
	match := -1
	for i := range keys {
		eq := subtle.ConstantTimeCompare(sum[:], keys[i].hash[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return nil
	}
	return &keys[match]
}

func validKeyName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
