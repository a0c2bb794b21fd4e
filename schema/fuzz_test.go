package schema

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics and returns either a Config that
// keeps the schema's promises (at least one model, a metrics path clear of
// the API, a position for every model's path, no listener open to others
// without a credential, API keys naming what is configured, limits that
// limit, warnings placed in the file) or an *Error whose every issue has a
// file:line:col.
// Seeds are in testdata/fuzz/FuzzParse, and every testdata/*.cue is added.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.cue")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse("fuzz.cue", src)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned both a Config and an error: %v", err)
			}
			var serr *Error
			if !errors.As(err, &serr) {
				// Only a recovered panic gives another error; that is a
				// bug in CUE or here, worth a failing case.
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			if len(serr.Issues) == 0 || strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("empty *Error")
			}
			// Every problem is placed in the file, so an operator can
			// find it.
			for _, is := range serr.Issues {
				if is.Filename != "fuzz.cue" || is.Line < 1 || is.Column < 1 {
					t.Fatalf("issue without a position in the file: %+v", is)
				}
			}
			return
		}
		if len(cfg.Listeners) == 0 {
			t.Fatalf("Config without listeners")
		}
		if len(cfg.Models) == 0 {
			t.Fatalf("Config without models")
		}
		if p := cfg.Metrics.Path; !strings.HasPrefix(p, "/") || p == "/v1" || p == "/v2" ||
			strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/v2/") || strings.Contains(p, "//") {
			t.Fatalf("metrics.path %q hides an API route or is not clean", p)
		}
		if cfg.Server.RequestTimeout <= 0 {
			t.Fatalf("RequestTimeout %v", cfg.Server.RequestTimeout)
		}
		for name, m := range cfg.Models {
			if m.Name != name || !filepath.IsAbs(m.Path) || m.Instances < 1 {
				t.Fatalf("bad model %q: %+v", name, m)
			}
			// path is required, so the file sets it somewhere.
			if pos := cfg.Pos(m.FieldPath("path")); !strings.HasPrefix(pos, "fuzz.cue:") {
				t.Fatalf("model %q: Pos of its path = %q", name, pos)
			}
			if is := cfg.Issue(m.FieldPath("path"), "x"); is.Filename != "fuzz.cue" || is.Line < 1 || is.Column < 1 {
				t.Fatalf("model %q: Issue at its path = %+v", name, is)
			}
			switch m.Kind {
			case KindTensor:
				if m.MaxSequences != 0 || m.Truncate != "" {
					t.Fatalf("tensor model %q with causal-lm fields: %+v", name, m)
				}
			case KindCausalLM:
				if m.MaxSequences < 1 || (m.Truncate != "error" && m.Truncate != "left") || m.Batching != (Batching{}) {
					t.Fatalf("bad causal-lm model %q: %+v", name, m)
				}
			default:
				t.Fatalf("model %q of kind %q", name, m.Kind)
			}
			if m.Batching.MaxQueueDelay < 0 || m.Batching.MaxQueueDelay > maxQueueDelay {
				t.Fatalf("model %q: MaxQueueDelay %v", name, m.Batching.MaxQueueDelay)
			}
		}
		if cfg.DefaultModel != "" {
			if m, ok := cfg.Models[cfg.DefaultModel]; !ok || m.Kind != KindCausalLM {
				t.Fatalf("DefaultModel %q is not a causal-lm model", cfg.DefaultModel)
			}
		}
		checkGateway(t, cfg)
		checkObservability(t, cfg)
	})
}

// checkObservability checks the promises of a loaded config's logging
// and alerts, for FuzzParse: what the access log and the alert evaluator
// are given never fails them.
func checkObservability(t *testing.T, cfg *Config) {
	t.Helper()
	l := cfg.Logging
	if l.File != "" && !filepath.IsAbs(l.File) {
		t.Fatalf("logging.file %q is not absolute", l.File)
	}
	if l.PromptMaxBytes < 16 || l.PromptMaxBytes > 1<<20 {
		t.Fatalf("prompt_max_bytes %d", l.PromptMaxBytes)
	}
	if l.Redact != nil && len(l.Redact) == 0 {
		t.Fatalf("redact: an empty list that is not nil")
	}
	for _, p := range l.Redact {
		if _, err := regexp.Compile(p); err != nil {
			t.Fatalf("redact pattern %q does not compile: %v", p, err)
		}
	}
	a := cfg.Alerts
	for name, v := range map[string]float64{"error_rate": a.ErrorRate.Above, "queue_depth": a.QueueDepth.Above, "cpu": a.CPU.Above} {
		if !(v > 0) || v > 1e9 {
			t.Fatalf("alerts.%s.above %v", name, v)
		}
	}
	if a.ErrorRate.Above > 1 || a.CPU.Above > 1 {
		t.Fatalf("a ratio above 1: %v %v", a.ErrorRate.Above, a.CPU.Above)
	}
	for _, w := range []time.Duration{a.ErrorRate.Window, a.LatencyP95.Window, a.CPU.Window} {
		if w < minAlertWindow || w > maxAlertWindow || w%time.Millisecond != 0 {
			t.Fatalf("alert window %v", w)
		}
	}
	for _, d := range []time.Duration{a.ErrorRate.For, a.LatencyP95.For, a.QueueDepth.For, a.ReloadFailed.For, a.CPU.For, a.KeyExpiring.Within, a.LatencyP95.Above} {
		if d < 0 || d%time.Millisecond != 0 {
			t.Fatalf("alert duration %v", d)
		}
	}
	if a.LatencyP95.Above <= 0 {
		t.Fatalf("latency_p95.above %v", a.LatencyP95.Above)
	}
	if _, ok := cfg.Models[a.LatencyP95.Model]; a.LatencyP95.Model != "" && !ok {
		t.Fatalf("latency_p95.model %q is not configured", a.LatencyP95.Model)
	}
	for _, sev := range []string{a.ErrorRate.Severity, a.LatencyP95.Severity, a.QueueDepth.Severity, a.ReloadFailed.Severity, a.KeyExpiring.Severity, a.CPU.Severity} {
		if sev == "" || len(sev) > 32 {
			t.Fatalf("severity %q", sev)
		}
	}
	if w := a.Webhook; w != nil {
		if msg := checkWebhookURL(w.URL); msg != "" || w.Timeout < minWebhookWait || w.Timeout > maxWebhookWait || w.MaxAttempts < 1 {
			t.Fatalf("webhook %+v: %s", *w, msg)
		}
	}
}

var fuzzHash = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// checkGateway checks the promises of a loaded config's gateway and
// limits, for FuzzParse.
func checkGateway(t *testing.T, cfg *Config) {
	t.Helper()
	creds := len(cfg.Auth.APIKeys) > 0 || cfg.Auth.JWT != nil
	if cfg.Auth.Open && creds {
		t.Fatalf("auth.open with credentials")
	}
	for _, l := range cfg.Listeners {
		if !creds && !cfg.Auth.Open && !loopback(l.Address) {
			t.Fatalf("listener %q is open to others without a credential", l.HostPort())
		}
		if l.TLS != nil && (!filepath.IsAbs(l.TLS.Cert) || !filepath.IsAbs(l.TLS.Key) ||
			(l.TLS.MinVersion != "1.2" && l.TLS.MinVersion != "1.3") || (l.TLS.ClientCA != "" && !filepath.IsAbs(l.TLS.ClientCA))) {
			t.Fatalf("listener %q: bad TLS %+v", l.HostPort(), *l.TLS)
		}
	}
	if cfg.Metrics.RequireAuth && !creds {
		t.Fatalf("metrics.require_auth without credentials")
	}
	hashes := map[string]bool{}
	for name, k := range cfg.Auth.APIKeys {
		if k.Name != name || !fuzzHash.MatchString(k.Hash) || hashes[k.Hash] {
			t.Fatalf("bad API key %q: %+v", name, k)
		}
		hashes[k.Hash] = true
		for _, m := range k.Models {
			if _, ok := cfg.Models[m]; !ok {
				t.Fatalf("API key %q names model %q", name, m)
			}
		}
		if _, ok := cfg.Limits.Classes[k.Limit]; k.Limit != "" && !ok {
			t.Fatalf("API key %q names limit class %q", name, k.Limit)
		}
		if !k.NotBefore.IsZero() && !k.NotAfter.IsZero() && !k.NotAfter.After(k.NotBefore) {
			t.Fatalf("API key %q never works: %v to %v", name, k.NotBefore, k.NotAfter)
		}
		for _, tm := range []time.Time{k.Created, k.NotBefore, k.NotAfter} {
			if tm.Location() != time.UTC {
				t.Fatalf("API key %q: time %v not in UTC", name, tm)
			}
		}
		for _, list := range [][]string{k.Models, k.AllowIPs, k.Scopes} {
			if list != nil && len(list) == 0 {
				t.Fatalf("API key %q: an empty list that is not nil", name)
			}
		}
	}
	if j := cfg.Auth.JWT; j != nil {
		if j.HS256Secret == "" && len(j.PublicKeys) == 0 && j.JWKSFile == "" {
			t.Fatalf("jwt without a key")
		}
		if s := j.HS256Secret; s != "" && !strings.HasPrefix(s, encPrefix) && len(s) < minHS256Secret {
			t.Fatalf("HS256 secret of %d bytes", len(s))
		}
		if j.Leeway < 0 || j.Leeway > maxLeeway {
			t.Fatalf("leeway %v", j.Leeway)
		}
	}
	for _, r := range []*Rate{cfg.Limits.Global, cfg.Limits.PerIP} {
		if r != nil && (!(r.RequestsPerSecond > 0) || r.Burst < 1) {
			t.Fatalf("bad rate %+v", *r)
		}
	}
	for name, cl := range cfg.Limits.Classes {
		if cl.RequestsPerSecond < 0 || (cl.RequestsPerSecond > 0) != (cl.Burst >= 1) || cl.TokensPerMinute < 0 || cl.MaxConcurrent < 0 {
			t.Fatalf("bad limit class %q: %+v", name, cl)
		}
	}
	for name, m := range cfg.Models {
		if d := m.RequestTimeout; d != 0 && (d < minModelTimeout || d > maxModelTimeout) {
			t.Fatalf("model %q: RequestTimeout %v", name, d)
		}
	}
	a := cfg.Abuse
	if a.AuthFailures.Window <= 0 || a.Requests.Window <= 0 || a.BlockFor < 0 || (a.BlockStatus != 429 && a.BlockStatus != 403) {
		t.Fatalf("bad abuse %+v", a)
	}
	if !filepath.IsAbs(cfg.Secrets.KeyFile) || cfg.Server.HeaderTimeout <= 0 {
		t.Fatalf("secrets.key_file %q, header_timeout %v", cfg.Secrets.KeyFile, cfg.Server.HeaderTimeout)
	}
	for _, w := range cfg.Warnings() {
		if w.Filename != "fuzz.cue" || w.Line < 1 || w.Column < 1 || w.Msg == "" {
			t.Fatalf("warning without a position in the file: %+v", w)
		}
	}
}
