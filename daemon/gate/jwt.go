package gate

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTOptions configures bearer tokens (auth.jwt).
type JWTOptions struct {
	// HS256Secret verifies HS256 tokens; at least 32 bytes. Decrypt an
	// enc:v1 value before passing it.
	HS256Secret []byte
	// PublicKeyFiles are PEM files of RSA, EC P-256 or Ed25519 public
	// keys (or certificates), re-read by every New.
	PublicKeyFiles []PublicKeyFile
	// JWKSFile is a JSON Web Key Set file, re-read by every New.
	JWKSFile string
	// Keys are public keys given directly, as ParseJWKS or
	// ParsePublicKeyPEM return them.
	Keys []VerifyKey
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be among the token's aud.
	Audience string
	// Leeway is the clock skew allowed for exp, nbf and iat. Zero means
	// DefaultLeeway; a negative value means none.
	Leeway time.Duration
	// CacheSize is how many verified tokens are remembered, so that a
	// token sent again skips its signature check. Zero means
	// DefaultTokenCache; a negative value turns the cache off.
	CacheSize int
}

// PublicKeyFile is one PEM file; KID, when set, is the kid header that
// selects it. A key without a kid verifies tokens without one.
type PublicKeyFile struct {
	Path string
	KID  string
}

// VerifyKey is a public key and the kid that selects it ("" for tokens
// without a kid).
type VerifyKey struct {
	KID string
	Key crypto.PublicKey
}

// DefaultLeeway is the clock skew allowed when JWTOptions.Leeway is zero.
const DefaultLeeway = 30 * time.Second

const minHS256Secret = 32

// algFor pins a key to its one algorithm: the token's header never
// chooses how a key is used, so an RSA public key cannot be taken for an
// HMAC secret and "none" has no key at all.
func algFor(k crypto.PublicKey) (string, error) {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key has %d bits; at least 2048 are needed", k.N.BitLen())
		}
		return "RS256", nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("EC key on curve %s; only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return "ES256", nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("Ed25519 key has the wrong size")
		}
		return "EdDSA", nil
	}
	return "", fmt.Errorf("unsupported key type %T; use RSA, EC P-256 or Ed25519", k)
}

// ParsePublicKeyPEM reads the first PEM block of data: a PUBLIC KEY, an
// RSA PUBLIC KEY or a CERTIFICATE.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found; want -----BEGIN PUBLIC KEY-----")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(block.Bytes); err == nil {
			k = c.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE") {
			return nil, fmt.Errorf("PEM block is a %s; give the public key only (openssl pkey -in FILE -pubout)", block.Type)
		}
		return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot parse %s: %w", block.Type, err)
	}
	if _, err := algFor(k); err != nil {
		return nil, err
	}
	return k, nil
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

// ParseJWKS reads a JSON Web Key Set. Keys meant for encryption or for
// algorithms other than RS256, ES256 and EdDSA are left out and named in
// skipped, so that an identity provider's whole set can be used as it is.
func ParseJWKS(data []byte) (keys []VerifyKey, skipped []string, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	kids := map[string]bool{}
	for i, raw := range set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, nil, fmt.Errorf("key %d: %w", i, err)
		}
		name := fmt.Sprintf("key %d", i)
		if k.Kid != "" {
			name = fmt.Sprintf("key %d (kid %s)", i, echo(k.Kid))
		}
		if k.D != "" {
			return nil, nil, fmt.Errorf("%s holds a private key; publish public keys only", name)
		}
		if k.Use != "" && k.Use != "sig" {
			skipped = append(skipped, name+": use is not sig")
			continue
		}
		pub, err := jwkKey(k)
		if errors.Is(err, errSkip) {
			skipped = append(skipped, name+": "+err.Error())
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		alg, err := algFor(pub)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		if k.Alg != "" && k.Alg != alg {
			skipped = append(skipped, name+": alg "+echo(k.Alg)+" is not supported")
			continue
		}
		if k.Kid != "" {
			if kids[k.Kid] {
				return nil, nil, fmt.Errorf("%s: kid is used twice", name)
			}
			kids[k.Kid] = true
		}
		keys = append(keys, VerifyKey{KID: k.Kid, Key: pub})
	}
	return keys, skipped, nil
}

var errSkip = errors.New("unsupported")

type skipError string

func (e skipError) Error() string   { return string(e) }
func (e skipError) Is(t error) bool { return t == errSkip }

func b64(s, field string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%s is not base64url", field)
	}
	return b, nil
}

func jwkKey(k jwk) (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := b64(k.N, "n")
		if err != nil {
			return nil, err
		}
		e, err := b64(k.E, "e")
		if err != nil {
			return nil, err
		}
		if len(e) > 4 {
			return nil, errors.New("e is too large")
		}
		ev := int(new(big.Int).SetBytes(e).Int64())
		if ev < 3 || ev%2 == 0 {
			return nil, errors.New("e must be an odd number of at least 3")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ev}, nil
	case "EC":
		if k.Crv != "P-256" {
			return nil, skipError("curve " + echo(k.Crv) + " is not supported")
		}
		x, err := b64(k.X, "x")
		if err != nil {
			return nil, err
		}
		y, err := b64(k.Y, "y")
		if err != nil {
			return nil, err
		}
		if len(x) != 32 || len(y) != 32 {
			return nil, errors.New("x and y must be 32 bytes for P-256")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("not a point on P-256: %w", err)
		}
		return pub, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, skipError("curve " + echo(k.Crv) + " is not supported")
		}
		x, err := b64(k.X, "x")
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, errors.New("x must be 32 bytes for Ed25519")
		}
		return ed25519.PublicKey(x), nil
	case "oct":
		return nil, skipError("symmetric keys belong in auth.jwt.hs256_secret, not in a JWKS file")
	}
	return nil, skipError("kty " + echo(k.Kty) + " is not supported")
}

// verifier checks tokens against the keys of one algorithm.
type verifier struct {
	alg    string
	parser *jwt.Parser
	keys   any // one key, or jwt.VerificationKeySet
}

func (v *verifier) add(k any) {
	switch have := v.keys.(type) {
	case nil:
		v.keys = k
	case jwt.VerificationKeySet:
		have.Keys = append(have.Keys, k)
		v.keys = have
	default:
		v.keys = jwt.VerificationKeySet{Keys: []jwt.VerificationKey{have, k}}
	}
}

// jwtAuth verifies bearer tokens.
type jwtAuth struct {
	byKID  map[string]*verifier
	byAlg  map[string]*verifier // keys without a kid
	leeway time.Duration
	now    func() time.Time
	cache  *tokenCache // nil: off
}

func newJWTAuth(o *JWTOptions, now func() time.Time) (*jwtAuth, []string, error) {
	leeway := o.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	popts := []jwt.ParserOption{
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		// One spelling per token: no padding, no stray low bits.
		jwt.WithStrictDecoding(),
	}
	if o.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		popts = append(popts, jwt.WithAudience(o.Audience))
	}
	a := &jwtAuth{byKID: map[string]*verifier{}, byAlg: map[string]*verifier{}, leeway: leeway, now: now}
	switch {
	case o.CacheSize == 0:
		a.cache = newTokenCache(DefaultTokenCache)
	case o.CacheSize > 0:
		a.cache = newTokenCache(o.CacheSize)
	}
	newVerifier := func(alg string) *verifier {
		return &verifier{alg: alg, parser: jwt.NewParser(append([]jwt.ParserOption{jwt.WithValidMethods([]string{alg})}, popts...)...)}
	}
	add := func(kid string, alg string, key any) error {
		if kid != "" {
			if _, dup := a.byKID[kid]; dup {
				return fmt.Errorf("kid %s names two keys", echo(kid))
			}
			v := newVerifier(alg)
			v.add(key)
			a.byKID[kid] = v
			return nil
		}
		v := a.byAlg[alg]
		if v == nil {
			v = newVerifier(alg)
			a.byAlg[alg] = v
		}
		v.add(key)
		return nil
	}
	if len(o.HS256Secret) > 0 {
		if len(o.HS256Secret) < minHS256Secret {
			return nil, nil, fmt.Errorf("jwt: hs256_secret is %d bytes; use at least %d random bytes (for example openssl rand -base64 48)", len(o.HS256Secret), minHS256Secret)
		}
		add("", "HS256", bytes.Clone(o.HS256Secret))
	}
	keys := append([]VerifyKey(nil), o.Keys...)
	for _, f := range o.PublicKeyFiles {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("jwt: cannot read public key: %w", err)
		}
		k, err := ParsePublicKeyPEM(data)
		if err != nil {
			return nil, nil, fmt.Errorf("jwt: public key %s: %w", f.Path, err)
		}
		keys = append(keys, VerifyKey{KID: f.KID, Key: k})
	}
	var skipped []string
	if o.JWKSFile != "" {
		data, err := os.ReadFile(o.JWKSFile)
		if err != nil {
			return nil, nil, fmt.Errorf("jwt: cannot read JWKS: %w", err)
		}
		ks, sk, err := ParseJWKS(data)
		if err != nil {
			return nil, nil, fmt.Errorf("jwt: JWKS %s: %w", o.JWKSFile, err)
		}
		for _, s := range sk {
			skipped = append(skipped, o.JWKSFile+": "+s)
		}
		keys = append(keys, ks...)
	}
	for _, k := range keys {
		alg, err := algFor(k.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("jwt: key %s: %w", echo(k.KID), err)
		}
		if err := add(k.KID, alg, k.Key); err != nil {
			return nil, nil, fmt.Errorf("jwt: %w", err)
		}
	}
	if len(a.byKID) == 0 && len(a.byAlg) == 0 {
		return nil, nil, errors.New("jwt: no key configured; set hs256_secret, public key files or a JWKS file")
	}
	return a, skipped, nil
}

// tokenClaims are the claims the gate reads.
type tokenClaims struct {
	jwt.RegisteredClaims
	Scope  scopeClaim `json:"scope,omitempty"`
	Scp    scopeClaim `json:"scp,omitempty"`
	Models []string   `json:"models,omitempty"`
}

// scopeClaim reads a space-separated string or a list of strings; both
// forms are in use (OAuth's scope, Azure's and Okta's scp).
type scopeClaim []string

func (s *scopeClaim) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = strings.Fields(v)
		return nil
	}
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("scope must be a string or a list of strings")
	}
	*s = v
	return nil
}

func (s scopeClaim) MarshalJSON() ([]byte, error) {
	return json.Marshal(strings.Join(s, " "))
}

type tokenHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// verify checks a token and returns its principal, from the cache when
// the same token verified before and its times still hold.
func (a *jwtAuth) verify(tok []byte) (*Principal, *Refusal) {
	if a.cache == nil {
		p, _, r := a.verifyFull(tok)
		return p, r
	}
	sum := sha256.Sum256(tok)
	if t := a.cache.get(sum); t != nil {
		if t.valid(a.now(), a.leeway) {
			return t.p, nil
		}
		// Expired since: the full check says how.
		a.cache.drop(sum)
	}
	p, t, r := a.verifyFull(tok)
	if r == nil {
		a.cache.put(sum, t)
	}
	return p, r
}

// verifyFull checks a token's signature and claims. The header's kid
// picks the key; the key fixes the algorithm.
func (a *jwtAuth) verifyFull(tok []byte) (*Principal, *cachedToken, *Refusal) {
	s := string(tok)
	dot := strings.IndexByte(s, '.')
	if dot <= 0 || strings.Count(s, ".") != 2 {
		return nil, nil, unauthorized("token_malformed", "bearer token is neither an API key (aia_…) nor a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s[:dot])
	if err != nil {
		return nil, nil, unauthorized("token_malformed", "JWT header is not base64url")
	}
	var h tokenHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, nil, unauthorized("token_malformed", "JWT header is not a JSON object")
	}
	if len(h.Crit) > 0 {
		return nil, nil, unauthorized("token_malformed", "JWT header has crit extensions, which are not supported")
	}
	var v *verifier
	if h.Kid != "" {
		v = a.byKID[h.Kid]
		if v == nil {
			return nil, nil, unauthorized("token_unknown_kid", "JWT kid "+echo(h.Kid)+" names no configured key; check auth.jwt keys or the JWKS file")
		}
	} else {
		v = a.byAlg[h.Alg]
		if v == nil {
			if len(a.byAlg) == 0 {
				return nil, nil, unauthorized("token_unknown_kid", "JWT has no kid, and every configured key needs one")
			}
			return nil, nil, unauthorized("token_alg", "JWT algorithm "+echo(h.Alg)+" is not accepted here")
		}
	}
	var c tokenClaims
	_, err = v.parser.ParseWithClaims(s, &c, func(*jwt.Token) (any, error) { return v.keys, nil })
	if err != nil {
		return nil, nil, tokenRefusal(err, &c)
	}
	if c.Subject == "" {
		return nil, nil, unauthorized("token_claims", "JWT has no sub claim")
	}
	p := &Principal{
		Kind:    KindJWT,
		Name:    c.Subject,
		Subject: c.Subject,
		Issuer:  c.Issuer,
		Scopes:  append(c.Scope[:len(c.Scope):len(c.Scope)], c.Scp...),
		subject: "jwt:" + c.Subject,
	}
	if c.Models != nil {
		p.jwtModels = c.Models
		p.jwtNarrowed = true
	}
	t := &cachedToken{p: p}
	if c.ExpiresAt != nil {
		t.exp = c.ExpiresAt.Unix()
	}
	if c.NotBefore != nil {
		t.nbf = c.NotBefore.Unix()
	}
	if c.IssuedAt != nil {
		t.iat = c.IssuedAt.Unix()
	}
	return p, t, nil
}

func tokenRefusal(err error, c *tokenClaims) *Refusal {
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if strings.Contains(err.Error(), "signing method") {
			return unauthorized("token_alg", "JWT algorithm does not match the key its kid selects")
		}
		return unauthorized("token_signature", "JWT signature is invalid")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthorized("token_malformed", "JWT is malformed")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case c.ExpiresAt == nil:
			return unauthorized("token_claims", "JWT has no exp claim; tokens must expire")
		case c.Issuer == "":
			return unauthorized("token_issuer", "JWT has no iss claim; auth.jwt.issuer needs one")
		case len(c.Audience) == 0:
			return unauthorized("token_audience", "JWT has no aud claim; auth.jwt.audience needs one")
		}
		return unauthorized("token_claims", "JWT lacks a required claim")
	case errors.Is(err, jwt.ErrTokenExpired):
		msg := "JWT has expired"
		if c.ExpiresAt != nil {
			msg = "JWT expired at " + c.ExpiresAt.UTC().Format(time.RFC3339) + "; get a new token"
		}
		return unauthorized("token_expired", msg)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		msg := "JWT is not valid yet"
		if c.NotBefore != nil {
			msg = "JWT is not valid before " + c.NotBefore.UTC().Format(time.RFC3339)
		}
		return unauthorized("token_not_yet_valid", msg)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return unauthorized("token_not_yet_valid", "JWT iat is in the future; check the issuer's clock")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return unauthorized("token_issuer", "JWT issuer is not the one configured (auth.jwt.issuer)")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return unauthorized("token_audience", "JWT audience does not include the one configured (auth.jwt.audience)")
	}
	return unauthorized("token_invalid", "JWT is not valid")
}

// MintHS256 makes an HS256 token for sub, valid for ttl from now, as
// `aiassistd token` prints it. scope is space-separated; models, issuer
// and audience are left out when empty.
func MintHS256(secret []byte, sub, scope string, ttl time.Duration, models []string, issuer, audience string) (string, error) {
	if len(secret) < minHS256Secret {
		return "", fmt.Errorf("hs256_secret is %d bytes; use at least %d random bytes", len(secret), minHS256Secret)
	}
	if sub == "" {
		return "", errors.New("a token needs a subject (-sub)")
	}
	if ttl <= 0 {
		return "", errors.New("a token needs a positive lifetime (-ttl)")
	}
	now := time.Now().Truncate(time.Second)
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			Issuer:    issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Scope:  strings.Fields(scope),
		Models: models,
	}
	if audience != "" {
		c.Audience = jwt.ClaimStrings{audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}
