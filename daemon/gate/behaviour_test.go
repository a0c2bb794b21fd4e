package gate

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/golang-jwt/jwt/v5"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestOpenWithoutCredentials(t *testing.T) {
	g, err := New(Options{}, discard(), metrics.NewSet())
	if err != nil {
		t.Fatal(err)
	}
	if g.RequiresCredential() {
		t.Fatal("no key and no JWT, yet a credential is required")
	}
	// OpenAI clients always send some key; with none configured it is
	// not looked at.
	p, r := g.Check(request(bearer("sk-whatever")))
	if r != nil || p.Kind != KindAnonymous {
		t.Fatalf("open inference: %v %v", p, r)
	}
	// Screening still applies.
	if _, r := g.Check(request(header("Content-Type", "text/plain"))); r == nil || r.Status != 415 {
		t.Fatalf("open gate let text/plain through: %v", r)
	}
	if _, r := g.Check(request(body(`{"a":"\ud800"}`))); r == nil || r.Code != "invalid_utf8" {
		t.Fatalf("open gate let a lone surrogate through: %v", r)
	}
	if _, r := g.Check(request(func(r *Request, _ hdr) { r.Host = "evil.example" })); r == nil || r.Code != "host_not_allowed" {
		t.Fatalf("open gate on loopback took a foreign Host: %v", r)
	}
	// Off loopback with no allowed_hosts, any Host goes.
	if _, r := g.Check(request(func(r *Request, _ hdr) { r.Loopback, r.Host = false, "10.0.0.5:8080" })); r != nil {
		t.Fatalf("non-loopback listener without allowed_hosts refused: %v", r)
	}
	open, err := New(Options{Open: true}, discard(), metrics.NewSet())
	if err != nil || open.RequiresCredential() {
		t.Fatalf("open: true: %v", err)
	}
}

func TestCredentialsRequiredOnceConfigured(t *testing.T) {
	for name, opts := range map[string]Options{
		"key": {Keys: []Key{{Name: "k", Hash: HashKey(NewKey())}}},
		"jwt": {JWT: &JWTOptions{HS256Secret: keys().hs}},
	} {
		g, err := New(opts, discard(), metrics.NewSet())
		if err != nil {
			t.Fatal(err)
		}
		if !g.RequiresCredential() {
			t.Fatalf("%s: credential not required", name)
		}
		if _, r := g.Check(request()); r == nil || r.Status != 401 {
			t.Fatalf("%s: no credential got %v", name, r)
		}
		if p, r := g.Check(request(func(r *Request, _ hdr) { r.Route, r.Method = RouteHealth, "GET" })); r != nil || p.Kind != KindAnonymous {
			t.Fatalf("%s: health needs a credential: %v", name, r)
		}
		if _, r := g.Check(request(func(r *Request, _ hdr) { r.Route, r.Method = RouteMetrics, "GET" })); r != nil {
			t.Fatalf("%s: metrics need a credential without require_auth: %v", name, r)
		}
	}
}

func TestMetricsRequireAuth(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *fixture) { o.MetricsRequireAuth = true })
	metricsReq := func(mods ...func(*Request, hdr)) Request {
		return request(append([]func(*Request, hdr){func(r *Request, h hdr) { r.Route, r.Method, r.Model = RouteMetrics, "GET", "" }}, mods...)...)
	}
	if _, r := f.g.Check(metricsReq()); r == nil || r.Status != 401 {
		t.Fatalf("metrics without credential: %v", r)
	}
	// A key without model:call may still read metrics.
	if p, r := f.g.Check(metricsReq(apiKey(f.keys["monitor"]))); r != nil || p.KeyName != "monitor" {
		t.Fatalf("metrics with key: %v %v", p, r)
	}
	if _, r := f.g.Check(metricsReq(apiKey(f.keys["old"]))); r == nil || r.Code != "key_expired" {
		t.Fatalf("metrics with an expired key: %v", r)
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(p384)
	privPEM := write("priv.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	h := HashKey(NewKey())
	f := func(want string, o Options) {
		t.Helper()
		_, err := New(o, discard(), metrics.NewSet())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want it to contain %q", err, want)
		}
		if strings.Contains(err.Error(), string(keys().hs)) {
			t.Fatalf("error %v holds the secret", err)
		}
	}
	f("open is true", Options{Open: true, Keys: []Key{{Name: "k", Hash: h}}})
	f("require_auth", Options{MetricsRequireAuth: true})
	f(`"sha256:" followed by 64 hex`, Options{Keys: []Key{{Name: "k", Hash: "sha256:abc"}}})
	f(`"sha256:" followed by 64 hex`, Options{Keys: []Key{{Name: "k", Hash: "md5:" + strings.Repeat("0", 64)}}})
	f(`"sha256:" followed by 64 hex`, Options{Keys: []Key{{Name: "k", Hash: "sha256:" + strings.Repeat("g", 64)}}})
	f("same hash", Options{Keys: []Key{{Name: "a", Hash: h}, {Name: "b", Hash: h}}})
	f("listed twice", Options{Keys: []Key{{Name: "a", Hash: h}, {Name: "a", Hash: HashKey(NewKey())}}})
	f("metric label", Options{Keys: []Key{{Name: `a"b`, Hash: h}}})
	f("has no name", Options{Keys: []Key{{Hash: h}}})
	f("not after not_before", Options{Keys: []Key{{Name: "k", Hash: h, NotBefore: t0, NotAfter: t0}}})
	f("allow_ips: entry 0", Options{Keys: []Key{{Name: "k", Hash: h, AllowIPs: []string{"10.0.0.0/33"}}}})
	f("access.allow_ips: entry 1", Options{AllowIPs: []string{"10.0.0.0/8", "ten"}})
	f("access.trusted_proxies", Options{TrustedProxies: []string{"fe80::1%eth0"}})
	f("server.allowed_hosts", Options{AllowedHosts: []string{"a.*.example"}})
	f("server.cors_origins", Options{CORSOrigins: []string{"https://app.example/path"}})
	f("at least 32", Options{JWT: &JWTOptions{HS256Secret: []byte("short")}})
	f("no key configured", Options{JWT: &JWTOptions{}})
	f("cannot read public key", Options{JWT: &JWTOptions{PublicKeyFiles: []PublicKeyFile{{Path: filepath.Join(dir, "missing.pem")}}}})
	f("public key only", Options{JWT: &JWTOptions{PublicKeyFiles: []PublicKeyFile{{Path: privPEM}}}})
	f("at least 2048", Options{JWT: &JWTOptions{PublicKeyFiles: []PublicKeyFile{{Path: write("small.pem", mustPKIX(&small.PublicKey))}}}})
	f("only P-256", Options{JWT: &JWTOptions{PublicKeyFiles: []PublicKeyFile{{Path: write("p384.pem", mustPKIX(&p384.PublicKey))}}}})
	f("no PEM block", Options{JWT: &JWTOptions{PublicKeyFiles: []PublicKeyFile{{Path: write("junk.pem", []byte("junk"))}}}})
	f("not a JWKS document", Options{JWT: &JWTOptions{JWKSFile: write("bad.json", []byte("{"))}})
	f("private key", Options{JWT: &JWTOptions{JWKSFile: write("d.json", []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","d":"AAAA"}]}`))}})
	ec := &keys().ec.PublicKey
	f("names two keys", Options{JWT: &JWTOptions{Keys: []VerifyKey{{KID: "a", Key: ec}, {KID: "a", Key: ec}}}})
	f("unsupported key type", Options{JWT: &JWTOptions{Keys: []VerifyKey{{Key: "not a key"}}}})
	f("block status", Options{Abuse: AbuseOptions{BlockStatus: 500}})
	f("positive count and window", Options{Abuse: AbuseOptions{AuthFailures: Threshold{Count: 3}}})
	if _, err := New(Options{}, nil, metrics.NewSet()); err == nil {
		t.Fatal("nil logger accepted")
	}
}

func TestReloadRemovesKey(t *testing.T) {
	f := newFixture(t, nil)
	key := f.keys["team-a-2026q4"]
	if _, r := f.g.Check(request(apiKey(key))); r != nil {
		t.Fatalf("before reload: %v", r)
	}
	// The next generation drops the key.
	var kept []Key
	for _, k := range f.g.keyList {
		if k.Name != "team-a-2026q4" {
			kept = append(kept, k)
		}
	}
	g2, err := New(Options{Keys: kept, Now: f.clock.Now, Carry: f.g}, f.log, f.set)
	if err != nil {
		t.Fatal(err)
	}
	if _, r := g2.Check(request(apiKey(key))); r == nil || r.Code != "invalid_api_key" {
		t.Fatalf("removed key after reload: %v", r)
	}
	if _, r := g2.Check(request(apiKey(f.keys["team-a-2026q3"]))); r != nil {
		t.Fatalf("kept key after reload: %v", r)
	}
	// The removed key's expiry series is gone with the old generation's set.
	var b bytes.Buffer
	g2.KeyMetrics().WritePrometheus(&b)
	if strings.Contains(b.String(), "team-a-2026q4") {
		t.Fatalf("new generation exports the removed key:\n%s", b.String())
	}
}

func TestKeyExpiryGauge(t *testing.T) {
	f := newFixture(t, nil)
	var b bytes.Buffer
	f.g.KeyMetrics().WritePrometheus(&b)
	want := fmt.Sprintf(`aiassist_auth_key_expiry_timestamp_seconds{key="team-a-2026q4"} %d`, t0.Add(90*24*time.Hour).Unix())
	if !strings.Contains(b.String(), want+"\n") {
		t.Fatalf("metrics lack %q:\n%s", want, b.String())
	}
	if strings.Contains(b.String(), `key="future"`) {
		t.Fatalf("a key without not_after has a series:\n%s", b.String())
	}
	if n := strings.Count(b.String(), "aiassist_auth_key_expiry_timestamp_seconds{"); n != 2 {
		t.Fatalf("%d series, want 2 (team-a-2026q4 and old):\n%s", n, b.String())
	}
}

func TestRotationNotices(t *testing.T) {
	day := 24 * time.Hour
	ks := []Key{
		{Name: "fresh", Created: t0.Add(-day), NotAfter: t0.Add(60 * day)},
		{Name: "expiring", Created: t0.Add(-day), NotAfter: t0.Add(5 * day)},
		{Name: "expired", Created: t0.Add(-day), NotAfter: t0.Add(-time.Second)},
		{Name: "old-created", Created: t0.Add(-91 * day)},
		{Name: "old-not-before", NotBefore: t0.Add(-100 * day)},
		{Name: "created-wins", Created: t0.Add(-10 * day), NotBefore: t0.Add(-100 * day)},
		{Name: "undated"},
	}
	got := map[string]string{}
	for _, n := range RotationNotices(ks, RotationOptions{}, t0) {
		got[n.Key] = n.Reason
		if !strings.Contains(n.Message, n.Key) {
			t.Fatalf("message %q does not name the key", n.Message)
		}
		if n.Reason != NoticeAgeUnknown && !strings.Contains(n.Message, "aiassistd keygen") {
			t.Fatalf("message %q does not say how to rotate", n.Message)
		}
	}
	want := map[string]string{
		"expiring": NoticeExpiring, "expired": NoticeExpired, "old-created": NoticeTooOld,
		"old-not-before": NoticeTooOld, "undated": NoticeAgeUnknown,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("notices %v, want %v", got, want)
	}
	// Custom windows.
	got = map[string]string{}
	for _, n := range RotationNotices(ks, RotationOptions{WarnBefore: 61 * day, MaxAge: 5 * day}, t0) {
		got[n.Key] = n.Reason
	}
	if got["fresh"] != NoticeExpiring || got["created-wins"] != NoticeTooOld {
		t.Fatalf("custom windows: %v", got)
	}
	// The Gate's own list uses its clock.
	f := newFixture(t, nil)
	reasons := map[string]string{}
	for _, n := range f.g.RotationNotices() {
		reasons[n.Key] = n.Reason
	}
	if reasons["old"] != NoticeExpired || reasons["team-a-2026q3"] != NoticeAgeUnknown || reasons["team-a-2026q4"] != "" {
		t.Fatalf("gate notices %v", reasons)
	}
	f.clock.Add(85 * day)
	reasons = map[string]string{}
	for _, n := range f.g.RotationNotices() {
		reasons[n.Key] = n.Reason
	}
	if reasons["team-a-2026q4"] != NoticeExpiring {
		t.Fatalf("85 days later: %v", reasons)
	}
}

func abuseLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"msg":"abuse"`) {
			out = append(out, l)
		}
	}
	return out
}

func TestAbuseAuthFailures(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *fixture) {
		o.Abuse = AbuseOptions{AuthFailures: Threshold{Count: 3, Window: time.Minute}, BlockFor: 5 * time.Minute}
	})
	good := f.keys["team-a-2026q4"]
	attacker := peer("10.5.5.5")
	for i := 0; i < 2; i++ {
		if _, r := f.g.Check(request(attacker, apiKey(f.newKey("guess")))); r == nil || r.Status != 401 {
			t.Fatalf("guess %d: %v", i, r)
		}
	}
	if n := len(abuseLines(f.logBuf.String())); n != 0 {
		t.Fatalf("abuse logged below the threshold")
	}
	// The third failure crosses the threshold.
	f.g.Check(request(attacker, bearer("garbage.token.here")))
	lines := abuseLines(f.logBuf.String())
	if len(lines) != 1 {
		t.Fatalf("%d abuse lines, want 1:\n%s", len(lines), f.logBuf.String())
	}
	for _, want := range []string{`"reason":"auth_failures"`, `"ip":"10.5.5.5"`, `"window":"1m0s"`, `"count":3`, `"key_id":""`} {
		if !strings.Contains(lines[0], want) {
			t.Fatalf("abuse line %s lacks %s", lines[0], want)
		}
	}
	if got := counterValue(t, f.set, `aiassist_abuse_events_total{reason="auth_failures"}`); got != 1 {
		t.Fatalf("abuse events = %v", got)
	}
	// Blocked now, even with a good key; another address is not.
	_, r := f.g.Check(request(attacker, apiKey(good)))
	if r == nil || r.Status != 429 || r.Code != "blocked" || r.RetryAfter != 300 {
		t.Fatalf("blocked address: %+v", r)
	}
	if _, r := f.g.Check(request(peer("10.5.5.6"), apiKey(good))); r != nil {
		t.Fatalf("other address: %v", r)
	}
	// Health is never blocked.
	if _, r := f.g.Check(request(attacker, func(r *Request, _ hdr) { r.Route, r.Method = RouteHealth, "GET" })); r != nil {
		t.Fatalf("health blocked: %v", r)
	}
	// More failures in the same window: no second line.
	for i := 0; i < 10; i++ {
		f.g.Check(request(attacker))
	}
	if n := len(abuseLines(f.logBuf.String())); n != 1 {
		t.Fatalf("%d abuse lines after more failures in one window", n)
	}
	f.clock.Add(4 * time.Minute)
	if _, r := f.g.Check(request(attacker, apiKey(good))); r == nil || r.RetryAfter != 60 {
		t.Fatalf("4 minutes later: %+v", r)
	}
	f.clock.Add(time.Minute)
	if _, r := f.g.Check(request(attacker, apiKey(good))); r != nil {
		t.Fatalf("block did not end: %v", r)
	}
	f.assertNoSecret(t, "log", f.logBuf.String())
}

func TestAbuseCannotBlockAVictimsKey(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *fixture) {
		o.Abuse = AbuseOptions{AuthFailures: Threshold{Count: 3, Window: time.Minute}, BlockFor: time.Hour}
	})
	victim := f.keys["team-a-2026q4"]
	id := victim[4:12]
	// Forged keys with the victim's id, from many addresses.
	for i := 0; i < 20; i++ {
		forged := "aia_" + id + "_" + strings.ToLower(strings.Repeat("x", 26))
		forged = forged[:len(forged)-1] + string(rune('a'+i%26))
		f.g.Check(request(peer(fmt.Sprintf("10.7.0.%d", i)), apiKey(forged)))
	}
	if _, r := f.g.Check(request(peer("10.8.0.1"), apiKey(victim))); r != nil {
		t.Fatalf("victim's key blocked by forged ids: %v", r)
	}
}

func TestAbuseKeyFailures(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *fixture) {
		o.Abuse = AbuseOptions{AuthFailures: Threshold{Count: 3, Window: time.Minute}, BlockFor: time.Minute, BlockStatus: 403}
	})
	lan := f.keys["lan-only"]
	// A key used from addresses it does not allow, each address once:
	// no address crosses the threshold, the key does.
	for i := 0; i < 3; i++ {
		if _, r := f.g.Check(request(peer(fmt.Sprintf("10.8.0.%d", i)), apiKey(lan))); r == nil || r.Code != "ip_not_allowed" {
			t.Fatalf("use %d: %v", i, r)
		}
	}
	lines := abuseLines(f.logBuf.String())
	if len(lines) != 1 || !strings.Contains(lines[0], `"key_id":"`+lan[4:12]+`"`) {
		t.Fatalf("abuse lines %v", lines)
	}
	_, r := f.g.Check(request(peer("10.9.0.1"), apiKey(lan)))
	if r == nil || r.Status != 403 || r.Code != "blocked" || r.Type != typePermission || r.RetryAfter != 60 {
		t.Fatalf("blocked key from an allowed address: %+v", r)
	}
}

func TestAbuseBurst(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *fixture) {
		o.Abuse = AbuseOptions{Requests: Threshold{Count: 5, Window: time.Second}}
	})
	key := f.keys["team-a-2026q4"]
	for i := 0; i < 10; i++ {
		if _, r := f.g.Check(request(apiKey(key))); r != nil {
			t.Fatalf("request %d refused without blocking configured: %v", i, r)
		}
	}
	lines := abuseLines(f.logBuf.String())
	// One line for the address, one for the key.
	if len(lines) != 2 || !strings.Contains(lines[0], `"reason":"request_burst"`) {
		t.Fatalf("abuse lines:\n%s", strings.Join(lines, "\n"))
	}
	if got := counterValue(t, f.set, `aiassist_abuse_events_total{reason="request_burst"}`); got != 2 {
		t.Fatalf("burst events = %v", got)
	}
	// The window slides: after two windows the count is back to zero.
	f.clock.Add(2 * time.Second)
	for i := 0; i < 4; i++ {
		f.g.Check(request(apiKey(key)))
	}
	if n := len(abuseLines(f.logBuf.String())); n != 2 {
		t.Fatalf("%d lines after a quiet period and 4 requests", n)
	}
	// Health and metrics are not counted.
	for i := 0; i < 20; i++ {
		f.g.Check(request(func(r *Request, _ hdr) { r.Route, r.Method = RouteHealth, "GET" }))
	}
	if n := len(abuseLines(f.logBuf.String())); n != 2 {
		t.Fatalf("health requests counted as a burst")
	}
}

func TestAbuseSurvivesReload(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *fixture) {
		o.Abuse = AbuseOptions{AuthFailures: Threshold{Count: 2, Window: time.Minute}, BlockFor: time.Hour}
	})
	for i := 0; i < 2; i++ {
		f.g.Check(request(peer("10.5.5.5")))
	}
	g2, err := New(Options{Keys: f.g.keyList, Now: f.clock.Now, Carry: f.g, Abuse: f.g.abuse.opts}, f.log, f.set)
	if err != nil {
		t.Fatal(err)
	}
	if _, r := g2.Check(request(peer("10.5.5.5"), apiKey(f.keys["team-a-2026q4"]))); r == nil || r.Code != "blocked" {
		t.Fatalf("block lifted by reload: %v", r)
	}
}

func TestAbuseMemoryIsBounded(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *fixture) {
		o.AllowIPs = nil
		o.Abuse = AbuseOptions{AuthFailures: Threshold{Count: 3, Window: time.Minute}, Requests: Threshold{Count: 1000, Window: time.Second}, MaxTracked: 100}
	})
	for i := 0; i < 1000; i++ {
		a := netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)})
		f.g.Check(request(func(r *Request, _ hdr) { r.Peer = a }))
	}
	if n := f.g.abuse.ips.len(); n > 100 {
		t.Fatalf("%d addresses tracked, cap 100", n)
	}
	// The most recent ones are kept.
	f.g.abuse.ips.mu.Lock()
	_, recent := f.g.abuse.ips.m[netip.AddrFrom4([4]byte{192, 0, 3, 231})]
	_, old := f.g.abuse.ips.m[netip.AddrFrom4([4]byte{192, 0, 0, 0})]
	f.g.abuse.ips.mu.Unlock()
	if !recent || old {
		t.Fatalf("eviction kept the oldest (recent %v, old %v)", recent, old)
	}
}

func TestAbuseIPv6CountsBySlash64(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *fixture) {
		o.Abuse = AbuseOptions{AuthFailures: Threshold{Count: 3, Window: time.Minute}, BlockFor: time.Minute}
	})
	for _, a := range []string{"fd00:1:2:3::1", "fd00:1:2:3::2", "fd00:1:2:3:ffff::3"} {
		f.g.Check(request(peer(a)))
	}
	if _, r := f.g.Check(request(peer("fd00:1:2:3::99"), apiKey(f.keys["team-a-2026q4"]))); r == nil || r.Code != "blocked" {
		t.Fatalf("same /64 not blocked: %v", r)
	}
	if _, r := f.g.Check(request(peer("fd00:1:2:4::1"), apiKey(f.keys["team-a-2026q4"]))); r != nil {
		t.Fatalf("other /64 blocked: %v", r)
	}
}

func TestMintHS256(t *testing.T) {
	k := keys()
	f := newFixture(t, func(o *Options, _ *fixture) { o.Now = nil }) // real clock: MintHS256 uses it
	tok, err := MintHS256(k.hs, "bob", "model:call", time.Hour, []string{"qwen"}, "https://id.example", "aiassist")
	if err != nil {
		t.Fatal(err)
	}
	p, r := f.g.Check(request(bearer(tok)))
	if r != nil || p.Name != "bob" || p.Subject != "bob" || p.Issuer != "https://id.example" || p.Kind != KindJWT {
		t.Fatalf("minted token: %+v %v", p, r)
	}
	if _, r := f.g.Check(request(bearer(tok), func(r *Request, _ hdr) { r.Model = "bert" })); r == nil || r.Code != "model_not_allowed" {
		t.Fatalf("minted token for another model: %v", r)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	c := parsed.Claims.(jwt.MapClaims)
	if c["scope"] != "model:call" || c["aud"] == nil || c["iat"] == nil {
		t.Fatalf("claims %v", c)
	}
	noScope, _ := MintHS256(k.hs, "bob", "", time.Hour, nil, "https://id.example", "aiassist")
	if _, r := f.g.Check(request(bearer(noScope))); r == nil || r.Code != "insufficient_scope" {
		t.Fatalf("token without scope: %v", r)
	}
	for _, bad := range []func() (string, error){
		func() (string, error) { return MintHS256([]byte("short"), "bob", "", time.Hour, nil, "", "") },
		func() (string, error) { return MintHS256(k.hs, "", "", time.Hour, nil, "", "") },
		func() (string, error) { return MintHS256(k.hs, "bob", "", 0, nil, "", "") },
	} {
		if _, err := bad(); err == nil {
			t.Fatal("MintHS256 accepted bad arguments")
		}
	}
}

func TestTokenCache(t *testing.T) {
	k := keys()
	f := newFixture(t, nil)
	tok := sign(t, jwt.SigningMethodES256, "ec1", claims(nil), k.ec)
	p1, r := f.g.Check(request(bearer(tok)))
	if r != nil {
		t.Fatal(r)
	}
	p2, r := f.g.Check(request(bearer(tok)))
	if r != nil || p2 != p1 {
		t.Fatalf("second use did not come from the cache: %p %p %v", p1, p2, r)
	}
	if n := f.g.jwt.cache.len(); n != 1 {
		t.Fatalf("cache holds %d tokens", n)
	}
	// A changed token is not the cached one.
	if _, r := f.g.Check(request(bearer(tok[:len(tok)-2] + "AA"))); r == nil || r.Code != "token_signature" {
		t.Fatalf("altered signature after caching: %v", r)
	}
	// The cache checks times again: past exp and leeway it is refused
	// with the full message.
	f.clock.Add(time.Hour + 29*time.Second)
	if _, r := f.g.Check(request(bearer(tok))); r != nil {
		t.Fatalf("within leeway: %v", r)
	}
	f.clock.Add(2 * time.Second)
	if _, r := f.g.Check(request(bearer(tok))); r == nil || r.Code != "token_expired" || !strings.Contains(r.Message, "expired at") {
		t.Fatalf("expired cached token: %v", r)
	}
	if n := f.g.jwt.cache.len(); n != 0 {
		t.Fatalf("expired token still cached (%d)", n)
	}

	// Bounded.
	small := newFixture(t, func(o *Options, _ *fixture) { o.JWT.CacheSize = 10 })
	for i := 0; i < 100; i++ {
		tok := sign(t, jwt.SigningMethodHS256, "", claims(func(c jwt.MapClaims) { c["sub"] = fmt.Sprint("user", i) }), k.hs)
		if _, r := small.g.Check(request(bearer(tok))); r != nil {
			t.Fatal(r)
		}
	}
	if n := small.g.jwt.cache.len(); n > 10 {
		t.Fatalf("cache of 10 holds %d", n)
	}
	// Off.
	off := newFixture(t, func(o *Options, _ *fixture) { o.JWT.CacheSize = -1 })
	if off.g.jwt.cache != nil {
		t.Fatal("cache not off")
	}
	if _, r := off.g.Check(request(bearer(sign(t, jwt.SigningMethodHS256, "", claims(nil), k.hs)))); r != nil {
		t.Fatalf("without cache: %v", r)
	}
}
