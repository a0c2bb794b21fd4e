package gate

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNewKey(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		k := NewKey()
		id, ok := KeyID(k)
		if !ok {
			t.Fatalf("NewKey made %q, which does not parse", k)
		}
		if len(id) != keyIDLen || !strings.HasPrefix(k, "aia_"+id+"_") {
			t.Fatalf("key %q, id %q", k, id)
		}
		secret := k[len("aia_")+keyIDLen+1:]
		if len(secret)*5 < 128 {
			t.Fatalf("secret %d characters: under 128 bits", len(secret))
		}
		if seen[k] || seen[id] {
			t.Fatalf("NewKey repeated itself")
		}
		seen[k], seen[id] = true, true
	}
}

func TestHashKey(t *testing.T) {
	const k = "aia_abcdefgh_abcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(k))
	if got, want := HashKey(k), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("HashKey = %s, want %s", got, want)
	}
	if _, err := parseHash(strings.ToUpper(HashKey(k)[7:])); err == nil {
		t.Fatal("hash without prefix accepted")
	}
	if _, err := parseHash("sha256:" + strings.ToUpper(HashKey(k)[7:])); err != nil {
		t.Fatalf("upper-case hex refused: %v", err)
	}
}

func TestParseCredential(t *testing.T) {
	key := "aia_abcdefgh_abcdefghijklmnopqrstuvwxyz"
	f := func(apiKey, auth string, want credKind, value string) {
		t.Helper()
		c := parseCredential([]byte(apiKey), []byte(auth))
		if c.kind != want || string(c.value) != value {
			t.Fatalf("parseCredential(%q, %q) = %v %q, want %v %q", apiKey, auth, c.kind, c.value, want, value)
		}
	}
	f("", "", credNone, "")
	f("  ", " ", credNone, "")
	f(key, "", credKey, key)
	f(" "+key+"\t", "", credKey, key)
	f("", "Bearer "+key, credKey, key)
	f("", "BEARER "+key, credKey, key)
	f("", "Bearer    "+key, credKey, key)
	f("", "Bearer a.b.c", credToken, "a.b.c")
	f("", "Bearer aia_short", credBadKey, "")
	f("", "Basic abc", credBadAuth, "")
	f("", "Bearer", credBadAuth, "")
	f("", "Bearerx "+key, credBadAuth, "")
	f("nope", "Bearer "+key, credBadKey, "")
	f(key, "Bearer other", credKey, key)
	f("aia_ABCDEFGH_abcdefghijklmnopqrstuvwxyz", "", credBadKey, "")
	f("aia_abcdefgh-abcdefghijklmnopqrstuvwxyz", "", credBadKey, "")
	f("aia_abcdefg_abcdefghijklmnopqrstuvwxyz", "", credBadKey, "")
	f("aia_abcdefgh_"+strings.Repeat("a", 65), "", credBadKey, "")
	f("aia_abcdefgh_abcdefghijklmnopqrstuvwxy1", "", credBadKey, "") // '1' is not base32
	f("", "Bearer "+strings.Repeat("x", maxCredential+1), credBadAuth, "")
}

func TestLookupKeyFindsEveryIndex(t *testing.T) {
	var ks []Key
	var raw []string
	for i := 0; i < 50; i++ {
		k := NewKey()
		raw = append(raw, k)
		ks = append(ks, Key{Name: "k" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26)), Hash: HashKey(k)})
	}
	entries, err := newKeyEntries(ks)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range raw {
		e := lookupKey(entries, []byte(k))
		if e == nil || e.Name != ks[i].Name {
			t.Fatalf("key %d found as %v", i, e)
		}
	}
	if lookupKey(entries, []byte(NewKey())) != nil {
		t.Fatal("an unknown key matched")
	}
	if lookupKey(nil, []byte(raw[0])) != nil {
		t.Fatal("a key matched an empty list")
	}
}

func TestEcho(t *testing.T) {
	if got := echo("abc"); got != `"abc"` {
		t.Fatal(got)
	}
	long := strings.Repeat("é", 40) // 80 bytes
	got := echo(long)
	if !strings.HasSuffix(got, "…") || len(got) > maxEcho+len(`""…`) {
		t.Fatalf("echo of 80 bytes = %q", got)
	}
	if !utf8.ValidString(got) {
		t.Fatalf("echo cut a character: %q", got)
	}
	if got := echo("a\nb\xff"); strings.ContainsAny(got, "\n") || !utf8.ValidString(got) {
		t.Fatalf("echo did not escape: %q", got)
	}
}

func TestCheckContentType(t *testing.T) {
	f := func(ct string, ok bool) {
		t.Helper()
		r := CheckContentType([]byte(ct))
		if (r == nil) != ok {
			t.Fatalf("CheckContentType(%q) = %v, want ok=%v", ct, r, ok)
		}
		if r != nil && r.Status != 415 {
			t.Fatalf("status %d", r.Status)
		}
	}
	f("application/json", true)
	f("APPLICATION/JSON", true)
	f(" application/json ; charset=utf-8", true)
	f("application/json;charset=UTF8", true)
	f(`application/json; charset="utf-8"`, true)
	f("application/json; foo=bar", true)
	f("application/json; charset=iso-8859-1", false)
	f("application/jsonx", false)
	f("application/json-seq", false)
	f("text/json", false)
	f("text/plain", false)
	f("text/plain; charset=utf-8", false)
	f("application/x-www-form-urlencoded", false)
	f("multipart/form-data; boundary=--x", false)
	f("", false)
	f("application/octet-stream", false)
}

func TestCheckContentEncoding(t *testing.T) {
	for ce, ok := range map[string]bool{"": true, "identity": true, " Identity ": true, "gzip": false, "br": false, "deflate": false, "gzip, identity": false, "x": false} {
		if r := CheckContentEncoding([]byte(ce)); (r == nil) != ok {
			t.Fatalf("CheckContentEncoding(%q) = %v", ce, r)
		}
	}
}

func TestScanJSON(t *testing.T) {
	f := func(in string, code string, offset int) {
		t.Helper()
		err := ScanJSON([]byte(in), 4)
		if code == "" {
			if err != nil {
				t.Fatalf("ScanJSON(%q) = %v", in, err)
			}
			return
		}
		if err == nil || err.Code != code || err.Offset != offset {
			t.Fatalf("ScanJSON(%q) = %+v, want %s at %d", in, err, code, offset)
		}
	}
	f(``, "", 0)
	f(`{"a":[1,2,{"b":"c"}]}`, "", 0)
	f(`[[[[1]]]]`, "", 0)
	f(`[[[[[1]]]]]`, "json_too_deep", 4)
	f(`{"a":"[[[[[[[[[["}`, "", 0)            // brackets inside a string
	f(`{"a":"\"[[[[[[[[["}`, "", 0)           // escaped quote
	f(`{"a":"\\"}[[[[[`, "json_too_deep", 14) // escaped backslash ends the string
	f(`{"a":"héllo 日本 🎉"}`, "", 0)
	f("{\"a\":\"\xe9\"}", "invalid_utf8", 6)
	f("{\"a\":\"\xed\xa0\x80\"}", "invalid_utf8", 6) // UTF-8-encoded surrogate
	f("{\"a\":\"\xf0\x9f\x8e\"}", "invalid_utf8", 6) // truncated
	f("{\"a\":\"\xc0\xaf\"}", "invalid_utf8", 6)     // overlong
	f(`{"a":"\ud83c\udf89"}`, "", 0)                 // a valid pair
	f(`{"a":"\uD83C\uDF89"}`, "", 0)
	f(`{"a":"\ud83c"}`, "invalid_utf8", 6)
	f(`{"a":"\ud83cx"}`, "invalid_utf8", 6)
	f(`{"a":"\ud83c\u0041"}`, "invalid_utf8", 6)
	f(`{"a":"\udf89"}`, "invalid_utf8", 6)
	f(`{"a":"\u00e9"}`, "", 0)
	f(`{"a":"\u12"}`, "", 0) // malformed: left to the decoder
	f(`{"a":"unterminated`, "", 0)
	f("{\"a\":\"\\\xe9\"}", "invalid_utf8", 7)
	if err := ScanJSON([]byte(strings.Repeat("[", 64)+strings.Repeat("]", 64)), 0); err != nil {
		t.Fatalf("64 levels with the default: %v", err)
	}
	if err := ScanJSON([]byte(strings.Repeat("[", 65)), 0); err == nil {
		t.Fatal("65 levels with the default accepted")
	}
}

func TestCheckHost(t *testing.T) {
	allowed, err := ParseHostList([]string{"api.example.com", "gw.example.com:8443", "*.lan.example"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(host string, loopback bool, list HostList, ok bool) {
		t.Helper()
		r := CheckHost(host, loopback, list)
		if (r == nil) != ok {
			t.Fatalf("CheckHost(%q, loopback=%v) = %v, want ok=%v", host, loopback, r, ok)
		}
	}
	none := HostList{}
	for _, h := range []string{"localhost", "LOCALHOST:8080", "127.0.0.1", "127.0.0.1:1", "127.1.2.3:8080", "[::1]", "[::1]:8080", "::1", "[::ffff:127.0.0.1]:80"} {
		f(h, true, none, true)
	}
	for _, h := range []string{"", "evil.example", "localhost.evil.example", "127.0.0.1.nip.io", "[::2]:80", "10.0.0.1", "localhost:port", "[::1", "[::1]x", "localhost:123456", "[fe80::1%25lo]:80"} {
		f(h, true, none, false)
	}
	f("api.example.com", true, allowed, true)
	f("API.Example.Com:8080", true, allowed, true)
	f("gw.example.com:8443", false, allowed, true)
	f("gw.example.com:80", false, allowed, false)
	f("node1.lan.example", false, allowed, true)
	f("lan.example", false, allowed, false)
	f("evil.example", false, allowed, false)
	f("localhost", false, allowed, false) // off loopback, allowed_hosts decides
	f("anything", false, none, true)
}

func TestClientIP(t *testing.T) {
	trusted, err := ParseIPList([]string{"10.1.1.1", "10.2.0.0/16", "fd00:1::/32"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(peerAddr, xff, want string) {
		t.Helper()
		got := ClientIP(netip.MustParseAddr(peerAddr), []byte(xff), trusted)
		if got.String() != want {
			t.Fatalf("ClientIP(%s, %q) = %s, want %s", peerAddr, xff, got, want)
		}
	}
	f("192.0.2.1", "", "192.0.2.1")
	f("192.0.2.1", "10.0.0.1", "192.0.2.1") // untrusted peer: header ignored
	f("10.1.1.1", "", "10.1.1.1")
	f("10.1.1.1", "198.51.100.7", "198.51.100.7")
	f("10.1.1.1", "1.1.1.1, 198.51.100.7", "198.51.100.7")  // the client's own entry is not believed
	f("10.1.1.1", "198.51.100.7, 10.2.3.4", "198.51.100.7") // two trusted hops
	f("10.1.1.1", "198.51.100.7,10.2.3.4,10.2.9.9", "198.51.100.7")
	f("10.1.1.1", "10.2.3.4, 10.2.9.9", "10.2.3.4")    // all trusted: the leftmost
	f("10.1.1.1", "198.51.100.7:4711", "198.51.100.7") // with a port
	f("10.1.1.1", "[2001:db8::1]:4711", "2001:db8::1")
	f("10.1.1.1", "::ffff:198.51.100.7", "198.51.100.7") // mapped
	f("::ffff:10.1.1.1", "198.51.100.7", "198.51.100.7") // mapped peer is trusted
	f("fd00:1::5", "2001:db8::9", "2001:db8::9")
	f("10.1.1.1", "garbage", "10.1.1.1") // malformed: the peer
	f("10.1.1.1", "198.51.100.7, garbage", "10.1.1.1")
	f("10.1.1.1", "garbage, 198.51.100.7", "198.51.100.7")                // stops before the garbage
	f("10.1.1.1", "198.51.100.7,", "10.1.1.1")                            // empty entry
	f("10.1.1.1", "fe80::1%eth0", "10.1.1.1")                             // zones refused
	f("10.1.1.1", strings.Repeat("10.2.0.1,", 40)+"10.2.0.1", "10.1.1.1") // too many hops
	f("fe80::1%eth0", "", "fe80::1")
}

func TestParseIPList(t *testing.T) {
	l, err := ParseIPList([]string{"10.0.0.1/8", " 192.0.2.7 ", "fd00::/8", "::ffff:172.16.0.0/108", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]bool{"10.200.0.1": true, "11.0.0.1": false, "192.0.2.7": true, "192.0.2.8": false,
		"fd12::1": true, "fe00::1": false, "172.16.5.5": true, "172.32.0.1": false, "::1": true} {
		if got := l.Contains(NormalizeAddr(netip.MustParseAddr(a))); got != want {
			t.Fatalf("Contains(%s) = %v", a, got)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "1.2.3", "10.0.0.0/-1", "::ffff:1.2.3.4/80", "fe80::1%eth0", "example.com", "10.0.0.0/8/8"} {
		if _, err := ParseIPList([]string{bad}); err == nil {
			t.Fatalf("ParseIPList(%q) accepted", bad)
		}
	}
}

func TestCORS(t *testing.T) {
	p, err := newCORSPolicy([]string{"https://app.example.com", "http://localhost:3000"})
	if err != nil {
		t.Fatal(err)
	}
	has := func(d CORS, name string) string {
		for _, h := range d.Headers {
			if h[0] == name {
				return h[1]
			}
		}
		return ""
	}
	d := p.decide("https://app.example.com", "OPTIONS", "POST")
	if !d.Allowed || !d.Preflight || d.Refusal != nil || has(d, "Access-Control-Allow-Origin") != "https://app.example.com" || has(d, "Access-Control-Allow-Headers") == "" || has(d, "Vary") != "Origin" {
		t.Fatalf("listed preflight: %+v", d)
	}
	d = p.decide("https://app.example.com", "POST", "")
	if !d.Allowed || d.Preflight || has(d, "Access-Control-Allow-Methods") != "" {
		t.Fatalf("listed request: %+v", d)
	}
	d = p.decide("https://evil.example", "OPTIONS", "POST")
	if d.Allowed || len(d.Headers) != 0 || d.Refusal == nil || d.Refusal.Status != 403 {
		t.Fatalf("unlisted preflight: %+v", d)
	}
	d = p.decide("https://evil.example", "POST", "")
	if d.Allowed || len(d.Headers) != 0 || d.Refusal != nil {
		t.Fatalf("unlisted request: %+v", d)
	}
	if d := p.decide("", "POST", ""); d.Allowed || len(d.Headers) != 0 {
		t.Fatalf("no Origin: %+v", d)
	}
	var none corsPolicy
	if d := none.decide("https://app.example.com", "OPTIONS", "POST"); d.Allowed || len(d.Headers) != 0 || d.Preflight {
		t.Fatalf("no cors_origins: %+v", d)
	}
	star, _ := newCORSPolicy([]string{"*"})
	if d := star.decide("https://x.example", "GET", ""); has(d, "Access-Control-Allow-Origin") != "*" || has(d, "Vary") != "" {
		t.Fatalf("*: %+v", d)
	}
	for _, bad := range []string{"app.example.com", "ftp://x", "https://x/path", "https://"} {
		if _, err := newCORSPolicy([]string{bad}); err == nil {
			t.Fatalf("origin %q accepted", bad)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	k := keys()
	got, skipped, err := ParseJWKS(k.jwks)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].KID != "ec1" || got[1].KID != "rsa-jwks" {
		t.Fatalf("keys %+v", got)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "enc-key") {
		t.Fatalf("skipped %v", skipped)
	}
	f := func(doc, want string) {
		t.Helper()
		_, _, err := ParseJWKS([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ParseJWKS(%s) = %v, want %q", doc, err, want)
		}
	}
	f(`[]`, "not a JWKS")
	f(`{"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]}`, "n is not base64url")
	f(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`, "at least 2048")
	f(`{"keys":[{"kty":"RSA","n":"AQAB","e":"Ag"}]}`, "odd number")
	f(`{"keys":[{"kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB"}]}`, "32 bytes")
	f(`{"keys":[{"kty":"EC","crv":"P-256","x":"`+b64u(make([]byte, 32))+`","y":"`+b64u(make([]byte, 32))+`"}]}`, "not a point")
	f(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AQAB"}]}`, "32 bytes")
	f(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"`+b64u(make([]byte, 32))+`","kid":"a"},{"kty":"OKP","crv":"Ed25519","x":"`+b64u(make([]byte, 32))+`","kid":"a"}]}`, "used twice")
	_, skipped, err = ParseJWKS([]byte(`{"keys":[{"kty":"oct","k":"AAAA"},{"kty":"EC","crv":"P-384"},{"kty":"OKP","crv":"X25519"},{"kty":"foo"},{"kty":"OKP","crv":"Ed25519","alg":"ES256","x":"` + b64u(make([]byte, 32)) + `"}]}`))
	if err != nil || len(skipped) != 5 {
		t.Fatalf("skips: %v %v", skipped, err)
	}
}
