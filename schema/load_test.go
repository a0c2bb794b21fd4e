package schema

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBad loads every testdata/*.bad.cue and checks that each expected
// message is reported, led by its file:line:col, and nothing else.
func TestBad(t *testing.T) {
	want := map[string][]string{
		"unknown-field.bad.cue": {
			"unknown-field.bad.cue:3:2: logging.colour: field not allowed; known fields here: level, format, access_log, log_prompts",
		},
		"port-out-of-bound.bad.cue": {
			"port-out-of-bound.bad.cue:3:11: listeners.0.port: invalid value 70000 (out of bound <65536)",
		},
		"missing-path.bad.cue": {
			"missing-path.bad.cue:1:9: models.demo.path: field is required but not present",
		},
		"bad-kind.bad.cue": {
			`bad-kind.bad.cue:2:8: models.demo.kind: invalid value "llm" (must be one of "causal-lm", "embedding", "tensor")`,
		},
		"bad-duration.bad.cue": {
			`bad-duration.bad.cue:2:19: server.request_timeout: invalid duration "30 seconds": write it like "250ms", "1.5s", "1h30m" or "10d"`,
		},
		"duration-overflow.bad.cue": {
			`duration-overflow.bad.cue:2:18: server.shutdown_grace: invalid duration "9999999999h"`,
		},
		"duration-bounds.bad.cue": {
			`duration-bounds.bad.cue:1:26: server.request_timeout: invalid duration "0s": must be above zero`,
			`duration-bounds.bad.cue:5:29: models.demo.batching.max_queue_delay: invalid duration "11s": must be at most "10s"`,
		},
		"default-model-unknown.bad.cue": {
			`default-model-unknown.bad.cue:5:16: default_model: model "dmeo" is not configured; add it under models or change default_model to one of: other`,
		},
		"default-model-tensor.bad.cue": {
			`default-model-tensor.bad.cue:5:16: default_model: model "demo" is a "tensor" model; default_model picks the model of text generation requests (/v1), so it must name a "causal-lm" model: change it to one of: chat`,
		},
		// A field of the other kind of model, reported once with the
		// fields this kind has, and not again for the fields inside it.
		"lm-batching.bad.cue": {
			`lm-batching.bad.cue:4:2: models.chat.batching: field not allowed; known fields of a "causal-lm" model: kind, path, instances, intra_op_threads, request_timeout, scaling, quantization, max_sequences, prefill_chunk, max_queue, context_length, truncate, chat_template`,
			"lm-batching.bad.cue:5:17: models.chat.max_sequences: invalid value 0 (out of bound >=1)",
		},
		"tensor-lm-fields.bad.cue": {
			`tensor-lm-fields.bad.cue:4:2: models.demo.max_sequences: field not allowed; known fields of a "tensor" model: kind, path, instances, intra_op_threads, request_timeout, scaling, quantization, batching`,
			`tensor-lm-fields.bad.cue:5:2: models.demo.truncate: field not allowed; known fields of a "tensor" model: kind, path, instances, intra_op_threads, request_timeout, scaling, quantization, batching`,
		},
		"lm-truncate.bad.cue": {
			`lm-truncate.bad.cue:4:18: models.chat.truncate: invalid value "right" (must be one of "error", "left")`,
			"lm-truncate.bad.cue:5:18: models.chat.context_length: invalid value 1 (out of bound >=2)",
			`lm-truncate.bad.cue:6:18: models.chat.chat_template: invalid value "" (out of bound !="")`,
		},
		"duplicate-listener.bad.cue": {
			`duplicate-listener.bad.cue:3:2: listeners.1: duplicate listener "127.0.0.1:8080": listeners.0 already listens there`,
		},
		"overlapping-listener.bad.cue": {
			`overlapping-listener.bad.cue:3:2: listeners.1: listener "0.0.0.0:8080" overlaps listeners.0 ("127.0.0.1:8080") on the same port`,
		},
		"no-listeners.bad.cue": {
			"no-listeners.bad.cue:1:12: listeners: at least one listener is required",
		},
		"bad-address.bad.cue": {
			`bad-address.bad.cue:1:23: listeners.0.address: invalid value "my-host" (does not satisfy net.IP)`,
		},
		"syntax-error.bad.cue": {
			"syntax-error.bad.cue:3:15: expected '}', found 'EOF'",
		},
		"bad-model-name.bad.cue": {
			`bad-model-name.bad.cue:1:9: models."demo model": field not allowed; a model name is 1 to 64 letters`,
		},
		"bad-level.bad.cue": {
			`bad-level.bad.cue:1:17: logging.level: invalid value "trace" (must be one of "debug", "error", "info", "warn")`,
		},
		// A config must declare a model: an editor that truncates the
		// file before writing it, or a save cut short, must not make a
		// reload drop every model and move the listener to its default.
		"empty.bad.cue": {
			"empty.bad.cue:1:1: models: the config declares no model; add one",
		},
		"comments-only.bad.cue": {
			"comments-only.bad.cue:1:1: models: the config declares no model; add one",
		},
		"models-empty.bad.cue": {
			"models-empty.bad.cue:1:9: models: the config declares no model; add one",
		},
		"truncated-clean.bad.cue": {
			"truncated-clean.bad.cue:1:1: models: the config declares no model; add one",
		},
		"truncated.bad.cue": {
			"truncated.bad.cue:6:9: string literal not terminated",
		},
		"metrics-path-route.bad.cue": {
			`metrics-path-route.bad.cue:1:16: metrics.path: "/v1/generate" is under /v1/, where the API serves its routes; pick a path outside /v1 and /v2, such as "/metrics"`,
		},
		"bad-metrics-path.bad.cue": {
			`bad-metrics-path.bad.cue:1:16: metrics.path: invalid value "metrics" (out of bound =~"^/")`,
		},
		"bad-admin-socket.bad.cue": {
			`bad-admin-socket.bad.cue:1:24: reload.admin_socket: invalid value "admin.sock" (out of bound =~"^/")`,
			`bad-admin-socket.bad.cue:1:45: reload.watch: invalid value "yes" (must be bool)`,
		},
		"model-not-struct.bad.cue": {
			"model-not-struct.bad.cue:1:15: models.demo: invalid value 3 (must be struct)",
		},
		// Secure by default: a listener others can reach needs a
		// credential, or auth.open on purpose.
		"exposed.bad.cue": {
			`exposed.bad.cue:4:12: listeners.1.address: listener "0.0.0.0:8081" is not loopback, and no credential is configured, so anyone who reaches it could call every model: add an API key (aiassistd keygen -name NAME prints one and the lines to append to this file), or auth.jwt; or set auth: open: true to serve without credentials on purpose; or listen on 127.0.0.1`,
			`exposed.bad.cue:5:12: listeners.2.address: listener ":8082" is not loopback, and no credential is configured`,
		},
		"open-contradiction.bad.cue": {
			"open-contradiction.bad.cue:4:8: auth.open: open: true contradicts the credentials configured: with any API key or jwt every inference route needs a credential; remove open: true, or remove auth.api_keys and auth.jwt to serve without credentials",
		},
		"require-auth.bad.cue": {
			"require-auth.bad.cue:2:24: metrics.require_auth: require_auth: true needs a credential to accept, and none is configured: add an API key (aiassistd keygen) or auth.jwt, or remove require_auth",
		},
		"api-key-refs.bad.cue": {
			`api-key-refs.bad.cue:5:24: auth.api_keys."team-a".models.1: model "qwen" is not configured; add it under models, or name one of: demo`,
			`api-key-refs.bad.cue:6:15: auth.api_keys."team-a".limit: limit class "platinum" is not configured; add it under limits.classes, or name one of: gold`,
			`api-key-refs.bad.cue:8:15: auth.api_keys."team-a".not_after: not_after must be after not_before (2027-03-01T00:00:00Z), or the key never works; move one of them`,
			`api-key-refs.bad.cue:9:16: auth.api_keys."team-a".allow_ips.0: "10.1.2.3/16" has address bits set past its /16 prefix; write the network as "10.1.0.0/16"`,
			`api-key-refs.bad.cue:9:31: auth.api_keys."team-a".allow_ips.1: "10.1.2.300" is not an address or network: write an address ("10.1.2.3", "fd00::1") or a CIDR network ("10.0.0.0/8", "fd00::/8")`,
			`api-key-refs.bad.cue:9:45: auth.api_keys."team-a".allow_ips.2: "fe80::1%eth0" has a zone, which client addresses are not compared by; write it as "fe80::1"`,
			`api-key-refs.bad.cue:12:18: auth.api_keys."team-b".hash: auth.api_keys."team-a" has the same hash: each key must be its own; make another with aiassistd keygen`,
			`api-key-refs.bad.cue:13:102: auth.api_keys."team-c".models: an empty list of models allows every model, as leaving models out does; name the models the key may call, or leave models out`,
			`api-key-refs.bad.cue:13:114: auth.api_keys."team-c".scopes: an empty list of scopes grants "model:call", as leaving scopes out does; name the scopes, or leave scopes out`,
		},
		"api-key-fields.bad.cue": {
			`api-key-fields.bad.cue:3:2: auth.api_keys."team a": field not allowed; an API key name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
			`api-key-fields.bad.cue:5:14: auth.api_keys.ok.hash: invalid hash "sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08": write "sha256:" and the 64 lowercase hex digits of the key's SHA-256, as aiassistd keygen prints it`,
			`api-key-fields.bad.cue:6:14: auth.api_keys.ok.not_after: invalid time "2027-03-01": write it in RFC 3339, such as "2027-03-01T00:00:00Z"`,
			`api-key-fields.bad.cue:7:15: auth.api_keys.ok.scopes.0: invalid scope "model call": write it in printable ASCII without spaces, such as "model:call"`,
			`api-key-fields.bad.cue:8:14: auth.api_keys.ok.principal: invalid principal "alice smith": write 1 to 64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit`,
			"api-key-fields.bad.cue:10:2: auth.api_keys.plain.hash: field is required but not present",
			"api-key-fields.bad.cue:10:10: auth.api_keys.plain.key: field not allowed; known fields here: hash, principal, created, not_before, not_after, models, allow_ips, scopes, limit",
		},
		"jwt-secret.bad.cue": {
			"jwt-secret.bad.cue:4:16: auth.jwt.hs256_secret: a plain secret is shorter than 32 bytes, too short for HS256: make one with `openssl rand -base64 48`, and write it encrypted as aiassistd encrypt prints it (enc:v1:...)",
			`jwt-secret.bad.cue:7:29: auth.jwt.public_keys.1.kid: kid "2026" is public_keys.0's as well, so a token naming it could not pick its key; give each key its own kid`,
			`jwt-secret.bad.cue:9:10: auth.jwt.leeway: invalid duration "1h": must be at most "5m"`,
		},
		"jwt-enc.bad.cue": {
			`jwt-enc.bad.cue:3:26: auth.jwt.hs256_secret: the value after "enc:v1:" is not base64: write the whole value that aiassistd encrypt prints`,
		},
		"jwt-no-key.bad.cue": {
			"jwt-no-key.bad.cue:2:12: auth.jwt: jwt has no key to verify tokens with: set hs256_secret, public_keys or jwks_file, or remove jwt",
		},
		// The secrets themselves are checked not to be printed in
		// TestSecretsNotPrinted.
		"secret-conflict.bad.cue": {
			"secret-conflict.bad.cue:2:26: auth.jwt.hs256_secret: conflicting values (secret, not shown) and (secret, not shown)",
		},
		// The second listener's error is not hidden by the one-element
		// default of listeners.
		"tls.bad.cue": {
			"tls.bad.cue:3:37: listeners.0.tls.key: field is required but not present",
			`tls.bad.cue:4:98: listeners.1.tls.min_version: invalid value "1.1" (must be one of "1.2", "1.3")`,
		},
		"access.bad.cue": {
			`access.bad.cue:3:34: access.allow_ips.1: "10.0.0.1/8" has address bits set past its /8 prefix; write the network as "10.0.0.0/8"`,
			`access.bad.cue:3:48: access.allow_ips.2: "192.168.1.0/33" is not a network: write an address`,
			`access.bad.cue:3:66: access.allow_ips.3: "lan" is not an address or network: write an address`,
			`access.bad.cue:4:33: access.trusted_proxies.1: "::1%lo" has a zone, which client addresses are not compared by; write it as "::1"`,
			`access.bad.cue:7:36: server.allowed_hosts.1: "ai.example.com:8443" has a port: write the host alone, as "ai.example.com" (a Host is accepted on every port)`,
			`access.bad.cue:7:59: server.allowed_hosts.2: "[fd00::1]" is in brackets: write the IPv6 address alone, as "fd00::1"`,
			`access.bad.cue:7:72: server.allowed_hosts.3: "https://ai.example.com/" is not a host name or IP address: write one alone, such as "ai.example.com" or "10.1.2.3" (no scheme, port or path)`,
			`access.bad.cue:8:23: server.cors_origins.1: "https://app.example.com/" ends in "/", which a browser's Origin never has; write it as "https://app.example.com"`,
			`access.bad.cue:8:51: server.cors_origins.2: "https://App.example.com" has capitals, which a browser's Origin never has; write it as "https://app.example.com"`,
			`access.bad.cue:8:78: server.cors_origins.3: "app.example.com" is not an origin: write an origin as a browser sends it: scheme, host and any port, such as "https://app.example.com" or "http://localhost:3000"`,
			`access.bad.cue:8:97: server.cors_origins.4: "https://app.example.com/ui" is more than an origin: write an origin as a browser sends it`,
		},
		"limits.bad.cue": {
			"limits.bad.cue:3:32: limits.global.requests_per_second: invalid value 0 (out of bound >0)",
			"limits.bad.cue:3:42: limits.global.burst: invalid value 0 (out of bound >=1)",
			"limits.bad.cue:4:2: limits.per_ip.requests_per_second: field is required but not present",
			"limits.bad.cue:6:29: limits.classes.gold.tokens_per_minute: invalid value 0 (out of bound >=1)",
			"limits.bad.cue:6:48: limits.classes.gold.max_concurrent: invalid value 0 (out of bound >=1)",
			`limits.bad.cue:7:3: limits.classes."no good": field not allowed; a limit class name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
		},
		"limit-class.bad.cue": {
			"limit-class.bad.cue:2:33: limits.classes.bronze.burst: burst needs requests_per_second, the rate its bucket refills at: add requests_per_second to the class, or remove burst",
		},
		"model-timeout.bad.cue": {
			`model-timeout.bad.cue:3:62: models.quick.request_timeout: invalid duration "500ms": must be from "1s" to "5m"`,
			`model-timeout.bad.cue:4:65: models.slow.request_timeout: invalid duration "301s": must be from "1s" to "5m"`,
		},
		"abuse.bad.cue": {
			`abuse.bad.cue:3:31: abuse.auth_failures.window: invalid duration "0s": must be above zero`,
			`abuse.bad.cue:4:26: auth.rotation.max_age: invalid duration "999999d": write it like "250ms", "1.5s", "1h30m" or "10d"`,
		},
		"alerts.bad.cue": {
			"alerts.bad.cue:3:22: alerts.error_rate.above: invalid value 1.5 (out of bound <=1)",
			"alerts.bad.cue:4:23: alerts.queue_depth.above: invalid value 0 (out of bound >0)",
			`alerts.bad.cue:4:36: alerts.queue_depth.severity: invalid severity "very bad": write 1 to 32 letters, digits, '_' or '-', such as "critical" or "warning"`,
			"alerts.bad.cue:5:14: alerts.cpu.above: invalid value 0 (out of bound >0)",
			"alerts.bad.cue:6:2: alerts.webhook.url: field is required but not present",
			"alerts.bad.cue:6:25: alerts.webhook.max_attempts: invalid value 0 (out of bound >=1)",
		},
		"alert-checks.bad.cue": {
			`alert-checks.bad.cue:3:22: alerts.error_rate.window: invalid duration "0s": must be from "1s" to "1d"`,
			`alert-checks.bad.cue:4:23: alerts.latency_p95.above: invalid duration "0s": must be above zero`,
			`alert-checks.bad.cue:4:36: alerts.latency_p95.model: model "qwen" is not configured; add it under models, or name one of: demo, or remove model to watch every model`,
			`alert-checks.bad.cue:4:52: alerts.latency_p95.window: invalid duration "2d": must be from "1s" to "1d"`,
			`alert-checks.bad.cue:5:12: alerts.cpu.for: invalid duration "1.5ms": must be a whole number of milliseconds, as Prometheus counts`,
			`alert-checks.bad.cue:6:24: alerts.key_expiring.within: invalid duration "1us": must be a whole number of milliseconds`,
			`alert-checks.bad.cue:7:17: alerts.webhook.url: "ftp://alerts.example.com/hook" is not an http:// or https:// URL; write an absolute http:// or https:// URL with a host, such as "http://127.0.0.1:9093/api/v2/alerts"`,
			`alert-checks.bad.cue:7:86: alerts.webhook.timeout: invalid duration "0s": must be from "1s" to "5m"`,
		},
		"alerts-webhook.bad.cue": {
			`alerts-webhook.bad.cue:3:23: alerts.webhook.url: "http:///api/v2/alerts" has no host; write an absolute http:// or https:// URL with a host`,
		},
		"webhook-twice.bad.cue": {
			"webhook-twice.bad.cue:2:23: alerts.webhook.url: conflicting values (secret, not shown) and (secret, not shown)",
		},
		"logging.bad.cue": {
			"logging.bad.cue:3:20: logging.prompt_max_bytes: invalid value 8 (out of bound >=16)",
			"logging.bad.cue:4:17: logging.redact.1: invalid value 3 (must be string)",
		},
		"redact.bad.cue": {
			`redact.bad.cue:2:32: logging.redact.1: invalid regular expression "(unclosed": missing closing ); write it in RE2 syntax, which Go's regexp package takes (no lookaround or backreferences)`,
			`redact.bad.cue:2:45: logging.redact.2: invalid regular expression "(?=lookahead)": invalid or unsupported Perl syntax at "(?="`,
			`redact.bad.cue:2:64: logging.redact.3: invalid regular expression "a{2000}": invalid repeat count at "{2000}"`,
		},
		// Every mistake is reported, including an unknown field next to
		// a wrong value, which CUE alone leaves out.
		"many-errors.bad.cue": {
			"many-errors.bad.cue:1:20: listeners.0.port: invalid value 0 (out of bound >0)",
			"many-errors.bad.cue:1:23: listeners.0.tsl: field not allowed; known fields here: address, port, tls",
			`many-errors.bad.cue:2:17: logging.level: invalid value "verbose" (must be one of`,
			"many-errors.bad.cue:3:9: models.demo.path: field is required but not present",
			"many-errors.bad.cue:5:13: models.demo.instances: invalid value 65 (out of bound <=64)",
		},
	}

	files, err := filepath.Glob("testdata/*.bad.cue")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			lines, ok := want[name]
			if !ok {
				t.Fatalf("no expected messages for %s; add them to the table", name)
			}
			cfg, err := Load(file)
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want an error", file, cfg)
			}
			if cfg != nil {
				t.Errorf("Load returned a Config along with the error")
			}
			var serr *Error
			if !errors.As(err, &serr) {
				t.Fatalf("error is %T, want *schema.Error: %v", err, err)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(lines) {
				t.Errorf("got %d lines, want %d:\n%v", len(got), len(lines), err)
			}
			for i, w := range lines {
				if i < len(got) && !strings.Contains(got[i], w) {
					t.Errorf("line %d:\n got: %s\nwant: ...%s...", i+1, got[i], w)
				}
			}
			// Every line is led by a position in the file itself.
			for _, line := range got {
				if !strings.HasPrefix(line, file+":") {
					t.Errorf("line has no position in %s: %s", file, line)
				}
			}
		})
	}
	for name := range want {
		if _, err := os.Stat(filepath.Join("testdata", name)); err != nil {
			t.Errorf("table names %s, which does not exist", name)
		}
	}
}

func TestGood(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.cue")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.good.cue")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if _, err := Load(file); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestExamples loads every config under ../examples, subfolders
// included, as an operator would copy it.
func TestExamples(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../examples", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".cue") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The examples are part of the repository: none found means the test
	// looks in the wrong place, not that there is nothing to test.
	if len(files) < 3 {
		t.Fatalf("found %d configs under ../examples (%q), want at least 3", len(files), files)
	}
	for _, file := range files {
		t.Run(strings.TrimPrefix(file, "../examples/"), func(t *testing.T) {
			if _, err := Load(file); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Load("testdata/minimal.good.cue")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listeners: []Listener{{Address: "127.0.0.1", Port: 8080}},
		Runtime:   Runtime{Library: "", InterOpThreads: 1, CacheDir: "/var/lib/aiassist/cache"},
		Logging: Logging{
			Level: "info", Format: "json", AccessLog: true, PromptMaxBytes: 4096,
			Redact: []string{
				`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`,
				`\+?\(?\d(?:[\s().-]{0,2}\d){8,14}`,
				`\b(?:\d[ -]?){12,18}\d\b`,
			},
		},
		Metrics: Metrics{Enabled: true, Path: "/metrics"},
		Server: Server{
			MaxBodyBytes:   16 << 20,
			RequestTimeout: 30 * time.Second,
			ShutdownGrace:  30 * time.Second,
			HeaderTimeout:  10 * time.Second,
			ReadTimeout:    60 * time.Second,
			IdleTimeout:    120 * time.Second,
		},
		Reload: Reload{Watch: true, AdminSocket: ""},
		Models: map[string]Model{
			"demo": {
				Name:           "demo",
				Kind:           "tensor",
				Path:           filepath.Join(dir, "models/demo-mlp/model.onnx"),
				Instances:      1,
				IntraOpThreads: 1,
				Quantization:   "none",
				Batching: Batching{
					Enabled:       true,
					MaxBatchSize:  32,
					MaxQueueDelay: 2 * time.Millisecond,
					MaxQueueSize:  1024,
				},
			},
		},
		DefaultModel: "",
		Auth: Auth{
			APIKeys:  map[string]APIKey{},
			Rotation: Rotation{WarnBefore: 10 * 24 * time.Hour, MaxAge: 90 * 24 * time.Hour},
		},
		Secrets: Secrets{KeyFile: "/etc/aiassist/master.key"},
		Abuse: Abuse{
			AuthFailures: Threshold{Count: 20, Window: time.Minute},
			Requests:     Threshold{Count: 0, Window: 10 * time.Second},
			BlockStatus:  429,
		},
		Limits: Limits{Classes: map[string]LimitClass{}},
		// The defaults of alert.DefaultOptions, the seed's HighErrorRate
		// first.
		Alerts: Alerts{
			ErrorRate:    ErrorRateAlert{Above: 0.05, For: 3 * time.Minute, Window: 5 * time.Minute, Severity: "critical"},
			LatencyP95:   LatencyAlert{Above: 2 * time.Second, For: 5 * time.Minute, Window: 5 * time.Minute, Severity: "warning"},
			QueueDepth:   QueueDepthAlert{Above: 50, For: 2 * time.Minute, Severity: "warning"},
			ReloadFailed: ReloadFailedAlert{For: 0, Severity: "warning"},
			KeyExpiring:  KeyExpiringAlert{Within: 10 * 24 * time.Hour, Severity: "warning"},
			CPU:          CPUAlert{Above: 0.8, For: 5 * time.Minute, Window: 5 * time.Minute, Severity: "warning"},
		},
		UI:   UI{Enabled: true},
		Path: filepath.Join(dir, "minimal.good.cue"),
	}
	// Positions are tested in pos_test.go.
	got := *cfg
	got.places = nil
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", &got, want)
	}
}

func TestFull(t *testing.T) {
	cfg, err := Load("testdata/full.good.cue")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	if got, want := len(cfg.Listeners), 3; got != want {
		t.Fatalf("%d listeners, want %d", got, want)
	}
	for i, want := range []string{"127.0.0.1:8080", "[::1]:8080", "localhost:9090"} {
		if got := cfg.Listeners[i].HostPort(); got != want {
			t.Errorf("Listeners[%d].HostPort() = %q, want %q", i, got, want)
		}
	}
	if got, want := cfg.ModelNames(), []string{"chat", "demo", "small", "types.v2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ModelNames() = %q, want %q", got, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Runtime", cfg.Runtime, Runtime{Library: "/opt/onnxruntime/lib/libonnxruntime.so", InterOpThreads: 2, CacheDir: "/var/lib/aiassist/cache"}},
		{"Logging", cfg.Logging, Logging{
			Level: "debug", Format: "text", AccessLog: false, LogPrompts: true,
			File: filepath.Join(dir, "log/aiassist.log"), PromptMaxBytes: 256, Redact: []string{`secret-\d+`}, EncryptPrompts: true,
		}},
		{"Alerts", cfg.Alerts, Alerts{
			ErrorRate:    ErrorRateAlert{Above: 0.1, For: time.Minute, Window: 2 * time.Minute, Severity: "page"},
			LatencyP95:   LatencyAlert{Above: 1500 * time.Millisecond, For: 30 * time.Second, Window: time.Minute, Model: "chat", Severity: "warning"},
			QueueDepth:   QueueDepthAlert{Above: 10, For: 0, Severity: "warning"},
			ReloadFailed: ReloadFailedAlert{For: time.Minute, Severity: "critical"},
			KeyExpiring:  KeyExpiringAlert{Within: 60 * time.Hour, Severity: "warning"},
			CPU:          CPUAlert{Above: 1, For: 10 * time.Minute, Window: 10 * time.Minute, Severity: "warning"},
			Webhook:      &Webhook{URL: "https://alerts.example.com/api/v2/alerts", Timeout: 3 * time.Second, MaxAttempts: 2},
		}},
		{"Metrics", cfg.Metrics, Metrics{Enabled: false, Path: "/internal/metrics"}},
		{"Server", cfg.Server, Server{
			MaxBodyBytes:   1 << 20,
			RequestTimeout: 1500 * time.Millisecond,
			ShutdownGrace:  0,
			HeaderTimeout:  10 * time.Second,
			ReadTimeout:    10 * time.Second,
			IdleTimeout:    90 * time.Minute,
		}},
		{"Reload", cfg.Reload, Reload{Watch: false, AdminSocket: "/run/aiassist/admin.sock"}},
		{"demo", cfg.Models["demo"], Model{
			Name: "demo", Kind: "tensor", Path: "/srv/models/demo.onnx", Instances: 4, IntraOpThreads: 2, Quantization: "none",
			Batching: Batching{Enabled: true, MaxBatchSize: 8, MaxQueueDelay: 500 * time.Microsecond, MaxQueueSize: 64},
		}},
		{"types.v2", cfg.Models["types.v2"], Model{
			Name: "types.v2", Kind: "tensor", Path: filepath.Join(filepath.Dir(dir), "models/types.onnx"), Instances: 1, IntraOpThreads: 1, Quantization: "none",
			Batching: Batching{Enabled: false, MaxBatchSize: 32, MaxQueueDelay: 2 * time.Millisecond, MaxQueueSize: 64},
		}},
		{"chat", cfg.Models["chat"], Model{
			Name: "chat", Kind: "causal-lm", Path: "/srv/models/qwen2.5-0.5b-instruct", Instances: 2, IntraOpThreads: 4, Quantization: "none",
			MaxSequences: 16, PrefillChunk: 512, MaxQueue: 128, ContextLength: 4096, Truncate: "left",
			ChatTemplate: "{% for m in messages %}{{ m.content }}{% endfor %}",
		}},
		{"small", cfg.Models["small"], Model{
			Name: "small", Kind: "causal-lm", Path: filepath.Join(dir, "tiny-llama"), Instances: 1, IntraOpThreads: 1, Quantization: "none",
			MaxSequences: 8, PrefillChunk: 512, MaxQueue: 64, Truncate: "error",
		}},
		{"DefaultModel", cfg.DefaultModel, "chat"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, c.got, c.want)
		}
	}
}

func TestParseListeners(t *testing.T) {
	f := func(listeners string, wantErr string) {
		t.Helper()
		// auth.open lets the listeners that are not loopback serve: see
		// TestSecureByDefault.
		_, err := Parse("l.cue", []byte("listeners: "+listeners+"\nmodels: a: {kind: \"tensor\", path: \"a.onnx\"}\nauth: open: true"))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("listeners %s: %v", listeners, err)
		case wantErr != "" && err == nil:
			t.Errorf("listeners %s: no error, want %q", listeners, wantErr)
		case wantErr != "" && !strings.Contains(err.Error(), wantErr):
			t.Errorf("listeners %s:\n got %v\nwant ...%s...", listeners, err, wantErr)
		}
	}
	f(`[{port: 1}, {port: 2}]`, "")
	f(`[{address: "127.0.0.1"}, {address: "::1"}]`, "")
	f(`[{address: "0.0.0.0"}, {address: "::1"}]`, "")
	f(`[{address: "10.0.0.1"}, {address: "10.0.0.2"}]`, "")
	f(`[{address: "localhost"}, {address: "127.0.0.1"}]`, "l.cue:1:37: listeners.1: duplicate listener")
	f(`[{address: "::ffff:127.0.0.1"}, {address: "127.0.0.1"}]`, "duplicate listener")
	f(`[{address: "::"}, {address: "127.0.0.1"}]`, "overlaps listeners.0")
	f(`[{address: ""}, {address: "::1"}]`, "overlaps listeners.0")
	f(`[{address: "0.0.0.0"}, {address: "10.1.2.3"}]`, "overlaps listeners.0")
	f(`[{port: 65535}]`, "")
	f(`[{port: 65536}]`, "out of bound <65536")
	f(`[{port: -1}]`, "out of bound >0")
	f(`[{port: "80"}]`, `invalid value "80" (must be int)`)
}

func TestParseModels(t *testing.T) {
	f := func(src string, wantErr string) {
		t.Helper()
		_, err := Parse("m.cue", []byte(src))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s: %v", src, err)
		case wantErr != "" && err == nil:
			t.Errorf("%s: no error, want %q", src, wantErr)
		case wantErr != "" && !strings.Contains(err.Error(), wantErr):
			t.Errorf("%s:\n got %v\nwant ...%s...", src, err, wantErr)
		}
	}
	model := func(name string) string {
		return "models: " + name + `: {kind: "tensor", path: "x.onnx"}`
	}
	f(model("a"), "")
	f(model(`"a.b_c-D9"`), "")
	f(model(`"`+strings.Repeat("a", 64)+`"`), "")
	f(model(`"`+strings.Repeat("a", 65)+`"`), "field not allowed; a model name is")
	f(model(`"-a"`), "field not allowed; a model name is")
	f(model(`"a/b"`), "field not allowed; a model name is")
	f(model("a")+"\ndefault_model: \"a\"", `m.cue:2:16: default_model: model "a" is a "tensor" model; default_model picks the model of text generation requests (/v1), so it must name a "causal-lm" model: remove default_model`)
	lm := func(name string) string {
		return "models: " + name + `: {kind: "causal-lm", path: "tiny-llama"}`
	}
	f(lm("b")+"\ndefault_model: \"b\"", "")
	f(model("a")+"\n"+lm("b")+"\ndefault_model: \"a\"", `must name a "causal-lm" model: change it to one of: b`)
	f(lm("b")+"\ndefault_model: \"c\"", `default_model: model "c" is not configured; add it under models or change default_model to one of: b`)
	f(`models: b: {kind: "causal-lm", path: "m", max_sequences: 1025}`, "models.b.max_sequences: invalid value 1025 (out of bound <=1024)")
	f(`models: b: {kind: "causal-lm", path: "m", max_queue: 0, context_length: 2}`, "")
	f(`models: b: {kind: "causal-lm", path: "m", batching: enabled: false}`, `models.b.batching: field not allowed; known fields of a "causal-lm" model: kind, path, instances, intra_op_threads, request_timeout, scaling, quantization, max_sequences, prefill_chunk, max_queue, context_length, truncate, chat_template`)
	f(`models: b: {kind: "causal-lm", path: "m", truncate: "right"}`, `models.b.truncate: invalid value "right" (must be one of "error", "left")`)
	f(`models: b: {kind: "causal-lm"}`, "models.b.path: field is required but not present")
	f(`models: b: {path: "m", max_queue: 1}`, "models.b.kind: field is required but not present")
	f("default_model: \"a\"", `default_model: model "a" is not configured; add it under models or remove default_model`)
	f(`models: a: {kind: "tensor", path: ""}`, `models.a.path: invalid value "" (out of bound !="")`)
	f(`models: a: {kind: "tensor", path: "x", batching: max_queue_delay: "10s"}`, "")
	f(`models: a: {kind: "tensor", path: "x", batching: max_queue_delay: "0"}`, "")
	f(`models: a: {kind: "tensor", path: "x", batching: max_queue_delay: "10.001s"}`, `must be at most "10s"`)
	f(`models: a: {kind: "tensor", path: "x", batching: max_queue_delay: "-1s"}`, `invalid duration "-1s"`)
	f(`models: a: {kind: "tensor", path: "x", batching: max_batch_size: 4097}`, "out of bound <=4096")
	f(`models: a: {kind: "tensor", path: "x", batching: enabled: "yes"}`, `models.a.batching.enabled: invalid value "yes" (must be bool)`)
}

// TestDurationPattern keeps durationPattern, by which errors about
// durations get a readable message, in step with config.cue.
func TestDurationPattern(t *testing.T) {
	if !strings.Contains(string(schemaSrc), "#Duration: "+durationPattern) {
		t.Errorf("config.cue does not define #Duration starting with %s", durationPattern)
	}
}

// TestSchemaDocs checks that every field of the schema has a doc comment
// that states its default or that it is required.
func TestSchemaDocs(t *testing.T) {
	field := regexp.MustCompile(`^\t([a-z_]+)[!?]?:`)
	lines := strings.Split(string(schemaSrc), "\n")
	for i, line := range lines {
		m := field.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var doc []string
		for j := i - 1; j >= 0 && strings.HasPrefix(lines[j], "\t//"); j-- {
			doc = append(doc, lines[j])
		}
		text := strings.Join(doc, " ")
		if text == "" {
			t.Errorf("config.cue:%d: field %s has no doc comment", i+1, m[1])
			continue
		}
		// Sub-structs are documented by their own fields.
		if strings.HasPrefix(strings.TrimSpace(strings.SplitN(line, ":", 2)[1]), "#") {
			continue
		}
		if !strings.Contains(text, "Default:") && !strings.Contains(text, "Required.") {
			t.Errorf("config.cue:%d: doc of %s states neither its default nor that it is required", i+1, m[1])
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.cue"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want an error wrapping os.ErrNotExist", err)
	}
}

// TestConcurrentParse runs under -race: reloads and tests may load configs
// at the same time.
func TestConcurrentParse(t *testing.T) {
	src, err := os.ReadFile("testdata/full.good.cue")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := Parse("full.cue", src); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkParse(b *testing.B) {
	src, err := os.ReadFile("testdata/full.good.cue")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Parse("full.cue", src); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMetricsPath: metrics.path may not hide a route of the API, and must
// be a path a request can reach.
func TestMetricsPath(t *testing.T) {
	f := func(path, wantErr string) {
		t.Helper()
		src := fmt.Sprintf("models: a: {kind: \"tensor\", path: \"a.onnx\"}\nmetrics: path: %q\n", path)
		_, err := Parse("p.cue", []byte(src))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("metrics.path %q: %v", path, err)
		case wantErr != "" && err == nil:
			t.Errorf("metrics.path %q: no error, want %q", path, wantErr)
		case wantErr != "" && !strings.Contains(err.Error(), wantErr):
			t.Errorf("metrics.path %q:\n got %v\nwant ...%s...", path, err, wantErr)
		}
	}
	const route = "where the API serves its routes; pick a path outside /v1 and /v2"
	f("/metrics", "")
	f("/internal/metrics", "")
	f("/metrics/", "")
	f("/", "")
	f("/v1x", "")
	f("/v10/metrics", "")
	f("/metrics/v1/x", "")
	f("/v1/generate", `p.cue:2:16: metrics.path: "/v1/generate" is under /v1/, `+route)
	f("/v1/chat/completions", "is under /v1/")
	f("/v1/models", "is under /v1/")
	f("/v1/", `"/v1/" is where the API serves`)
	f("/v1", `p.cue:2:16: metrics.path: "/v1" is `+route)
	f("/v2", `"/v2" is `+route)
	f("/v2/", `"/v2/" is where the API serves`)
	f("/v2/health/ready", "is under /v2/")
	f("/v2/health/live", "is under /v2/")
	f("/v2/models/a/infer", "is under /v2/")
	f("//metrics", `p.cue:2:16: metrics.path: "//metrics" is not a clean path: requests have "//", "." and ".." removed before they are routed, so none would reach it; write it as "/metrics"`)
	f("/x/../metrics", `write it as "/metrics"`)
	f("//v1/generate", `"//v1/generate" is under /v1/`)
	f("/x/../v2", `"/x/../v2" is where the API serves`)
	f("/./metrics", `write it as "/metrics"`)
	f("/metrics/.", `write it as "/metrics"`)
	f("metrics", `p.cue:2:16: metrics.path: invalid value "metrics" (out of bound =~"^/")`)
	f("", `invalid value "" (out of bound =~"^/")`)

	// A route is refused even with metrics off, so that turning them on
	// later cannot break the API.
	_, err := Parse("p.cue", []byte("models: a: {kind: \"tensor\", path: \"a.onnx\"}\nmetrics: {enabled: false, path: \"/v2/models\"}\n"))
	if err == nil || !strings.Contains(err.Error(), "p.cue:2:33: metrics.path:") {
		t.Errorf("metrics.path under /v2/ with metrics off: %v", err)
	}
}

// TestBatchingDocs keeps the docs of #Batching in step with the queue of
// engine/batch, which they describe: if the rule there changes, this
// fails, and config.cue must say the new rule.
func TestBatchingDocs(t *testing.T) {
	code, err := os.ReadFile("../engine/batch/batch.go")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	lines := strings.Split(string(schemaSrc), "\n")
	for i, line := range lines {
		name, _, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || strings.HasPrefix(name, "//") {
			continue
		}
		var doc []string
		for j := i - 1; j >= 0 && strings.HasPrefix(strings.TrimSpace(lines[j]), "//"); j-- {
			doc = append([]string{strings.TrimPrefix(strings.TrimSpace(lines[j]), "// ")}, doc...)
		}
		docs[name] = strings.Join(doc, " ")
	}
	for _, c := range []struct {
		rule   string // the rule, as batch.go codes it
		field  string
		saying string // what the field's doc says of it
	}{
		{"rows+it.rows > q.opts.MaxBatchSize", "max_batch_size", "the requests of a batch hold at most this many rows together, counted along dimension 0"},
		{"float64(rows) >= q.recentRows", "max_queue_delay", "when they hold at least as many rows as the recent peak"},
		{"wait <= 0", "max_queue_delay", "or when the oldest has waited max_queue_delay"},
		{"q.recentRows = max(float64(rows), q.recentRows*0.9)", "max_queue_delay", "becomes the larger of that batch's rows and nine tenths of the peak before"},
		{"head.enqueued.Add(q.opts.MaxQueueDelay)", "max_queue_delay", "counted from when it was queued"},
	} {
		if !strings.Contains(string(code), c.rule) {
			t.Errorf("engine/batch/batch.go no longer has %q; say its rule in the doc of %s in config.cue, and update this test", c.rule, c.field)
		}
		if !strings.Contains(docs[c.field], c.saying) {
			t.Errorf("the doc of %s in config.cue does not say %q (the rule %q of engine/batch):\n%s", c.field, c.saying, c.rule, docs[c.field])
		}
	}
}
