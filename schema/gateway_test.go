package schema

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestGateway checks the decoding of every field of the gateway and the
// limits: paths resolved against the file's directory, times in UTC,
// durations with days, and the default burst.
func TestGateway(t *testing.T) {
	cfg, err := Load("testdata/gateway.good.cue")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		t.Helper()
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Listeners", cfg.Listeners, []Listener{
			{Address: "0.0.0.0", Port: 8443, TLS: &TLS{
				Cert:       filepath.Join(dir, "tls/cert.pem"),
				Key:        "/etc/aiassist/tls/key.pem",
				MinVersion: "1.3",
				ClientCA:   filepath.Join(dir, "ca.pem"),
			}},
			{Address: "::1", Port: 8080},
		}},
		{"Auth", cfg.Auth, Auth{
			APIKeys: map[string]APIKey{
				"team-a-2026q3": {
					Name:      "team-a-2026q3",
					Hash:      "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
					Principal: "team-a",
					Created:   utc("2026-06-01T00:00:00Z"),
					NotAfter:  utc("2026-12-01T00:00:00Z"),
					Models:    []string{"demo"},
					Limit:     "bronze",
				},
				"team-a-2026q4": {
					Name:      "team-a-2026q4",
					Hash:      "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
					Principal: "team-a",
					Created:   utc("2026-09-01T00:00:00Z"), // 08:00 at +08:00
					NotBefore: utc("2026-09-01T00:00:00Z"),
					NotAfter:  utc("2027-03-01T00:00:00.5Z"),
					Models:    []string{"demo", "chat"},
					AllowIPs:  []string{"10.1.0.0/16", "fd00::1"},
					Scopes:    []string{"model:call", "admin:read"},
					Limit:     "gold",
				},
				"ops": {Name: "ops", Hash: "sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"},
			},
			JWT: &JWT{
				HS256Secret: "enc:v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
				PublicKeys: []JWTPublicKey{
					{File: filepath.Join(dir, "jwt/es256.pem"), KID: "2026"},
					{File: "/etc/aiassist/jwt/ed25519.pem"},
				},
				JWKSFile: filepath.Join(dir, "jwt/jwks.json"),
				Issuer:   "https://id.example",
				Audience: "aiassist",
				Leeway:   5 * time.Minute,
			},
			Rotation: Rotation{WarnBefore: 36 * time.Hour, MaxAge: 30*24*time.Hour + 12*time.Hour},
		}},
		{"Access", cfg.Access, Access{
			AllowIPs:       []string{"10.0.0.0/8", "fd00::/8", "192.168.1.7"},
			TrustedProxies: []string{"10.0.0.2"},
		}},
		{"Secrets", cfg.Secrets, Secrets{KeyFile: filepath.Join(dir, "master.key")}},
		{"Abuse", cfg.Abuse, Abuse{
			AuthFailures: Threshold{Count: 5, Window: 30 * time.Second},
			Requests:     Threshold{Count: 1000, Window: time.Minute},
			BlockFor:     15 * time.Minute,
			BlockStatus:  403,
		}},
		{"Server", cfg.Server, Server{
			MaxBodyBytes:        16 << 20,
			RequestTimeout:      30 * time.Second,
			ShutdownGrace:       30 * time.Second,
			HeaderTimeout:       5 * time.Second,
			ReadTimeout:         60 * time.Second,
			IdleTimeout:         120 * time.Second,
			MaxConnections:      1000,
			MaxConnectionsPerIP: 50,
			AllowedHosts:        []string{"ai.example.com", "10.0.0.5", "fd00::5"},
			CORSOrigins:         []string{"https://app.example.com", "http://localhost:3000"},
		}},
		{"Metrics", cfg.Metrics, Metrics{Enabled: true, Path: "/metrics", RequireAuth: true}},
		{"Limits", cfg.Limits, Limits{
			Global: &Rate{RequestsPerSecond: 100, Burst: 200},
			// Bursts left out are one second's worth, rounded up, at
			// least 1; a class without a rate has none.
			PerIP: &Rate{RequestsPerSecond: 2.5, Burst: 3},
			Classes: map[string]LimitClass{
				"gold":   {RequestsPerSecond: 50, Burst: 100, TokensPerMinute: 200000, MaxConcurrent: 8},
				"bronze": {RequestsPerSecond: 0.2, Burst: 1},
				"tokens": {TokensPerMinute: 1000},
			},
		}},
		{"demo timeout", cfg.Models["demo"].RequestTimeout, time.Second},
		{"chat timeout", cfg.Models["chat"].RequestTimeout, 300 * time.Second},
		{"Warnings", cfg.Warnings(), []Issue(nil)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, c.got, c.want)
		}
	}
}

// TestSecureByDefault: without a credential, only loopback listeners
// serve, unless auth.open says so; open and credentials contradict.
func TestSecureByDefault(t *testing.T) {
	const key = `auth: api_keys: k: hash: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"`
	const jwt = `auth: jwt: public_keys: [{file: "k.pem"}]`
	const open = `auth: open: true`
	const refused = "is not loopback, and no credential is configured"
	f := func(address, auth, wantErr string) {
		t.Helper()
		src := "models: a: {kind: \"tensor\", path: \"a.onnx\"}\nlisteners: [{address: \"" + address + "\"}]\n" + auth
		_, err := Parse("s.cue", []byte(src))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("address %q, %q: %v", address, auth, err)
		case wantErr != "" && err == nil:
			t.Errorf("address %q, %q: no error, want %q", address, auth, wantErr)
		case wantErr != "" && !strings.Contains(err.Error(), wantErr):
			t.Errorf("address %q, %q:\n got %v\nwant ...%s...", address, auth, err, wantErr)
		}
	}
	for _, lo := range []string{"127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"} {
		f(lo, "", "")
		f(lo, key, "")
		f(lo, jwt, "")
		f(lo, open, "")
	}
	for _, far := range []string{"", "0.0.0.0", "::", "10.0.0.1", "fd00::1", "::ffff:10.0.0.1"} {
		f(far, "", `s.cue:2:23: listeners.0.address: listener "`)
		f(far, "", refused)
		f(far, key, "")
		f(far, jwt, "")
		f(far, open, "")
	}
	f("0.0.0.0", open+"\n"+key, "s.cue:3:13: auth.open: open: true contradicts the credentials configured")
	f("127.0.0.1", open+"\n"+jwt, "auth.open: open: true contradicts")
	f("127.0.0.1", "metrics: require_auth: true", "metrics.require_auth: require_auth: true needs a credential")
	f("127.0.0.1", "metrics: require_auth: true\n"+open, "metrics.require_auth: require_auth: true needs a credential")
	f("127.0.0.1", "metrics: require_auth: true\n"+key, "")
	f("127.0.0.1", "auth: open: false", "")
}

// TestWarnings checks what Config.Warnings says, and where.
func TestWarnings(t *testing.T) {
	const key = "auth: api_keys: k: hash: \"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n"
	const model = "models: a: {kind: \"tensor\", path: \"a.onnx\"}\n"
	const tls = `tls: {cert: "c.pem", key: "k.pem"}`
	f := func(src string, want ...string) {
		t.Helper()
		cfg, err := Parse("w.cue", []byte(model+src))
		if err != nil {
			t.Errorf("%s: %v", src, err)
			return
		}
		var got []string
		for _, w := range cfg.Warnings() {
			got = append(got, w.String())
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d warnings, want %d:\n%s", src, len(got), len(want), strings.Join(got, "\n"))
			return
		}
		for i := range want {
			if !strings.Contains(got[i], want[i]) {
				t.Errorf("%s: warning %d:\n got %s\nwant ...%s...", src, i, got[i], want[i])
			}
		}
	}
	// Loopback listeners, limited or not, are not warned of.
	f("")
	f(key)
	f("listeners: [{address: \"::1\"}]\n" + key)
	f("listeners: [{address: \"0.0.0.0\", "+tls+"}]\n"+key,
		`w.cue:2:23: listeners.0.address: listener "0.0.0.0:8080" is not loopback and limits.global is unset, so nothing bounds the requests it takes: add limits: global: {requests_per_second: 100, burst: 200}, or a rate of your own`)
	f("listeners: [{address: \"0.0.0.0\", " + tls + "}]\n" + key + "limits: global: requests_per_second: 100\n")
	f("listeners: [{address: \"0.0.0.0\"}]\n"+key+"limits: global: requests_per_second: 100\n",
		`w.cue:2:23: listeners.0.address: listener "0.0.0.0:8080" is not loopback and serves plain HTTP, so API keys and tokens cross the network readable: add tls`)
	f("listeners: [{port: 1}, {address: \"10.0.0.1\", port: 2}]\nauth: open: true\n",
		"w.cue:2:34: listeners.1.address: listener \"10.0.0.1:2\" is not loopback and limits.global is unset",
		"w.cue:3:13: auth.open: open: true serves inference without a credential on every listener",
	)
	f("auth: open: true\n", "w.cue:2:13: auth.open: open: true serves inference without a credential")
	f("limits: global: {requests_per_second: 10, burst: 5}\nlimits: per_ip: {requests_per_second: 10, burst: 10}\nlimits: classes: c: {requests_per_second: 1.5, burst: 1}\n",
		"w.cue:2:50: limits.global.burst: burst 5 is below requests_per_second 10, so requests that arrive together are refused before the rate is reached; leave burst out (one second's worth) or raise it",
		"w.cue:4:55: limits.classes.c.burst: burst 1 is below requests_per_second 1.5",
	)
	f("abuse: {block_for: \"1m\", auth_failures: count: 0}\n",
		"w.cue:2:20: abuse.block_for: block_for has no effect: auth_failures.count and requests.count are both 0")
	f("abuse: {block_for: \"1m\"}\n")
	f("auth: jwt: hs256_secret: \"0123456789abcdef0123456789abcdef\"\n",
		"w.cue:2:26: auth.jwt.hs256_secret: the secret is written in plain text, so whoever reads this file can make tokens: write it encrypted, as aiassistd encrypt prints it (enc:v1:...)")
	f("auth: jwt: hs256_secret: \"enc:v1:q83vEjRWeJA=\"\n")

	// Warnings are the caller's to change.
	cfg, err := Parse("w.cue", []byte(model+"auth: open: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Warnings()[0].Msg = "changed"
	if cfg.Warnings()[0].Msg == "changed" {
		t.Error("Warnings returns the Config's own slice")
	}
}

// TestSameSettingsWarnings: warnings carry positions, which a comment
// moves, and the settings are still the same.
func TestSameSettingsWarnings(t *testing.T) {
	const src = "models: a: {kind: \"tensor\", path: \"/a.onnx\"}\nauth: open: true\n"
	a, err := Parse("c.cue", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("c.cue", []byte("// moved\n"+src))
	if err != nil {
		t.Fatal(err)
	}
	if a.Warnings()[0] == b.Warnings()[0] {
		t.Fatal("the warning did not move; the test shows nothing")
	}
	if !a.SameSettings(b) {
		t.Error("a comment changes the settings of a config with warnings")
	}
}

// TestSecretsNotPrinted: no error about a secret quotes it.
func TestSecretsNotPrinted(t *testing.T) {
	src, err := os.ReadFile("testdata/secret-conflict.bad.cue")
	if err != nil {
		t.Fatal(err)
	}
	f := func(src string, secrets ...string) {
		t.Helper()
		_, err := Parse("s.cue", []byte(src))
		if err == nil {
			t.Fatalf("%s: no error", src)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("the error prints the secret %q:\n%v", s, err)
			}
		}
	}
	f(string(src), "first-secret-0123456789abcdef0123456789", "second-secret-0123456789abcdef012345678", "first-secret", "second-secret")
	const model = "models: a: {kind: \"tensor\", path: \"a.onnx\"}\n"
	f(model+"auth: jwt: hs256_secret: \"tiny\"\n", "tiny")
	f(model+"auth: jwt: hs256_secret: \"enc:v1:%%%secret%%%\"\n", "secret%%%")
	f(model+"auth: jwt: hs256_secret: \"s3cr3t\"\nauth: jwt: hs256_secret: \"enc:v1:AAAA\"\n", "s3cr3t", "AAAA")
	f(model+"auth: jwt: hs256_secret: \"s3cr3t\" & =~\"^x\"\n", "s3cr3t")
}

func TestJWTSecret(t *testing.T) {
	f := func(secret, wantErr string) {
		t.Helper()
		src := "models: a: {kind: \"tensor\", path: \"a.onnx\"}\nauth: jwt: hs256_secret: \"" + secret + "\"\n"
		_, err := Parse("j.cue", []byte(src))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("secret %q: %v", secret, err)
		case wantErr != "" && err == nil:
			t.Errorf("secret %q: no error, want %q", secret, wantErr)
		case wantErr != "" && !strings.Contains(err.Error(), wantErr):
			t.Errorf("secret %q:\n got %v\nwant ...%s...", secret, err, wantErr)
		}
	}
	const short = "a plain secret is shorter than 32 bytes"
	const notBase64 = `the value after "enc:v1:" is not base64`
	f(strings.Repeat("x", 32), "")
	f(strings.Repeat("x", 31), short)
	f("enc:v1", short) // not the prefix: a plain secret
	f("ENC:V1:"+strings.Repeat("A", 24), short)
	f("enc:v1:q83vEjRWeJA=", "")
	f("enc:v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==", "")
	f("enc:v1:", notBase64)
	f("enc:v1:q83vEjRWeJA", notBase64)   // padding left out
	f("enc:v1:q83vEjRW-_A=", notBase64)  // URL alphabet
	f("enc:v1:q83v EjRWeJA=", notBase64) // cut by a space
}

// TestAllowLists covers the entries of access.allow_ips, which
// access.trusted_proxies and an API key's allow_ips share.
func TestAllowLists(t *testing.T) {
	f := func(entry, wantErr string) {
		t.Helper()
		for _, field := range []string{"access: allow_ips", "access: trusted_proxies", `auth: open: false, auth: api_keys: k: {hash: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", allow_ips`} {
			src := "models: a: {kind: \"tensor\", path: \"a.onnx\"}\n" + strings.ReplaceAll(field, ", auth:", "\nauth:") + ": [\"" + entry + "\"]"
			if strings.Contains(field, "{") {
				src += "}"
			}
			_, err := Parse("a.cue", []byte(src))
			switch {
			case wantErr == "" && err != nil:
				t.Errorf("%s %q: %v", field, entry, err)
			case wantErr != "" && err == nil:
				t.Errorf("%s %q: no error, want %q", field, entry, wantErr)
			case wantErr != "" && !strings.Contains(err.Error(), wantErr):
				t.Errorf("%s %q:\n got %v\nwant ...%s...", field, entry, err, wantErr)
			}
		}
	}
	for _, ok := range []string{"10.0.0.0/8", "10.1.2.3", "10.1.2.3/32", "0.0.0.0/0", "::/0", "fd00::/8", "fd00::1", "2001:db8::/32", "::ffff:10.0.0.0/104", "::1"} {
		f(ok, "")
	}
	f("10.1.2.3/8", `"10.1.2.3/8" has address bits set past its /8 prefix; write the network as "10.0.0.0/8"`)
	f("fd00::1/8", `write the network as "fd00::/8"`)
	f("10.0.0.0/33", `"10.0.0.0/33" is not a network`)
	f("10.0.0.0/", "is not a network")
	f("/8", "is not a network")
	f("10.0.0", `"10.0.0" is not an address or network`)
	f("localhost", "is not an address or network")
	f("", `"" is not an address or network`)
	f(" 10.0.0.1", "is not an address or network")
	f("fe80::1%eth0", `has a zone, which client addresses are not compared by; write it as "fe80::1"`)
	f("fe80::%eth0/64", "is not a network")
}

func TestHostsAndOrigins(t *testing.T) {
	f := func(field, entry, wantErr string) {
		t.Helper()
		src := "models: a: {kind: \"tensor\", path: \"a.onnx\"}\nserver: " + field + ": [\"" + entry + "\"]"
		_, err := Parse("h.cue", []byte(src))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s %q: %v", field, entry, err)
		case wantErr != "" && err == nil:
			t.Errorf("%s %q: no error, want %q", field, entry, wantErr)
		case wantErr != "" && !strings.Contains(err.Error(), wantErr):
			t.Errorf("%s %q:\n got %v\nwant ...%s...", field, entry, err, wantErr)
		}
	}
	host := func(entry, wantErr string) { t.Helper(); f("allowed_hosts", entry, wantErr) }
	for _, ok := range []string{"ai.example.com", "AI.Example.COM", "localhost", "ai", "my_host.internal", "10.0.0.5", "fd00::5", "xn--bcher-kva.example"} {
		host(ok, "")
	}
	host("ai.example.com:8443", `has a port: write the host alone, as "ai.example.com"`)
	host("[fd00::5]:8443", `has a port: write the host alone, as "fd00::5"`)
	host("[fd00::5]", `is in brackets: write the IPv6 address alone, as "fd00::5"`)
	host("https://ai.example.com", "is not a host name or IP address")
	host("ai.example.com/", "is not a host name or IP address")
	host("-ai.example.com", "is not a host name or IP address")
	host("ai..example.com", "is not a host name or IP address")
	host("ai.example.com.", "is not a host name or IP address")
	host("*.example.com", "is not a host name or IP address")
	host("", "is not a host name or IP address")
	host(strings.Repeat("a.", 127)+"a", "is not a host name or IP address")

	origin := func(entry, wantErr string) { t.Helper(); f("cors_origins", entry, wantErr) }
	for _, ok := range []string{"*", "https://app.example.com", "http://localhost:3000", "https://[fd00::1]:8443", "http://10.0.0.5"} {
		origin(ok, "")
	}
	origin("https://app.example.com/", `ends in "/", which a browser's Origin never has; write it as "https://app.example.com"`)
	origin("https://App.example.com", `has capitals, which a browser's Origin never has; write it as "https://app.example.com"`)
	origin("app.example.com", "is not an origin")
	origin("ftp://app.example.com", "is not an origin")
	origin("https://", "is not an origin")
	origin("null", "is not an origin")
	origin("https://app.example.com/x", "is more than an origin")
	origin("https://app.example.com?x", "is more than an origin")
	origin("https://app.example.com#x", "is more than an origin")
	origin("https://user@app.example.com", "is more than an origin")
	origin("https://app.example.com:99999999999", "is not an origin")
	origin("https://app.example.com:", "is not an origin")
	origin("https://app.example.com:0", "is not an origin")
	origin("https://app.example.com:8443", "")
	origin("", "is not an origin")
}

func TestLimits(t *testing.T) {
	f := func(src, wantErr string) {
		t.Helper()
		_, err := Parse("l.cue", []byte("models: a: {kind: \"tensor\", path: \"a.onnx\"}\n"+src))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s: %v", src, err)
		case wantErr != "" && err == nil:
			t.Errorf("%s: no error, want %q", src, wantErr)
		case wantErr != "" && !strings.Contains(err.Error(), wantErr):
			t.Errorf("%s:\n got %v\nwant ...%s...", src, err, wantErr)
		}
	}
	f("limits: global: requests_per_second: 0.001", "")
	f("limits: global: requests_per_second: 1000000", "")
	f("limits: global: requests_per_second: 1000001", "out of bound <=1000000")
	f("limits: global: requests_per_second: -1", "out of bound >0")
	f("limits: global: {requests_per_second: 1, burst: 1.5}", "limits.global.burst: invalid value 1.5 (must be int)")
	f("limits: global: {burst: 10}", "limits.global.requests_per_second: field is required but not present")
	f("limits: global: {requests_per_second: \"100\"}", `limits.global.requests_per_second: invalid value "100" (must be number)`)
	f("limits: classes: gold: {}", "")
	f("limits: classes: gold: {burst: 2}", "limits.classes.gold.burst: burst needs requests_per_second")
	f("limits: classes: \""+strings.Repeat("a", 64)+"\": {}", "")
	f("limits: classes: \""+strings.Repeat("a", 65)+"\": {}", "a limit class name is 1 to 64 letters")
	f("limits: classes: gold: {rps: 2}", "limits.classes.gold.rps: field not allowed; known fields here: requests_per_second, burst, tokens_per_minute, max_concurrent")

	// The default burst: one second's worth, rounded up, at least 1.
	for rps, want := range map[string]int{"0.001": 1, "0.5": 1, "1": 1, "1.01": 2, "2.5": 3, "100": 100, "1000000": 1000000} {
		cfg, err := Parse("l.cue", []byte("models: a: {kind: \"tensor\", path: \"a.onnx\"}\nlimits: global: requests_per_second: "+rps+"\nlimits: classes: c: requests_per_second: "+rps))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Limits.Global.Burst; got != want {
			t.Errorf("global rate %s: burst %d, want %d", rps, got, want)
		}
		if got := cfg.Limits.Classes["c"].Burst; got != want {
			t.Errorf("class rate %s: burst %d, want %d", rps, got, want)
		}
	}
}

func TestGatewayFields(t *testing.T) {
	f := func(src, wantErr string) {
		t.Helper()
		_, err := Parse("g.cue", []byte("models: a: {kind: \"tensor\", path: \"a.onnx\"}\n"+src))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s: %v", src, err)
		case wantErr != "" && err == nil:
			t.Errorf("%s: no error, want %q", src, wantErr)
		case wantErr != "" && !strings.Contains(err.Error(), wantErr):
			t.Errorf("%s:\n got %v\nwant ...%s...", src, err, wantErr)
		}
	}
	const hash = `hash: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"`
	f(`abuse: block_status: 403`, "")
	f(`abuse: block_status: 401`, "abuse.block_status: invalid value 401 (must be one of 403, 429)")
	f(`abuse: requests: window: "0"`, `abuse.requests.window: invalid duration "0": must be above zero`)
	f(`abuse: block_for: "1d"`, "")
	f(`abuse: auth_failures: count: -1`, "out of bound >=0")
	f(`auth: rotation: {warn_before: "0", max_age: "0"}`, "")
	f(`auth: rotation: warn_before: "10 days"`, `auth.rotation.warn_before: invalid duration "10 days": write it like`)
	f(`auth: jwt: {hs256_secret: "`+strings.Repeat("s", 32)+`", leeway: "0"}`, "")
	f(`auth: jwt: {hs256_secret: "`+strings.Repeat("s", 32)+`", leeway: "301s"}`, `auth.jwt.leeway: invalid duration "301s": must be at most "5m"`)
	f(`auth: jwt: {jwks_file: "jwks.json"}`, "")
	f(`auth: jwt: {public_keys: []}`, "auth.jwt: jwt has no key to verify tokens with")
	f(`auth: jwt: {public_keys: [{kid: "a"}]}`, "auth.jwt.public_keys.0.file: field is required but not present")
	f(`auth: jwt: {public_keys: [{file: "a.pem", kid: "a"}, {file: "b.pem", kid: "b"}, {file: "c.pem"}, {file: "d.pem"}]}`, "")
	f(`auth: jwt: {public_keys: [{file: "a.pem"}], alg: "none"}`, "auth.jwt.alg: field not allowed; known fields here: hs256_secret, public_keys, jwks_file, issuer, audience, leeway")
	f(`auth: api_keys: k: {`+hash+`, principal: "alice@example.com", scopes: ["model:call"]}`, "")
	f(`auth: api_keys: k: {`+hash+`, not_before: "2027-01-01T00:00:00Z", not_after: "2026-01-01T00:00:00Z"}`, "auth.api_keys.k.not_after: not_after must be after not_before (2027-01-01T00:00:00Z)")
	f(`auth: api_keys: k: {`+hash+`, not_before: "2027-01-01T08:00:00+08:00", not_after: "2027-01-01T00:00:01Z"}`, "")
	f(`auth: api_keys: k: {`+hash+`, not_after: "2027-01-01T00:00:00"}`, `invalid time "2027-01-01T00:00:00": write it in RFC 3339`)
	f(`auth: api_keys: k: {`+hash+`, limit: "gold"}`, `auth.api_keys.k.limit: limit class "gold" is not configured; add it under limits.classes, or remove limit`)
	f(`auth: api_keys: k: {`+hash+`, models: ["b"]}`, `auth.api_keys.k.models.0: model "b" is not configured; add it under models, or name one of: a`)
	f(`auth: api_keys: "`+strings.Repeat("k", 64)+`": {`+hash+`}`, "")
	f(`auth: api_keys: "`+strings.Repeat("k", 65)+`": {`+hash+`}`, "an API key name is 1 to 64 letters")
	f(`auth: api_keys: "-k": {`+hash+`}`, "an API key name is 1 to 64 letters")
	f(`auth: api_keys: k: {hash: "sha256:9f86"}`, `auth.api_keys.k.hash: invalid hash "sha256:9f86"`)
	f(`auth: api_keys: k: {}`, "auth.api_keys.k.hash: field is required but not present")
	f(`listeners: [{tls: {key: "k"}}]`, "listeners.0.tls.cert: field is required but not present")
	f(`listeners: [{tls: {cert: "c", key: "k", min_version: "1.0"}}]`, `listeners.0.tls.min_version: invalid value "1.0" (must be one of "1.2", "1.3")`)
	f(`listeners: [{tls: {cert: "c", key: "k", min_version: 1.2}}]`, `listeners.0.tls.min_version: invalid value 1.2`)
	f(`listeners: [{tls: {cert: "c", key: "k", client_ca: ""}}]`, `listeners.0.tls.client_ca: invalid value "" (out of bound !="")`)
	f(`listeners: [{port: 1}, {port: 2}, {port: 70000}]`, "g.cue:2:42: listeners.2.port: invalid value 70000 (out of bound <65536)")
	f(`listeners: [{port: 70000}, {port: 2}]`, "g.cue:2:20: listeners.0.port: invalid value 70000 (out of bound <65536)")
	f(`server: {max_connections: -1}`, "server.max_connections: invalid value -1 (out of bound >=0)")
	f(`server: {max_connections_per_ip: 10, max_connections: 5}`, "")
	f(`server: header_timeout: "0s"`, `server.header_timeout: invalid duration "0s": must be above zero`)
	f(`secrets: key_file: ""`, `secrets.key_file: invalid value "" (out of bound !="")`)
	f(`models: a: request_timeout: "1s"`, "")
	f(`models: a: request_timeout: "999ms"`, `models.a.request_timeout: invalid duration "999ms": must be from "1s" to "5m"`)
	f(`models: a: request_timeout: "5m0.001s"`, `must be from "1s" to "5m"`)
}

// TestPatterns keeps the patterns whose messages cuemsg.go rewrites in
// step with config.cue.
func TestPatterns(t *testing.T) {
	for _, p := range patterns {
		if !strings.Contains(string(schemaSrc), p.start) {
			t.Errorf("config.cue has no pattern starting %s; update patterns in cuemsg.go", p.start)
		}
	}
}

// TestSecureExample keeps examples/secure.cue what the README says it is:
// a LAN deployment that uses every feature of the gateway and the limits,
// loads without a warning, and marks every secret as a demo one.
func TestSecureExample(t *testing.T) {
	const file = "../examples/secure.cue"
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range cfg.Warnings() {
		t.Errorf("warning: %s", w)
	}
	a := cfg.Auth
	principals := map[string][]APIKey{}
	for _, k := range a.APIKeys {
		principals[k.Principal] = append(principals[k.Principal], k)
	}
	var rotated bool
	for _, keys := range principals {
		// Two keys of one principal, valid at once, that differ in
		// models, limit and allow list.
		for i, k := range keys {
			for _, o := range keys[i+1:] {
				overlap := k.NotBefore.Before(o.NotAfter) && o.NotBefore.Before(k.NotAfter)
				if overlap && !reflect.DeepEqual(k.Models, o.Models) && k.Limit != o.Limit && !reflect.DeepEqual(k.AllowIPs, o.AllowIPs) {
					rotated = true
				}
			}
		}
	}
	var tls bool
	for _, l := range cfg.Listeners {
		if l.TLS != nil && l.Address == "0.0.0.0" && l.Port == 8443 &&
			strings.HasPrefix(l.TLS.Cert, "/etc/aiassist/tls/") && strings.HasPrefix(l.TLS.Key, "/etc/aiassist/tls/") {
			tls = true
		}
	}
	var modelTimeout bool
	for _, m := range cfg.Models {
		modelTimeout = modelTimeout || m.RequestTimeout > 0
	}
	var created, notBefore, scopes bool
	for _, k := range a.APIKeys {
		created = created || !k.Created.IsZero()
		notBefore = notBefore || !k.NotBefore.IsZero()
		scopes = scopes || len(k.Scopes) > 0
	}
	for _, c := range []struct {
		feature string
		used    bool
	}{
		{"a TLS listener on 0.0.0.0:8443 with its files under /etc/aiassist/tls", tls},
		{"two overlapping keys of one principal with other models, limit and allow_ips", rotated},
		{"keys with created, not_before and scopes", created && notBefore && scopes},
		{"jwt with an enc:v1: hs256_secret", a.JWT != nil && strings.HasPrefix(a.JWT.HS256Secret, encPrefix)},
		{"jwt with a public key file", a.JWT != nil && len(a.JWT.PublicKeys) > 0},
		{"jwt issuer and audience", a.JWT != nil && a.JWT.Issuer != "" && a.JWT.Audience != ""},
		{"rotation", a.Rotation.WarnBefore > 0 && a.Rotation.MaxAge > 0},
		{"access.allow_ips", len(cfg.Access.AllowIPs) > 0},
		{"a trusted proxy", len(cfg.Access.TrustedProxies) > 0},
		{"secrets.key_file", cfg.Pos("secrets.key_file") != ""},
		{"abuse detection that blocks", cfg.Abuse.BlockFor > 0 && cfg.Abuse.AuthFailures.Count > 0 && cfg.Abuse.Requests.Count > 0},
		{"the seed's global limit", reflect.DeepEqual(cfg.Limits.Global, &Rate{RequestsPerSecond: 100, Burst: 200})},
		{"limits.per_ip", cfg.Limits.PerIP != nil},
		{"two limit classes", len(cfg.Limits.Classes) >= 2},
		{"metrics.require_auth", cfg.Metrics.RequireAuth},
		{"server.allowed_hosts", len(cfg.Server.AllowedHosts) > 0},
		{"server.cors_origins", len(cfg.Server.CORSOrigins) > 0},
		{"connection limits", cfg.Server.MaxConnections > 0 && cfg.Server.MaxConnectionsPerIP > 0},
		{"server.header_timeout", cfg.Pos("server.header_timeout") != ""},
		{"a model's request_timeout", modelTimeout},
	} {
		if !c.used {
			t.Errorf("%s does not use %s", file, c.feature)
		}
	}

	// Every line with a secret, or the hash or key it stands for, says
	// it is a demo one.
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	secret := regexp.MustCompile(`sha256:[0-9a-f]|enc:v1:[A-Za-z0-9+/]|aia_[A-Za-z0-9]`)
	for i, line := range strings.Split(string(src), "\n") {
		if secret.MatchString(line) && !strings.Contains(line, "DEMO ONLY") {
			t.Errorf("%s:%d: a secret not marked DEMO ONLY: %s", file, i+1, strings.TrimSpace(line))
		}
	}
}
