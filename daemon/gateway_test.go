package daemon_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/aiassist/aiassist/daemon/gate"
)

// gatewayFixture is a running daemon with keys, JWT, allow lists and
// trusted proxies, and the secrets it was configured with.
type gatewayFixture struct {
	p        *proc
	port     int
	cfg      string
	render   func(withGone bool) string
	keys     map[string]string // by config name
	hsSecret string
	rsaKey   *rsa.PrivateKey
	rsaPub   []byte
	secrets  []string // everything that must never reach the log
}

func newGatewayFixture(t *testing.T) *gatewayFixture {
	t.Helper()
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	writeDemo(t, filepath.Join(dir, "other.onnx"))
	f := &gatewayFixture{port: freePort(t), keys: map[string]string{}, hsSecret: "test-only-hs256-secret-of-at-least-32-bytes!"}
	for _, n := range []string{"team-a", "team-b", "old", "future", "far", "gone"} {
		f.keys[n] = gate.NewKey()
		f.secrets = append(f.secrets, f.keys[n][strings.LastIndexByte(f.keys[n], '_')+1:])
	}
	f.secrets = append(f.secrets, f.hsSecret)
	var err error
	if f.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&f.rsaKey.PublicKey)
	f.rsaPub = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "rsa.pem"), f.rsaPub, 0o644); err != nil {
		t.Fatal(err)
	}
	llama, _ := filepath.Abs(filepath.Join("..", "examples", "models", "tiny-llama"))
	f.render = func(withGone bool) string {
		var b strings.Builder
		fmt.Fprintf(&b, "listeners: [{port: %d}]\n", f.port)
		fmt.Fprintf(&b, "models: {demo: {kind: \"tensor\", path: \"demo.onnx\"}, other: {kind: \"tensor\", path: \"other.onnx\"}, llama: {kind: \"causal-lm\", path: %q}}\n", llama)
		fmt.Fprintf(&b, "server: cors_origins: [\"https://app.example\"]\n")
		fmt.Fprintf(&b, "access: {allow_ips: [\"127.0.0.1/32\", \"10.0.0.0/8\"], trusted_proxies: [\"127.0.0.1/32\"]}\n")
		key := func(name, extra string) {
			fmt.Fprintf(&b, "auth: api_keys: %q: {hash: %q%s}\n", name, gate.HashKey(f.keys[name]), extra)
		}
		key("team-a", `, models: ["demo", "llama"]`)
		key("team-b", `, models: ["other"]`)
		key("old", `, not_before: "2019-01-01T00:00:00Z", not_after: "2020-01-01T00:00:00Z"`)
		key("future", `, not_before: "2099-01-01T00:00:00Z"`)
		key("far", `, allow_ips: ["10.0.0.0/8"]`)
		if withGone {
			key("gone", "")
		}
		fmt.Fprintf(&b, "auth: jwt: {hs256_secret: %q, public_keys: [{file: \"rsa.pem\", kid: \"rsa1\"}], issuer: \"https://id.example\", audience: \"aiassist\"}\n", f.hsSecret)
		return b.String()
	}
	f.cfg = filepath.Join(dir, "config.cue")
	writeConfig(t, f.cfg, f.render(true))
	f.p = start(t, f.cfg)
	f.p.until("readiness", func() bool {
		code, _, _ := f.p.get(fmt.Sprintf("http://127.0.0.1:%d/v2/health/ready", f.port))
		return code == 200
	})
	return f
}

// claims are a test token's; zero fields are left out.
type claims map[string]any

func (f *gatewayFixture) hs(c claims) string {
	return sign(jwt.SigningMethodHS256, []byte(f.hsSecret), "", c)
}

func sign(m jwt.SigningMethod, key any, kid string, c claims) string {
	t := jwt.NewWithClaims(m, jwt.MapClaims(c))
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

func good() claims {
	now := time.Now()
	return claims{"sub": "alice", "iss": "https://id.example", "aud": "aiassist", "scope": "model:call", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
}

func with(c claims, k string, v any) claims {
	out := claims{}
	for a, b := range c {
		out[a] = b
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// unsignedToken is alg "none": a header, the claims and no signature.
func unsignedToken(c claims) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	p, _ := json.Marshal(c)
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "."
}

// tamper swaps the payload of a signed token for another.
func tamper(tok string, c claims) string {
	parts := strings.Split(tok, ".")
	p, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

type attack struct {
	name    string
	method  string
	path    string
	headers map[string]string
	body    string
	from    string // source address; "" is 127.0.0.1
	status  int
	code    string // the JSON error's code; "" for a success
}

const inferBody = `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`

func TestGatewayAttacks(t *testing.T) {
	f := newGatewayFixture(t)
	json := "application/json"
	key := func(name string) map[string]string {
		return map[string]string{"X-API-Key": f.keys[name], "Content-Type": json}
	}
	bearer := func(tok string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": json}
	}
	hdr := func(kv ...string) map[string]string {
		m := map[string]string{"Content-Type": json}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	infer := "/v2/models/demo/infer"
	past := time.Now().Add(-time.Hour).Unix()
	future := time.Now().Add(time.Hour).Unix()
	hsWithRSAKid := sign(jwt.SigningMethodHS256, f.rsaPub, "rsa1", good())
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	cases := []attack{
		{name: "no credential", path: infer, headers: hdr(), status: 401, code: "missing_credential"},
		{name: "garbled key", path: infer, headers: hdr("X-API-Key", "hello"), status: 401, code: "malformed_key"},
		{name: "key with a changed secret", path: infer, headers: hdr("X-API-Key", changeLast(f.keys["team-a"])), status: 401, code: "invalid_api_key"},
		{name: "unknown key", path: infer, headers: hdr("X-API-Key", gate.NewKey()), status: 401, code: "invalid_api_key"},
		{name: "expired key", path: infer, headers: key("old"), status: 401, code: "key_expired"},
		{name: "not yet valid key", path: infer, headers: key("future"), status: 401, code: "key_not_yet_valid"},
		{name: "key for another model", path: infer, headers: key("team-b"), status: 403, code: "model_not_allowed"},
		{name: "key from an address it may not use", path: infer, headers: key("far"), status: 403, code: "ip_not_allowed"},
		{name: "key in X-API-Key", path: infer, headers: key("team-a"), status: 200},
		{name: "key as a bearer", path: infer, headers: bearer(f.keys["team-a"]), status: 200},
		{name: "basic auth", path: infer, headers: hdr("Authorization", "Basic dXNlcjpwYXNz"), status: 401, code: "malformed_authorization"},
		{name: "empty bearer", path: infer, headers: hdr("Authorization", "Bearer "), status: 401},
		{name: "jwt alg none", path: infer, headers: bearer(unsignedToken(good())), status: 401},
		{name: "jwt HS256 signed with the RSA public key", path: infer, headers: bearer(hsWithRSAKid), status: 401},
		{name: "jwt expired", path: infer, headers: bearer(f.hs(with(good(), "exp", past))), status: 401},
		{name: "jwt without exp", path: infer, headers: bearer(f.hs(with(good(), "exp", nil))), status: 401},
		{name: "jwt nbf in the future", path: infer, headers: bearer(f.hs(with(good(), "nbf", future))), status: 401},
		{name: "jwt wrong issuer", path: infer, headers: bearer(f.hs(with(good(), "iss", "https://evil.example"))), status: 401},
		{name: "jwt wrong audience", path: infer, headers: bearer(f.hs(with(good(), "aud", "someone-else"))), status: 401},
		{name: "jwt without the scope", path: infer, headers: bearer(f.hs(with(good(), "scope", "profile"))), status: 403, code: "insufficient_scope"},
		{name: "jwt tampered payload", path: infer, headers: bearer(tamper(f.hs(good()), with(good(), "sub", "root"))), status: 401},
		{name: "jwt unknown kid", path: infer, headers: bearer(sign(jwt.SigningMethodRS256, f.rsaKey, "nope", good())), status: 401},
		{name: "jwt garbage", path: infer, headers: bearer("a.b.c"), status: 401},
		{name: "jwt HS256", path: infer, headers: bearer(f.hs(good())), status: 200},
		{name: "jwt RS256", path: infer, headers: bearer(sign(jwt.SigningMethodRS256, f.rsaKey, "rsa1", good())), status: 200},
		{name: "jwt scp list", path: infer, headers: bearer(f.hs(with(with(good(), "scope", nil), "scp", []string{"model:call"}))), status: 200},
		{name: "jwt models claim narrows", path: infer, headers: bearer(f.hs(with(good(), "models", []string{"other"}))), status: 403, code: "model_not_allowed"},
		{name: "address outside the list via a trusted proxy", path: infer, headers: func() map[string]string {
			h := key("team-a")
			h["X-Forwarded-For"] = "192.168.1.9"
			return h
		}(), status: 403, code: "ip_not_allowed"},
		{name: "allowed address via a trusted proxy", path: infer, headers: func() map[string]string {
			h := key("far")
			h["X-Forwarded-For"] = "10.2.3.4"
			return h
		}(), status: 200},
		{name: "spoofed X-Forwarded-For from an untrusted peer", path: infer, from: "127.0.0.2", headers: func() map[string]string {
			h := key("team-a")
			h["X-Forwarded-For"] = "10.2.3.4"
			return h
		}(), status: 403, code: "ip_not_allowed"},
		{name: "text/plain post", path: infer, headers: map[string]string{"X-API-Key": f.keys["team-a"], "Content-Type": "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "form post", path: infer, headers: map[string]string{"X-API-Key": f.keys["team-a"], "Content-Type": "application/x-www-form-urlencoded"}, status: 415, code: "unsupported_media_type"},
		{name: "no content type", path: infer, headers: map[string]string{"X-API-Key": f.keys["team-a"]}, status: 415, code: "unsupported_media_type"},
		{name: "json with a charset", path: infer, headers: map[string]string{"X-API-Key": f.keys["team-a"], "Content-Type": "application/json; charset=utf-8"}, status: 200},
		{name: "foreign host on loopback", path: infer, headers: func() map[string]string { h := key("team-a"); h["Host"] = "evil.example"; return h }(), status: 403, code: "host_not_allowed"},
		{name: "gzip body", path: infer, headers: func() map[string]string { h := key("team-a"); h["Content-Encoding"] = "gzip"; return h }(), status: 415, code: "unsupported_encoding"},
		{name: "bad utf-8", path: "/v1/completions", headers: key("team-a"), body: "{\"model\":\"llama\",\"prompt\":\"\xff\xfe\"}", status: 400},
		{name: "deep json", path: "/v1/completions", headers: key("team-a"), body: deep, status: 400},
		{name: "trailing data", path: infer, headers: key("team-a"), body: inferBody + "]", status: 400},
		{name: "oversize header", path: infer, headers: func() map[string]string { h := key("team-a"); h["X-Padding"] = strings.Repeat("a", 64<<10); return h }(), status: 431, code: "header_too_large"},
		{name: "max_tokens beyond the context", path: "/v1/completions", headers: key("team-a"), body: `{"model":"llama","prompt":"Hi","max_tokens":100000}`, status: 400},
		{name: "wrong method", method: "GET", path: infer, headers: key("team-a"), status: 405},
		{name: "model list needs a credential", method: "GET", path: "/v1/models", headers: hdr(), status: 401},
		{name: "health needs none", method: "GET", path: "/v2/health/ready", headers: hdr(), status: 200},
		{name: "metrics need none by default", method: "GET", path: "/metrics", headers: hdr(), status: 200},
		{name: "cors preflight from an unlisted origin", method: "OPTIONS", path: infer, headers: hdr("Origin", "https://evil.example", "Access-Control-Request-Method", "POST"), status: 403, code: "origin_not_allowed"},
		{name: "cors preflight from a listed origin", method: "OPTIONS", path: infer, headers: hdr("Origin", "https://app.example", "Access-Control-Request-Method", "POST"), status: 204},
		{name: "binary tensor without its header length", path: infer, headers: map[string]string{"X-API-Key": f.keys["team-a"], "Content-Type": "application/octet-stream"}, status: 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body, hdrs := f.do(t, c)
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			if status >= 400 {
				var e struct {
					Error struct{ Message, Type, Code string } `json:"error"`
				}
				if err := jsonUnmarshal(body, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" || e.Error.Code == "" {
					t.Fatalf("not a JSON error: %s", body)
				}
				if c.code != "" && e.Error.Code != c.code {
					t.Errorf("code %q, want %q: %s", e.Error.Code, c.code, body)
				}
				if status == 401 && hdrs.Get("WWW-Authenticate") == "" {
					t.Error("a 401 without WWW-Authenticate")
				}
			}
			if c.name == "cors preflight from a listed origin" && hdrs.Get("Access-Control-Allow-Origin") != "https://app.example" {
				t.Errorf("preflight headers %v", hdrs)
			}
			if c.name == "no credential" && hdrs.Get("Access-Control-Allow-Origin") != "" {
				t.Error("CORS headers for a request with no Origin")
			}
			for _, s := range f.secrets {
				if strings.Contains(body, s) {
					t.Errorf("the answer holds a secret: %s", body)
				}
			}
		})
	}

	// A key removed from the file stops working at the reload that
	// removes it.
	gone := attack{path: infer, headers: key("gone")}
	if status, body, _ := f.do(t, gone); status != 200 {
		t.Fatalf("the key before its removal: %d %s", status, body)
	}
	writeConfig(t, f.cfg, f.render(false))
	f.p.signal(syscall.SIGHUP)
	f.p.until("generation 2", func() bool {
		return metricsWithKey(t, f)["aiassist_config_generation"] == 2
	})
	if status, body, _ := f.do(t, gone); status != 401 {
		t.Errorf("the key after the reload that removed it: %d %s", status, body)
	}

	// The daemon still serves, and its log holds no secret.
	if status, body, _ := f.do(t, attack{path: infer, headers: key("team-a")}); status != 200 {
		t.Errorf("after the attacks: %d %s", status, body)
	}
	log := f.p.log.String()
	for _, s := range f.secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log holds a secret (%s…)", s[:6])
		}
	}
	for _, c := range cases {
		for _, v := range c.headers {
			if strings.HasPrefix(v, "Bearer ey") && strings.Contains(log, strings.TrimPrefix(v, "Bearer ")) {
				t.Errorf("the log holds a token of case %q", c.name)
			}
		}
	}
	for _, want := range []string{`"queue_wait_seconds":`, `"client_ip":"127.0.0.1"`, `"key":"team-a"`, `"auth":"key"`} {
		if !strings.Contains(log, want) {
			t.Errorf("no access log line has %s", want)
		}
	}
	m := metricsWithKey(t, f)
	if m[`aiassist_auth_failures_total{reason="key_expired"}`] < 1 || m[`aiassist_auth_failures_total{reason="missing_credential"}`] < 1 {
		t.Errorf("auth failures not counted: %v", m)
	}
}

func metricsWithKey(t *testing.T, f *gatewayFixture) map[string]float64 {
	return f.p.metrics(f.port)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// do sends one attack over a fresh connection.
func (f *gatewayFixture) do(t *testing.T, c attack) (int, string, http.Header) {
	t.Helper()
	method := c.method
	if method == "" {
		method = "POST"
	}
	body := c.body
	if body == "" && method == "POST" {
		body = inferBody
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	if c.from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(c.from)}
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}}
	req, err := http.NewRequestWithContext(context.Background(), method, fmt.Sprintf("http://127.0.0.1:%d%s", f.port, c.path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestOpenAIClientWithKey makes the official OpenAI SDK's wire calls with
// an API key as its apiKey (sent as a bearer token): the model list, a
// chat completion, and a streamed one.
func TestOpenAIClientWithKey(t *testing.T) {
	f := newGatewayFixture(t)
	sdk := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d/v1%s", f.port, path), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		// What the SDKs send.
		req.Header.Set("Authorization", "Bearer "+f.keys["team-a"])
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "OpenAI/JS 4.104.0")
		req.Header.Set("X-Stainless-Lang", "js")
		req.Header.Set("X-Stainless-Retry-Count", "0")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := f.p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := sdk("GET", "/models", "")
	if code != 200 || !strings.Contains(body, `"id":"llama"`) || strings.Contains(body, `"id":"demo"`) {
		t.Errorf("models: %d %s", code, body)
	}
	code, body = sdk("POST", "/chat/completions", `{"model":"llama","messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"temperature":0}`)
	if code != 200 || !strings.Contains(body, `"object":"chat.completion"`) {
		t.Errorf("chat: %d %s", code, body)
	}
	code, body = sdk("POST", "/chat/completions", `{"model":"llama","messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"stream":true,"stream_options":{"include_usage":true}}`)
	if code != 200 || !strings.Contains(body, "data: [DONE]") || !strings.Contains(body, `"usage":{"prompt_tokens"`) {
		t.Errorf("stream: %d %s", code, body)
	}
	// Usage is counted per key, by its config name.
	m := f.p.metrics(f.port)
	if m[`aiassist_request_tokens_total{model="llama",key="team-a",issuer="",direction="out"}`] < 4 || m[`aiassist_request_tokens_total{model="llama",key="team-a",issuer="",direction="in"}`] < 1 {
		t.Errorf("usage of team-a not counted: %v", m)
	}
	// Another key's model is refused by name, the key's list unsaid.
	code, body = sdk("POST", "/completions", `{"model":"nope","prompt":"Hi"}`)
	if code != 403 && code != 404 {
		t.Errorf("an unknown model: %d %s", code, body)
	}
}

// changeLast returns key with its last character changed: to "x", or to
// "y" for a key that already ends in "x".
func changeLast(key string) string {
	last := "x"
	if strings.HasSuffix(key, "x") {
		last = "y"
	}
	return key[:len(key)-1] + last
}
