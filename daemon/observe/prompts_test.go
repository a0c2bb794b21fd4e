package observe

import (
	"crypto/rand"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aiassist/aiassist/daemon/secret"
)

// defaultRedact are logging.redact's defaults as schema.DefaultRedact
// gives them; observe may not import schema, and the daemon's
// TestBuildPrompts runs the real ones.
var defaultRedact = []string{
	`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`,
	`\+?\(?\d(?:[\s().-]{0,2}\d){8,14}`,
	`\b(?:\d[ -]?){12,18}\d\b`,
}

func attrMap(attrs []slog.Attr) map[string]any {
	m := map[string]any{}
	for _, a := range attrs {
		m[a.Key] = a.Value.Any()
	}
	return m
}

func newPrompts(t testing.TB, o PromptOptions) *Prompts {
	t.Helper()
	p, err := NewPrompts(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPromptsOff: without Prompts (log_prompts off, the default) a line
// gets no prompt field at all.
func TestPromptsOff(t *testing.T) {
	var p *Prompts
	if got := p.Attrs("secret question", "secret answer"); got != nil {
		t.Errorf("nil Prompts gives %v", got)
	}
}

// TestPromptsCap: each field is cut at prompt_max_bytes on a character
// boundary, ends in "…" and is flagged; one that fits is neither.
func TestPromptsCap(t *testing.T) {
	p := newPrompts(t, PromptOptions{MaxBytes: 16})
	m := attrMap(p.Attrs("0123456789abcdefXYZ", "0123456789abcdef"))
	if m["prompt"] != "0123456789abcdef…" || m["prompt_truncated"] != true {
		t.Errorf("prompt %q truncated %v", m["prompt"], m["prompt_truncated"])
	}
	if m["response"] != "0123456789abcdef" || m["response_truncated"] != nil {
		t.Errorf("response %q truncated %v", m["response"], m["response_truncated"])
	}
	// Chinese takes 3 bytes a character: 16 bytes hold 5 of them.
	m = attrMap(p.Attrs("请问今天北京的天气怎么样", ""))
	if got := m["prompt"].(string); got != "请问今天北…" || !utf8.ValidString(got) {
		t.Errorf("prompt %q, want 5 characters and …", got)
	}
	if m["response"] != "" {
		t.Errorf("empty response logged as %q", m["response"])
	}
	// The default cap.
	p = newPrompts(t, PromptOptions{})
	long := strings.Repeat("a", DefaultPromptMaxBytes+1)
	if got := attrMap(p.Attrs(long, ""))["prompt"].(string); got != long[:DefaultPromptMaxBytes]+"…" {
		t.Errorf("default cap: %d bytes", len(got))
	}
}

// TestPromptsRedact: the default patterns of logging.redact replace
// e-mail addresses, phone and card numbers with [redacted], in the prompt
// and the response, and a match the cap cuts through is replaced whole
// rather than shown in part.
func TestPromptsRedact(t *testing.T) {
	p := newPrompts(t, PromptOptions{MaxBytes: 4096, Redact: defaultRedact})
	m := attrMap(p.Attrs(
		"I am alice.smith@example.com, call +86 138 0013 8000 or pay with 4111 1111 1111 1111 today.",
		"Sure, I wrote to bob@example.org.",
	))
	if want := "I am [redacted], call [redacted] or pay with [redacted] today."; m["prompt"] != want {
		t.Errorf("prompt\n got %q\nwant %q", m["prompt"], want)
	}
	if want := "Sure, I wrote to [redacted]."; m["response"] != want {
		t.Errorf("response\n got %q\nwant %q", m["response"], want)
	}
	if m["prompt_truncated"] != nil {
		t.Errorf("flagged truncated: %v", m)
	}

	// The cut at 15 bytes falls inside the address.
	p = newPrompts(t, PromptOptions{MaxBytes: 16, Redact: defaultRedact})
	m = attrMap(p.Attrs("write to carol@example.com about 13800138000 now", "ok"))
	if got := m["prompt"].(string); got != "write to [redacted]…" || m["prompt_truncated"] != true {
		t.Errorf("cut inside a match: %q truncated %v", got, m["prompt_truncated"])
	}
	// A match that ends the text is not a cut.
	m = attrMap(p.Attrs("mail dan@example.com", ""))
	if m["prompt"] != "mail [redacted]" || m["prompt_truncated"] != nil {
		t.Errorf("match at the end: %q truncated %v", m["prompt"], m["prompt_truncated"])
	}
	// redact: [] turns redaction off.
	p = newPrompts(t, PromptOptions{MaxBytes: 64})
	if got := attrMap(p.Attrs("erin@example.com", ""))["prompt"]; got != "erin@example.com" {
		t.Errorf("no patterns: %q", got)
	}
}

// TestPromptsRedactBounded: a pattern with many short matches does not
// make a field longer than the cap and one replacement.
func TestPromptsRedactBounded(t *testing.T) {
	p := newPrompts(t, PromptOptions{MaxBytes: 64, Redact: []string{`\d`}})
	got := attrMap(p.Attrs(strings.Repeat("1a", 5000), ""))["prompt"].(string)
	if limit := 64 + len(Redacted) + len(Ellipsis); len(got) > limit {
		t.Errorf("%d bytes, want at most %d: %q", len(got), limit, got)
	}
	if !strings.HasPrefix(got, "[redacted]a[redacted]a") || !strings.HasSuffix(got, "…") {
		t.Errorf("got %q", got)
	}
}

// TestPromptsSealed: with encrypt_prompts the fields are sealed under the
// key, capped but not redacted, and nothing of them is in the clear.
func TestPromptsSealed(t *testing.T) {
	key := make([]byte, secret.KeySize)
	rand.Read(key)
	s, err := secret.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	p := newPrompts(t, PromptOptions{MaxBytes: 32, Redact: defaultRedact, Sealer: s})
	prompt := "my mail is frank@example.com and this goes past the cap"
	m := attrMap(p.Attrs(prompt, "fine"))
	for _, k := range []string{"prompt", "response"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s logged in the clear: %v", k, m)
		}
	}
	for k, v := range m {
		if s, ok := v.(string); ok && (strings.Contains(s, "frank") || strings.Contains(s, "fine")) {
			t.Errorf("%s holds the text in the clear: %q", k, s)
		}
	}
	open := func(k string) string {
		t.Helper()
		v, _ := m[k].(string)
		if !secret.IsEncrypted(v) {
			t.Fatalf("%s = %q, not an enc:v1: value", k, v)
		}
		b, err := secret.Decrypt(key, v)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return string(b)
	}
	if got, want := open("prompt_enc"), prompt[:32]+"…"; got != want {
		t.Errorf("prompt_enc opens to %q, want %q", got, want)
	}
	if got := open("response_enc"); got != "fine" {
		t.Errorf("response_enc opens to %q", got)
	}
	if m["prompt_truncated"] != true || m["response_truncated"] != nil {
		t.Errorf("truncated flags: %v", m)
	}
	// Each line is sealed with its own nonce.
	if again := attrMap(p.Attrs(prompt, "fine")); again["response_enc"] == m["response_enc"] {
		t.Error("two seals of one text are the same")
	}
}

func TestNewPromptsErrors(t *testing.T) {
	if _, err := NewPrompts(PromptOptions{Redact: []string{"ok", "(bad"}}); err == nil || !strings.HasPrefix(err.Error(), "logging.redact.1: ") {
		t.Errorf("bad pattern: %v", err)
	}
	if _, err := NewPrompts(PromptOptions{MaxBytes: -1}); err == nil {
		t.Error("negative cap accepted")
	}
}

// FuzzPrompts: any text and cap give valid UTF-8 no longer than the cap
// and one replacement, flagged when and only when something was left out,
// and no default pattern matches what is shown between the replacements.
func FuzzPrompts(f *testing.F) {
	f.Add("alice@example.com wrote +86 138 0013 8000", 16)
	f.Add("4111 1111 1111 1111 4111 1111 1111 1111", 20)
	f.Add("请问 bob@example.org 今天", 17)
	f.Add("\xff\xfe broken utf8 13800138000", 18)
	f.Add("", 16)
	var res []*regexp.Regexp
	for _, s := range defaultRedact {
		res = append(res, regexp.MustCompile(s))
	}
	f.Fuzz(func(t *testing.T, text string, max int) {
		if max < 16 || max > 1<<16 {
			return
		}
		p := newPrompts(t, PromptOptions{MaxBytes: max, Redact: defaultRedact})
		m := attrMap(p.Attrs(text, text))
		got := m["prompt"].(string)
		if m["response"] != got {
			t.Fatalf("prompt %q and response %q of one text differ", got, m["response"])
		}
		if utf8.ValidString(text) && !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 %q from %q", got, text)
		}
		if len(got) > max+len(Redacted)+len(Ellipsis) {
			t.Fatalf("%d bytes for a cap of %d: %q", len(got), max, got)
		}
		cut := m["prompt_truncated"] == true
		if cut != strings.HasSuffix(got, Ellipsis) && !strings.HasSuffix(text, Ellipsis) {
			t.Fatalf("truncated %v but %q", cut, got)
		}
		if !cut && !strings.Contains(got, Redacted) && got != text {
			t.Fatalf("%q shown as %q without a cut or a replacement", text, got)
		}
		shown := strings.TrimSuffix(got, Ellipsis)
		for _, part := range strings.Split(shown, Redacted) {
			for _, re := range res {
				if mm := re.FindString(part); mm != "" && !strings.Contains(text, Redacted) {
					t.Fatalf("%q shows %q, which %s matches", got, mm, re)
				}
			}
		}
	})
}
