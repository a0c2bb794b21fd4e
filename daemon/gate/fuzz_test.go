package gate

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

var (
	fuzzOnce  sync.Once
	fuzzFix   *fixture
	fuzzValid map[string]bool // tokens signed in this process
)

func fuzzFixture(t testing.TB) *fixture {
	fuzzOnce.Do(func() {
		fuzzFix = newFixture(t, nil)
		k := keys()
		fuzzValid = map[string]bool{}
		for _, tok := range []string{
			sign(t, jwt.SigningMethodHS256, "", claims(nil), k.hs),
			sign(t, jwt.SigningMethodRS256, "", claims(nil), k.rsa),
			sign(t, jwt.SigningMethodES256, "ec1", claims(nil), k.ec),
			sign(t, jwt.SigningMethodEdDSA, "ed1", claims(nil), k.ed),
		} {
			fuzzValid[tok] = true
		}
	})
	return fuzzFix
}

// FuzzCheck sends arbitrary credentials, headers and bodies through the
// whole gate: it never panics, always answers one way, and lets nothing in
// without a configured credential.
func FuzzCheck(f *testing.F) {
	fx := fuzzFixture(f)
	f.Add(fx.keys["team-a-2026q4"], "", "application/json", "", `{"a":1}`)
	f.Add("", "Bearer "+fx.keys["team-a-2026q4"], "application/json; charset=utf-8", "10.0.0.1", `{}`)
	f.Add("", "Bearer a.b.c", "text/plain", "1.2.3.4, 10.1.1.1", "[[[")
	f.Add("aia_aaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaa", "Basic x", "", "", "\xff")
	for tok := range fuzzValid {
		f.Add("", "Bearer "+tok, "application/json", "", `{"s":"\ud800"}`)
	}
	f.Fuzz(func(t *testing.T, apiKeyV, auth, ct, xff, body string) {
		h := hdr{}
		h.set("X-API-Key", apiKeyV)
		h.set("Authorization", auth)
		h.set("Content-Type", ct)
		h.set("X-Forwarded-For", xff)
		req := request(func(r *Request, _ hdr) { r.Header, r.Body = h, []byte(body) })
		p, r := fx.g.Check(req)
		if (p == nil) == (r == nil) {
			t.Fatalf("Check returned principal %v and refusal %v", p, r)
		}
		if r != nil {
			if r.Status < 400 || r.Status > 499 || r.Code == "" || r.Reason == "" {
				t.Fatalf("refusal %+v", r)
			}
			if apiKeyV != "" && len(apiKeyV) > 12 && strings.Contains(r.Message, apiKeyV) {
				t.Fatalf("message echoes the key: %q", r.Message)
			}
			if len(auth) > 20 && strings.Contains(r.Message, auth[7:]) {
				t.Fatalf("message echoes Authorization: %q", r.Message)
			}
			return
		}
		if p.Kind == KindAnonymous {
			t.Fatalf("anonymous principal on a gate with keys")
		}
		if p.Kind == KindKey && !strings.Contains(apiKeyV+auth, fx.keys[p.KeyName]) {
			t.Fatalf("key %s accepted without being sent", p.KeyName)
		}
		if p.Kind == KindJWT {
			tok := strings.TrimSpace(auth)
			if i := strings.IndexByte(tok, ' '); i >= 0 {
				tok = strings.TrimSpace(tok[i+1:])
			}
			if !fuzzValid[tok] {
				t.Fatalf("token %q accepted but never signed", tok)
			}
		}
	})
}

// FuzzVerifyJWT feeds arbitrary tokens to the verifier: only tokens signed
// in this process may pass.
func FuzzVerifyJWT(f *testing.F) {
	fx := fuzzFixture(f)
	for tok := range fuzzValid {
		f.Add(tok)
		parts := strings.Split(tok, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".." + parts[2])
	}
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("e30.e30.e30")
	f.Add("...")
	f.Fuzz(func(t *testing.T, tok string) {
		p, r := fx.g.jwt.verify([]byte(tok))
		if (p == nil) == (r == nil) {
			t.Fatalf("verify returned %v and %v", p, r)
		}
		if p != nil && !fuzzValid[tok] {
			t.Fatalf("token %q accepted but never signed", tok)
		}
		if r != nil && (r.Status != 401 || r.Reason == "") {
			t.Fatalf("refusal %+v", r)
		}
	})
}

// FuzzParseIPList checks that what parses holds what it says.
func FuzzParseIPList(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "192.0.2.7", "fd00::/8", "::ffff:10.0.0.0/104", "::1", "1.2.3.4/33", "fe80::1%eth0", " 10.1.2.3 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseIPList([]string{s})
		if err != nil {
			if !strings.Contains(err.Error(), "entry 0") {
				t.Fatalf("error %v does not name the entry", err)
			}
			return
		}
		p := l.prefixes[0]
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() {
			t.Fatalf("%q parsed to %v", s, p)
		}
		if !l.Contains(p.Addr()) {
			t.Fatalf("%q does not contain its own network address %v", s, p.Addr())
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil && !l.Contains(NormalizeAddr(a)) {
			t.Fatalf("%q does not contain itself", s)
		}
	})
}

// FuzzClientIP checks that X-Forwarded-For only ever yields the peer or
// an address written in the header, and never from an untrusted peer.
func FuzzClientIP(f *testing.F) {
	trusted, _ := ParseIPList([]string{"10.1.1.1", "10.2.0.0/16", "fd00::/8"})
	f.Add("10.1.1.1", "198.51.100.7, 10.2.3.4")
	f.Add("192.0.2.1", "10.0.0.1")
	f.Add("10.1.1.1", "[2001:db8::1]:80,garbage")
	f.Add("::ffff:10.1.1.1", "::ffff:1.2.3.4")
	f.Add("fd00::1", strings.Repeat("fd00::2,", 40))
	f.Fuzz(func(t *testing.T, peerS, xff string) {
		peerA, err := netip.ParseAddr(peerS)
		if err != nil {
			return
		}
		got := ClientIP(peerA, []byte(xff), trusted)
		norm := NormalizeAddr(peerA)
		if !trusted.Contains(norm) && got != norm {
			t.Fatalf("untrusted peer %v, client %v", peerA, got)
		}
		if got == norm {
			return
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("client %v not normalised", got)
		}
		found := false
		for _, e := range strings.Split(xff, ",") {
			if a, ok := parseHop(bytes.TrimSpace([]byte(e))); ok && a == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("client %v is not in %q", got, xff)
		}
	})
}

// refDepth is the nesting depth of valid JSON, by the standard decoder.
func refDepth(b []byte) int {
	d := json.NewDecoder(bytes.NewReader(b))
	depth, top := 0, 0
	for {
		tok, err := d.Token()
		if err != nil {
			return top
		}
		if delim, ok := tok.(json.Delim); ok {
			if delim == '{' || delim == '[' {
				depth++
				top = max(top, depth)
			} else {
				depth--
			}
		}
	}
}

// hasReplacement tells whether decoding b replaced any text with U+FFFD.
func hasReplacement(b []byte) bool {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case string:
			return strings.ContainsRune(v, utf8.RuneError)
		case []any:
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		case map[string]any:
			for k, e := range v {
				if strings.ContainsRune(k, utf8.RuneError) || walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

// FuzzScanJSON compares the scanner with the standard decoder on valid
// JSON: the scanner must refuse exactly the bodies the decoder would
// silently alter or that nest too deep.
func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, "{\"a\":\"\xff\"}", `["\ud800"]`, `["\ud83c\udf89"]`, `[[[[]]]]`, `{"a":"\\\"["}`, strings.Repeat("[", 70) + strings.Repeat("]", 70), `"\uDBFF\uDFFF"`, "\"\xef\xbf\xbd\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const depth = 8
		err := ScanJSON(b, depth)
		if err != nil && (err.Offset < 0 || err.Offset >= len(b)) {
			t.Fatalf("offset %d outside the body", err.Offset)
		}
		if !json.Valid(b) || bytes.Contains(b, []byte("\xef\xbf\xbd")) || bytes.Contains(bytes.ToLower(b), []byte(`\ufffd`)) {
			return // the decoder refuses it anyway, or U+FFFD was sent on purpose
		}
		bad := !utf8.Valid(b) || refDepth(b) > depth || hasReplacement(b)
		if bad != (err != nil) {
			t.Fatalf("ScanJSON(%q) = %v, decoder says bad=%v (utf8 %v, depth %d, replaced %v)", b, err, bad, utf8.Valid(b), refDepth(b), hasReplacement(b))
		}
	})
}

// FuzzCheckHost checks that a loopback listener without allowed_hosts
// only takes localhost and loopback addresses.
func FuzzCheckHost(f *testing.F) {
	for _, s := range []string{"localhost", "localhost:8080", "[::1]:80", "127.0.0.1", "evil.example", "[::1", "127.0.0.1.evil", "::ffff:127.0.0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		r := CheckHost(host, true, HostList{})
		if r != nil {
			if r.Status != 403 {
				t.Fatalf("status %d", r.Status)
			}
			return
		}
		name, _, _ := splitHost(host)
		if !strings.EqualFold(name, "localhost") {
			a, err := netip.ParseAddr(name)
			if err != nil || !a.Unmap().IsLoopback() {
				t.Fatalf("Host %q accepted on loopback", host)
			}
		}
	})
}

// FuzzParseCredential checks the header parsing alone: what it returns as
// a key parses as one and was in a header, and it never panics.
func FuzzParseCredential(f *testing.F) {
	f.Add("aia_abcdefgh_abcdefghijklmnopqrstuvwxyz", "")
	f.Add("", "Bearer aia_abcdefgh_abcdefghijklmnopqrstuvwxyz")
	f.Add("", "bearer a.b.c")
	f.Add("x", "Basic y")
	f.Add("", "Bearer ")
	f.Fuzz(func(t *testing.T, apiKeyV, auth string) {
		c := parseCredential([]byte(apiKeyV), []byte(auth))
		switch c.kind {
		case credKey:
			if _, ok := parseKey(c.value); !ok {
				t.Fatalf("key %q does not parse", c.value)
			}
			if !strings.Contains(apiKeyV, string(c.value)) && !strings.Contains(auth, string(c.value)) {
				t.Fatalf("key %q came from nowhere", c.value)
			}
			id, ok := KeyID(string(c.value))
			if !ok || len(id) != keyIDLen || !strings.HasPrefix(string(c.value), "aia_"+id+"_") {
				t.Fatalf("KeyID(%q) = %q, %v", c.value, id, ok)
			}
		case credToken:
			if len(c.value) == 0 || len(c.value) > maxCredential || !strings.Contains(auth, string(c.value)) {
				t.Fatalf("token %q", c.value)
			}
		default:
			if c.value != nil {
				t.Fatalf("kind %v with a value", c.kind)
			}
		}
	})
}
