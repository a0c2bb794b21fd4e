package gate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestAttacks runs attack and misuse cases through one Gate. Each case
// says the status and code it must get ("" code: allowed), and neither
// the log nor the error body may hold a secret.
func TestAttacks(t *testing.T) {
	f := newFixture(t, nil)
	k := keys()
	key := f.keys["team-a-2026q4"]
	hs := func(mod func(jwt.MapClaims)) string { return sign(t, jwt.SigningMethodHS256, "", claims(mod), k.hs) }
	unknownKey := f.newKey("never-configured")

	noneTok := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil))
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	tampered := func() string {
		parts := strings.Split(hs(nil), ".")
		c := claims(func(c jwt.MapClaims) { c["sub"] = "admin"; c["models"] = []string{"qwen", "bert"} })
		b, _ := json.Marshal(c)
		parts[1] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(parts, ".")
	}()
	deep := strings.Repeat("[", 65) + strings.Repeat("]", 65)
	okDeep := `{"a":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`

	cases := []struct {
		name      string
		req       Request
		status    int
		code      string
		principal string // the principal's name when allowed
		inMsg     string // the refusal message must contain this
		notInMsg  string
	}{
		// API keys.
		{name: "no credential", req: request(), status: 401, code: "missing_credential"},
		{name: "garbled X-API-Key", req: request(apiKey("hello")), status: 401, code: "malformed_key"},
		{name: "X-API-Key with a short secret", req: request(apiKey("aia_abcdefgh_short")), status: 401, code: "malformed_key"},
		{name: "X-API-Key in upper case", req: request(apiKey(strings.ToUpper(key))), status: 401, code: "malformed_key"},
		{name: "X-API-Key holding a JWT", req: request(apiKey(hs(nil))), status: 401, code: "malformed_key"},
		{name: "Authorization Basic", req: request(header("Authorization", "Basic dXNlcjpwYXNz")), status: 401, code: "malformed_authorization"},
		{name: "Authorization Bearer empty", req: request(header("Authorization", "Bearer ")), status: 401, code: "malformed_authorization"},
		{name: "Authorization oversize", req: request(bearer(strings.Repeat("a", 9000))), status: 401, code: "malformed_authorization"},
		{name: "unknown key", req: request(apiKey(unknownKey)), status: 401, code: "invalid_api_key", inMsg: "aia_" + unknownKey[4:12] + "_…", notInMsg: unknownKey[13:]},
		{name: "unknown key as Bearer", req: request(bearer(unknownKey)), status: 401, code: "invalid_api_key"},
		{name: "key with one character changed", req: request(apiKey(key[:len(key)-1] + flip(key[len(key)-1]))), status: 401, code: "invalid_api_key"},
		{name: "key with a suffix", req: request(apiKey(key + "a")), status: 401, code: "invalid_api_key"},
		{name: "valid key in X-API-Key", req: request(apiKey(key)), principal: "team-a"},
		{name: "valid key as Bearer", req: request(bearer(key)), principal: "team-a"},
		{name: "valid key, lower-case bearer", req: request(header("Authorization", "bearer  "+key+" ")), principal: "team-a"},
		{name: "X-API-Key wins over a placeholder Bearer", req: request(apiKey(key), bearer("sk-placeholder")), principal: "team-a"},
		{name: "expired key", req: request(apiKey(f.keys["old"])), status: 401, code: "key_expired", inMsg: "expired at " + t0.Add(-time.Hour).Format(time.RFC3339)},
		{name: "key not yet valid", req: request(apiKey(f.keys["future"])), status: 401, code: "key_not_yet_valid", inMsg: t0.Add(time.Hour).Format(time.RFC3339)},
		{name: "key for another model", req: request(apiKey(key), func(r *Request, _ hdr) { r.Model = "bert" }), status: 403, code: "model_not_allowed", inMsg: `"bert"`, notInMsg: "qwen"},
		{name: "second key of one principal", req: request(apiKey(f.keys["team-a-2026q3"]), func(r *Request, _ hdr) { r.Model = "bert" }), principal: "team-a"},
		{name: "key without model:call", req: request(apiKey(f.keys["monitor"])), status: 403, code: "insufficient_scope"},
		{name: "key outside its allow_ips", req: request(apiKey(f.keys["lan-only"]), peer("10.8.0.1")), status: 403, code: "ip_not_allowed"},
		{name: "key inside its allow_ips", req: request(apiKey(f.keys["lan-only"]), peer("10.9.3.4")), principal: "lan-only"},

		// JWT.
		{name: "JWT HS256", req: request(bearer(hs(nil))), principal: "alice"},
		{name: "JWT alg none", req: request(bearer(noneTok)), status: 401, code: "token_alg"},
		{name: "JWT alg none with an RSA kid", req: request(bearer(withKid(noneTok, "rsa-jwks"))), status: 401, code: "token_alg"},
		{name: "JWT HS256 signed with the RSA public key", req: request(bearer(sign(t, jwt.SigningMethodHS256, "", claims(nil), k.rsaPEM))), status: 401, code: "token_signature"},
		{name: "JWT HS256 signed with the RSA public key, RSA kid", req: request(bearer(sign(t, jwt.SigningMethodHS256, "rsa-jwks", claims(nil), mustPKIX(&k.rsa2.PublicKey)))), status: 401, code: "token_alg"},
		{name: "JWT HS256 with another secret", req: request(bearer(sign(t, jwt.SigningMethodHS256, "", claims(nil), k.otherHS))), status: 401, code: "token_signature"},
		{name: "JWT HS384", req: request(bearer(sign(t, jwt.SigningMethodHS384, "", claims(nil), k.hs))), status: 401, code: "token_alg"},
		{name: "JWT expired", req: request(bearer(hs(func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Minute).Unix() }))), status: 401, code: "token_expired"},
		{name: "JWT expired within leeway", req: request(bearer(hs(func(c jwt.MapClaims) { c["exp"] = t0.Add(-10 * time.Second).Unix() }))), principal: "alice"},
		{name: "JWT without exp", req: request(bearer(hs(func(c jwt.MapClaims) { delete(c, "exp") }))), status: 401, code: "token_claims"},
		{name: "JWT nbf in the future", req: request(bearer(hs(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Hour).Unix() }))), status: 401, code: "token_not_yet_valid"},
		{name: "JWT nbf within leeway", req: request(bearer(hs(func(c jwt.MapClaims) { c["nbf"] = t0.Add(20 * time.Second).Unix() }))), principal: "alice"},
		{name: "JWT iat in the future", req: request(bearer(hs(func(c jwt.MapClaims) { c["iat"] = t0.Add(time.Hour).Unix() }))), status: 401, code: "token_not_yet_valid"},
		{name: "JWT wrong issuer", req: request(bearer(hs(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))), status: 401, code: "token_issuer"},
		{name: "JWT no issuer", req: request(bearer(hs(func(c jwt.MapClaims) { delete(c, "iss") }))), status: 401, code: "token_issuer"},
		{name: "JWT wrong audience", req: request(bearer(hs(func(c jwt.MapClaims) { c["aud"] = []string{"other"} }))), status: 401, code: "token_audience"},
		{name: "JWT without sub", req: request(bearer(hs(func(c jwt.MapClaims) { delete(c, "sub") }))), status: 401, code: "token_claims"},
		{name: "JWT missing scope", req: request(bearer(hs(func(c jwt.MapClaims) { delete(c, "scope") }))), status: 403, code: "insufficient_scope"},
		{name: "JWT scope without model:call", req: request(bearer(hs(func(c jwt.MapClaims) { c["scope"] = "openid model:callx" }))), status: 403, code: "insufficient_scope"},
		{name: "JWT scp list", req: request(bearer(hs(func(c jwt.MapClaims) { delete(c, "scope"); c["scp"] = []string{"model:call"} }))), principal: "alice"},
		{name: "JWT scope of the wrong type", req: request(bearer(hs(func(c jwt.MapClaims) { c["scope"] = 7 }))), status: 401, code: "token_malformed"},
		{name: "JWT tampered payload", req: request(bearer(tampered)), status: 401, code: "token_signature"},
		{name: "JWT unknown kid", req: request(bearer(sign(t, jwt.SigningMethodES256, "nope", claims(nil), k.ec))), status: 401, code: "token_unknown_kid"},
		{name: "JWT kid of an encryption key", req: request(bearer(sign(t, jwt.SigningMethodRS256, "enc-key", claims(nil), k.rsa2))), status: 401, code: "token_unknown_kid"},
		{name: "JWT ES256 by kid", req: request(bearer(sign(t, jwt.SigningMethodES256, "ec1", claims(nil), k.ec))), principal: "alice"},
		{name: "JWT ES256 signed by another key", req: request(bearer(sign(t, jwt.SigningMethodES256, "ec1", claims(nil), mustEC()))), status: 401, code: "token_signature"},
		{name: "JWT RS256 under the EC kid", req: request(bearer(sign(t, jwt.SigningMethodRS256, "ec1", claims(nil), k.rsa))), status: 401, code: "token_alg"},
		{name: "JWT RS256 from the PEM file", req: request(bearer(sign(t, jwt.SigningMethodRS256, "", claims(nil), k.rsa))), principal: "alice"},
		{name: "JWT RS256 from the JWKS", req: request(bearer(sign(t, jwt.SigningMethodRS256, "rsa-jwks", claims(nil), k.rsa2))), principal: "alice"},
		{name: "JWT PS256 under an RSA kid", req: request(bearer(sign(t, jwt.SigningMethodPS256, "rsa-jwks", claims(nil), k.rsa2))), status: 401, code: "token_alg"},
		{name: "JWT EdDSA by kid", req: request(bearer(sign(t, jwt.SigningMethodEdDSA, "ed1", claims(nil), k.ed))), principal: "alice"},
		{name: "JWT EdDSA without kid", req: request(bearer(sign(t, jwt.SigningMethodEdDSA, "", claims(nil), k.ed))), status: 401, code: "token_alg"},
		{name: "JWT models claim narrows", req: request(bearer(hs(func(c jwt.MapClaims) { c["models"] = []string{"bert"} }))), status: 403, code: "model_not_allowed", notInMsg: "bert"},
		{name: "JWT models claim allows", req: request(bearer(hs(func(c jwt.MapClaims) { c["models"] = []string{"qwen"} }))), principal: "alice"},
		{name: "JWT empty models claim allows none", req: request(bearer(hs(func(c jwt.MapClaims) { c["models"] = []string{} }))), status: 403, code: "model_not_allowed"},
		{name: "JWT with crit header", req: request(bearer(withHeader(hs(nil), `{"alg":"HS256","crit":["exp"],"exp":1}`))), status: 401, code: "token_malformed"},
		{name: "bearer neither key nor JWT", req: request(bearer("abc.def")), status: 401, code: "token_malformed"},
		{name: "bearer with a garbled JWT header", req: request(bearer("!!!.e30.sig")), status: 401, code: "token_malformed"},

		// Addresses.
		{name: "IP outside the allow list", req: request(apiKey(key), peer("192.0.2.10")), status: 403, code: "ip_not_allowed"},
		{name: "IPv6 outside the allow list", req: request(apiKey(key), peer("2001:db8::1")), status: 403, code: "ip_not_allowed"},
		{name: "IPv6 inside the allow list", req: request(apiKey(key), peer("fd00::5")), principal: "team-a"},
		{name: "IPv4-mapped peer inside the list", req: request(apiKey(key), peer("::ffff:10.2.3.4")), principal: "team-a"},
		{name: "spoofed X-Forwarded-For from an untrusted peer", req: request(apiKey(key), peer("192.0.2.10"), header("X-Forwarded-For", "10.0.0.1")), status: 403, code: "ip_not_allowed", inMsg: "192.0.2.10"},
		{name: "X-Forwarded-For from the trusted proxy, client outside", req: request(apiKey(key), peer("10.1.1.1"), header("X-Forwarded-For", "10.0.0.1, 192.0.2.10")), status: 403, code: "ip_not_allowed", inMsg: "192.0.2.10"},
		{name: "X-Forwarded-For from the trusted proxy, client inside", req: request(apiKey(key), peer("10.1.1.1"), header("X-Forwarded-For", "192.0.2.10, 10.0.0.7")), principal: "team-a"},
		{name: "malformed X-Forwarded-For from the trusted proxy", req: request(apiKey(key), peer("10.1.1.1"), header("X-Forwarded-For", "192.0.2.10, not-an-ip")), principal: "team-a"},

		// Screening.
		{name: "text/plain POST", req: request(apiKey(key), header("Content-Type", "text/plain")), status: 415, code: "unsupported_media_type"},
		{name: "form POST", req: request(apiKey(key), header("Content-Type", "application/x-www-form-urlencoded")), status: 415, code: "unsupported_media_type"},
		{name: "multipart POST", req: request(apiKey(key), header("Content-Type", "multipart/form-data; boundary=x")), status: 415, code: "unsupported_media_type"},
		{name: "POST without Content-Type", req: request(apiKey(key), func(_ *Request, h hdr) { delete(h, "Content-Type") }), status: 415, code: "unsupported_media_type", inMsg: "got none"},
		{name: "JSON in latin1", req: request(apiKey(key), header("Content-Type", "application/json; charset=latin1")), status: 415, code: "unsupported_media_type"},
		{name: "JSON with utf-8 charset", req: request(apiKey(key), header("Content-Type", "Application/JSON; Charset=\"UTF-8\"")), principal: "team-a"},
		{name: "foreign Host on loopback", req: request(apiKey(key), func(r *Request, _ hdr) { r.Host = "evil.example:8080" }), status: 403, code: "host_not_allowed"},
		{name: "rebinding Host before auth", req: request(func(r *Request, _ hdr) { r.Host = "attacker.test" }), status: 403, code: "host_not_allowed"},
		{name: "bracketed IPv6 loopback Host", req: request(apiKey(key), func(r *Request, _ hdr) { r.Host = "[::1]:8080" }), principal: "team-a"},
		{name: "allowed Host on loopback", req: request(apiKey(key), func(r *Request, _ hdr) { r.Host = "API.example.com" }), principal: "team-a"},
		{name: "gzip body", req: request(apiKey(key), header("Content-Encoding", "gzip")), status: 415, code: "unsupported_encoding"},
		{name: "identity encoding", req: request(apiKey(key), header("Content-Encoding", "identity")), principal: "team-a"},
		{name: "bad UTF-8 in a string", req: request(apiKey(key), body("{\"prompt\":\"caf\xe9\"}")), status: 400, code: "invalid_utf8"},
		{name: "lone surrogate escape", req: request(apiKey(key), body(`{"prompt":"\ud800x"}`)), status: 400, code: "invalid_utf8"},
		{name: "deep JSON", req: request(apiKey(key), body(deep)), status: 400, code: "json_too_deep"},
		{name: "JSON at the depth limit", req: request(apiKey(key), body(okDeep)), principal: "team-a"},
		{name: "bad body without credential is 401", req: request(body("\xff")), status: 401, code: "missing_credential"},
		{name: "KServe binary without header length", req: request(apiKey(key), header("Content-Type", "application/octet-stream"), func(r *Request, _ hdr) { r.Content = ContentKServe }), status: 400, code: "invalid_input"},
		{name: "KServe binary with header length", req: request(apiKey(key), header("Content-Type", "application/octet-stream"), header("Inference-Header-Content-Length", "2"), body("{}\xff\xfe"), func(r *Request, _ hdr) { r.Content = ContentKServe }), principal: "team-a"},

		// Routes that need no credential.
		{name: "health from anywhere", req: request(peer("192.0.2.10"), func(r *Request, _ hdr) { r.Route, r.Method, r.Host = RouteHealth, "GET", "whatever" }), principal: KindAnonymous},
		{name: "metrics without require_auth", req: request(func(r *Request, _ hdr) { r.Route, r.Method = RouteMetrics, "GET" }), principal: KindAnonymous},
		{name: "metrics from outside the allow list", req: request(peer("192.0.2.10"), func(r *Request, _ hdr) { r.Route, r.Method = RouteMetrics, "GET" }), status: 403, code: "ip_not_allowed"},
		{name: "GET model list with a key", req: request(apiKey(key), func(r *Request, h hdr) {
			r.Method, r.Model, r.Content = "GET", "", ContentAuto
			delete(h, "Content-Type")
		}), principal: "team-a"},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, r := f.g.Check(c.req)
			// Log as the edge would, so the test sees what an operator sees.
			f.log.Info("request", "principal", p, "refusal", r, "client_ip", f.g.ClientIP(c.req.Peer, c.req.Header).String())
			if c.status == 0 {
				if r != nil {
					t.Fatalf("refused %d %s: %s", r.Status, r.Code, r.Message)
				}
				if p == nil || p.Name != c.principal {
					t.Fatalf("principal %+v, want %q", p, c.principal)
				}
				return
			}
			if r == nil {
				t.Fatalf("allowed as %+v, want %d %s", p, c.status, c.code)
			}
			if p != nil {
				t.Fatalf("refusal came with principal %+v", p)
			}
			if r.Status != c.status || r.Code != c.code {
				t.Fatalf("got %d %s (%s), want %d %s", r.Status, r.Code, r.Message, c.status, c.code)
			}
			if r.Type == "" || r.Message == "" || r.Reason == "" {
				t.Fatalf("refusal lacks type, message or reason: %+v", r)
			}
			if r.Status == 401 && r.Challenge == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if r.Status == 401 && !slices.Contains(failureReasons, r.Reason) {
				t.Fatalf("reason %q is not a label of aiassist_auth_failures_total", r.Reason)
			}
			if c.inMsg != "" && !strings.Contains(r.Message, c.inMsg) {
				t.Fatalf("message %q lacks %q", r.Message, c.inMsg)
			}
			if c.notInMsg != "" && strings.Contains(r.Message, c.notInMsg) {
				t.Fatalf("message %q holds %q", r.Message, c.notInMsg)
			}
			var eb ErrorBody
			if err := json.Unmarshal(r.Body(), &eb); err != nil || eb.Error.Code != c.code {
				t.Fatalf("error body %s: %v", r.Body(), err)
			}
			f.assertNoSecret(t, "error body", string(r.Body()))
		})
	}
	// Tokens are secrets too: collect every one used above.
	for _, c := range cases {
		if v := c.req.Header.Peek("Authorization"); len(v) > 0 {
			tok := strings.TrimSpace(string(v))
			if i := strings.IndexByte(tok, ' '); i >= 0 {
				tok = strings.TrimSpace(tok[i+1:])
			}
			if len(tok) > 16 {
				f.secrets = append(f.secrets, tok)
				if parts := strings.Split(tok, "."); len(parts) == 3 && len(parts[2]) > 8 {
					f.secrets = append(f.secrets, parts[2])
				}
			}
		}
		if v := c.req.Header.Peek("X-Api-Key"); len(v) > 16 {
			f.secrets = append(f.secrets, string(v))
		}
	}
	f.assertNoSecret(t, "log", f.logBuf.String())
	if !strings.Contains(f.logBuf.String(), `"key_id":"`+f.keys["team-a-2026q4"][4:12]+`"`) {
		t.Fatalf("log does not name the key by its id:\n%.2000s", f.logBuf.String())
	}
	if got := counterValue(t, f.set, `aiassist_auth_failures_total{reason="unknown_key"}`); got != 4 {
		t.Fatalf("unknown_key failures = %v, want 4", got)
	}
	if got := counterValue(t, f.set, `aiassist_auth_failures_total{reason="token_alg"}`); got < 5 {
		t.Fatalf("token_alg failures = %v, want at least 5", got)
	}
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func mustEC() any {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// withKid replaces a token's header by one with a kid.
func withKid(tok, kid string) string {
	parts := strings.Split(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	json.Unmarshal(raw, &h)
	h["kid"] = kid
	b, _ := json.Marshal(h)
	parts[0] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func withHeader(tok, header string) string {
	parts := strings.Split(tok, ".")
	parts[0] = base64.RawURLEncoding.EncodeToString([]byte(header))
	return strings.Join(parts, ".")
}
