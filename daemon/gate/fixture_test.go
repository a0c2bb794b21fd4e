package gate

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/golang-jwt/jwt/v5"
)

// Test keys are made at test time; nothing private is committed.
type testKeys struct {
	rsa     *rsa.PrivateKey
	rsa2    *rsa.PrivateKey // published in the JWKS under kid "rsa-jwks"
	ec      *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	rsaPEM  []byte // public
	edPEM   []byte // public
	jwks    []byte
	hs      []byte
	otherHS []byte
}

var (
	keysOnce sync.Once
	tk       testKeys
)

func mustPKIX(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func keys() *testKeys {
	keysOnce.Do(func() {
		var err error
		if tk.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if tk.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if tk.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, tk.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
		tk.rsaPEM = mustPKIX(&tk.rsa.PublicKey)
		tk.edPEM = mustPKIX(tk.ed.Public())
		ecPub, _ := tk.ec.PublicKey.Bytes() // 0x04 | x | y
		set := map[string]any{"keys": []map[string]string{
			{"kty": "EC", "kid": "ec1", "crv": "P-256", "alg": "ES256", "use": "sig", "x": b64u(ecPub[1:33]), "y": b64u(ecPub[33:])},
			{"kty": "RSA", "kid": "rsa-jwks", "alg": "RS256", "n": b64u(tk.rsa2.N.Bytes()), "e": "AQAB"},
			{"kty": "RSA", "kid": "enc-key", "use": "enc", "n": b64u(tk.rsa2.N.Bytes()), "e": "AQAB"},
		}}
		tk.jwks, _ = json.Marshal(set)
		tk.hs = []byte("demo-only-hs256-secret-0123456789abcdef")
		tk.otherHS = []byte("another-demo-secret-0123456789abcdefgh")
	})
	return &tk
}

// hdr is a Header for tests, with canonical names like fasthttp's.
type hdr map[string][]string

func (h hdr) Peek(name string) []byte {
	v := h[textproto.CanonicalMIMEHeaderKey(name)]
	if len(v) == 0 {
		return nil
	}
	return []byte(v[0])
}

func (h hdr) PeekAll(name string) [][]byte {
	var out [][]byte
	for _, v := range h[textproto.CanonicalMIMEHeaderKey(name)] {
		out = append(out, []byte(v))
	}
	return out
}

func (h hdr) set(name, value string) {
	h[textproto.CanonicalMIMEHeaderKey(name)] = []string{value}
}

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)

// fixture is a Gate with every kind of credential, a log buffer and the
// secrets that must never appear in it.
type fixture struct {
	g       *Gate
	clock   *clock
	set     *metrics.Set
	logBuf  *syncBuffer
	log     *slog.Logger
	secrets []string
	keys    map[string]string // name -> key
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (f *fixture) secret(s string) string {
	f.secrets = append(f.secrets, s)
	return s
}

// newKey makes a key and remembers its secret part as a secret.
func (f *fixture) newKey(name string) string {
	k := NewKey()
	f.keys[name] = k
	f.secrets = append(f.secrets, k, k[len("aia_")+keyIDLen+1:])
	return k
}

func newFixture(t testing.TB, mod func(*Options, *fixture)) *fixture {
	t.Helper()
	k := keys()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f := &fixture{clock: &clock{t: t0}, set: metrics.NewSet(), logBuf: &syncBuffer{}, keys: map[string]string{}}
	f.log = slog.New(slog.NewJSONHandler(f.logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.secrets = append(f.secrets, string(k.hs), string(k.otherHS))
	opts := Options{
		Keys: []Key{
			{Name: "team-a-2026q4", Hash: HashKey(f.newKey("team-a-2026q4")), Principal: "team-a", Models: []string{"qwen"},
				Created: t0.Add(-24 * time.Hour), NotAfter: t0.Add(90 * 24 * time.Hour)},
			{Name: "team-a-2026q3", Hash: HashKey(f.newKey("team-a-2026q3")), Principal: "team-a", Models: []string{"qwen", "bert"}},
			{Name: "old", Hash: HashKey(f.newKey("old")), NotBefore: t0.Add(-100 * 24 * time.Hour), NotAfter: t0.Add(-time.Hour)},
			{Name: "future", Hash: HashKey(f.newKey("future")), NotBefore: t0.Add(time.Hour)},
			{Name: "lan-only", Hash: HashKey(f.newKey("lan-only")), AllowIPs: []string{"10.9.0.0/16"}},
			{Name: "monitor", Hash: HashKey(f.newKey("monitor")), Scopes: []string{"metrics:read"}},
		},
		JWT: &JWTOptions{
			HS256Secret:    k.hs,
			PublicKeyFiles: []PublicKeyFile{{Path: write("rsa.pem", k.rsaPEM)}, {Path: write("ed.pem", k.edPEM), KID: "ed1"}},
			JWKSFile:       write("jwks.json", k.jwks),
			Issuer:         "https://id.example",
			Audience:       "aiassist",
		},
		AllowIPs:       []string{"127.0.0.0/8", "::1", "10.0.0.0/8", "fd00::/8"},
		TrustedProxies: []string{"10.1.1.1"},
		AllowedHosts:   []string{"api.example.com"},
		Now:            f.clock.Now,
	}
	if mod != nil {
		mod(&opts, f)
	}
	g, err := New(opts, f.log, f.set)
	if err != nil {
		t.Fatal(err)
	}
	f.g = g
	return f
}

// claims are the usual valid claims at t0.
func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":   "alice",
		"iss":   "https://id.example",
		"aud":   "aiassist",
		"iat":   t0.Add(-time.Minute).Unix(),
		"exp":   t0.Add(time.Hour).Unix(),
		"scope": "openid model:call",
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func sign(t testing.TB, m jwt.SigningMethod, kid string, c jwt.MapClaims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// request is a valid JSON inference request from loopback, to be changed.
func request(mods ...func(*Request, hdr)) Request {
	h := hdr{}
	h.set("Content-Type", "application/json")
	r := Request{
		Peer:     netip.MustParseAddr("127.0.0.1"),
		Loopback: true,
		Header:   h,
		Host:     "localhost:8080",
		Method:   "POST",
		Route:    RouteInference,
		Model:    "qwen",
		Content:  ContentJSON,
		Body:     []byte(`{"model":"qwen","messages":[{"role":"user","content":"hi"}]}`),
	}
	for _, m := range mods {
		m(&r, h)
	}
	return r
}

func header(name, value string) func(*Request, hdr) {
	return func(_ *Request, h hdr) { h.set(name, value) }
}

func apiKey(k string) func(*Request, hdr) { return header("X-API-Key", k) }
func bearer(v string) func(*Request, hdr) { return header("Authorization", "Bearer "+v) }

func peer(a string) func(*Request, hdr) {
	return func(r *Request, _ hdr) { r.Peer = netip.MustParseAddr(a) }
}

func body(b string) func(*Request, hdr) {
	return func(r *Request, _ hdr) { r.Body = []byte(b) }
}

// assertNoSecret fails if any of the fixture's secrets is in s.
func (f *fixture) assertNoSecret(t testing.TB, where, s string) {
	t.Helper()
	for _, sec := range f.secrets {
		if sec != "" && strings.Contains(s, sec) {
			t.Fatalf("%s contains a secret %.12q…:\n%s", where, sec, s)
		}
	}
}

func counterValue(t testing.TB, set *metrics.Set, name string) float64 {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if n, v, ok := strings.Cut(line, " "); ok && n == name {
			var x float64
			if err := json.Unmarshal([]byte(v), &x); err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return x
		}
	}
	return 0
}
