package schema

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDefaultRedactDoc: the patterns config.cue's doc of logging.redact
// shows are the ones Load fills in.
func TestDefaultRedactDoc(t *testing.T) {
	doc := string(schemaSrc)
	i := strings.Index(doc, "\t//   redact: [")
	j := strings.Index(doc, "\tredact?: [...string]")
	if i < 0 || j < i {
		t.Fatal("config.cue has no example list before redact?: [...string]")
	}
	var shown []string
	for _, m := range regexp.MustCompile(`#"(.*)"#`).FindAllStringSubmatch(doc[i:j], -1) {
		shown = append(shown, m[1])
	}
	if !slices.Equal(shown, DefaultRedact()) {
		t.Errorf("config.cue shows\n%q\nDefaultRedact is\n%q", shown, DefaultRedact())
	}
}

// TestRedactDefaults: left out, logging.redact takes the defaults; [],
// none; a list of its own, only that.
func TestRedactDefaults(t *testing.T) {
	f := func(src string, want []string) {
		t.Helper()
		cfg, err := Parse("config.cue", []byte(src+"\nmodels: demo: {kind: \"tensor\", path: \"demo.onnx\"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cfg.Logging.Redact, want) || (want == nil) != (cfg.Logging.Redact == nil) {
			t.Errorf("%s: Redact = %q, want %q", src, cfg.Logging.Redact, want)
		}
	}
	f(``, DefaultRedact())
	f(`logging: redact: []`, nil)
	f(`logging: redact: ["x+"]`, []string{"x+"})
}

// TestDefaultRedactMatches: the default patterns catch what they are for
// and leave ordinary text, dates and small numbers alone.
func TestDefaultRedactMatches(t *testing.T) {
	var res []*regexp.Regexp
	for _, p := range DefaultRedact() {
		res = append(res, regexp.MustCompile(p))
	}
	match := func(s string) string {
		for _, re := range res {
			if m := re.FindString(s); m != "" {
				return m
			}
		}
		return ""
	}
	for _, s := range []string{
		"alice.smith+ai@example.co.uk",
		"zhang_san@mail.example.cn",
		"+86 138 0013 8000",
		"13800138000",
		"(555) 123-4567",
		"+1-555-123-4567",
		"4111 1111 1111 1111",
		"4111-1111-1111-1111",
		"378282246310005",
	} {
		if got := match("call me: " + s + " please"); got == "" {
			t.Errorf("%q is not redacted", s)
		} else if !strings.Contains(s, strings.TrimSpace(got)) || len(strings.TrimSpace(got)) < len(s)-2 {
			t.Errorf("%q: only %q is redacted", s, got)
		}
	}
	for _, s := range []string{
		"what is 12 + 30?",
		"the meeting is on 2026-03-01",
		"version 1.2.3 of the model",
		"user@localhost",
		"use 8 GiB of RAM and 4096 tokens",
	} {
		if got := match(s); got != "" {
			t.Errorf("%q: %q is redacted", s, got)
		}
	}
}

// TestWebhookURLNotPrinted: a webhook URL's password, query and fragment
// are never in an error, however the URL is wrong.
func TestWebhookURLNotPrinted(t *testing.T) {
	const model = "models: a: {kind: \"tensor\", path: \"a.onnx\"}\n"
	f := func(url string) {
		t.Helper()
		_, err := Parse("w.cue", []byte(model+"alerts: webhook: url: \""+url+"\"\n"))
		if err == nil {
			t.Fatalf("%s: no error", url)
		}
		for _, s := range []string{"hunter2", "s3cret", "frag"} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("the error prints %q:\n%v", s, err)
			}
		}
	}
	f("ftp://admin:hunter2@example.com/hook?token=s3cret#frag")
	f("http://admin:hunter2@/hook?token=s3cret")
	f("http://admin:hunter2@example.com:99999/hook?token=s3cret")
	f("http://admin:hunter2@exa mple.com/hook?token=s3cret")
	f("http://admin:hunter2%zz@example.com/?token=s3cret")
	f("/api/v2/alerts?token=s3cret")
	f("http://admin:hunter2@127.0.0.1:9093/?token=s3cret\" & =~\"^x")
}

// TestLoggingWarnings: prompt settings that do nothing are warned of,
// at the setting.
func TestLoggingWarnings(t *testing.T) {
	const model = "models: a: {kind: \"tensor\", path: \"a.onnx\"}\n"
	f := func(src string, want ...string) {
		t.Helper()
		cfg, err := Parse("l.cue", []byte(model+src))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, w := range cfg.Warnings() {
			got = append(got, w.String())
		}
		if len(got) != len(want) {
			t.Fatalf("%s: warnings %q, want %d", src, got, len(want))
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("warning %d = %q, want it to start %q", i, got[i], want[i])
			}
		}
	}
	f("logging: encrypt_prompts: true\n", "l.cue:2:27: logging.encrypt_prompts: encrypt_prompts has no effect while log_prompts is false")
	f("logging: {log_prompts: true, access_log: false}\n", "l.cue:2:24: logging.log_prompts: log_prompts has no effect while access_log is false")
	f("logging: {log_prompts: true, encrypt_prompts: true}\n")
}
