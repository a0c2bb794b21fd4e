package observe

import (
	"cmp"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aiassist/aiassist/daemon/secret"
)

// Field names of the prompt and response on an access log line. The
// seed's Logstash filter, and examples/elk/logstash.conf, rename prompt
// to user_query and response to model_answer; the _enc fields hold an
// "enc:v1:" value that `aiassistd decrypt` opens.
const (
	PromptKey            = "prompt"
	ResponseKey          = "response"
	PromptEncKey         = "prompt_enc"
	ResponseEncKey       = "response_enc"
	PromptTruncatedKey   = "prompt_truncated"
	ResponseTruncatedKey = "response_truncated"
)

// Redacted replaces each match of a redact pattern.
const Redacted = "[redacted]"

// Ellipsis ends a prompt or response cut at the cap.
const Ellipsis = "…"

// DefaultPromptMaxBytes is the cap when PromptOptions leaves it 0, as
// logging.prompt_max_bytes' default is.
const DefaultPromptMaxBytes = 4096

// redactMargin is how far past the cap the patterns look, so that a match
// that starts before the cut is replaced whole rather than shown in part
// (an e-mail address cut after its '@' would no longer match). A match
// longer than this that starts before the cut is replaced up to here.
const redactMargin = 1024

// PromptOptions say how a text generation request's prompt and response
// go on its access log line.
type PromptOptions struct {
	// MaxBytes caps each of them; 0 takes DefaultPromptMaxBytes.
	MaxBytes int
	// Redact are RE2 patterns whose matches are replaced with Redacted.
	Redact []string
	// Sealer, when set, seals them (as PromptEncKey and ResponseEncKey)
	// instead of redacting them: the key's holder reads what the client
	// sent, within the cap.
	Sealer *secret.Sealer
}

// Prompts puts prompts and responses on access log lines. A nil *Prompts
// logs none: logging.log_prompts is off.
type Prompts struct {
	max    int
	redact []*regexp.Regexp
	sealer *secret.Sealer
}

// NewPrompts compiles the options' patterns.
func NewPrompts(o PromptOptions) (*Prompts, error) {
	if o.MaxBytes < 0 {
		return nil, fmt.Errorf("logging.prompt_max_bytes: must not be negative, got %d", o.MaxBytes)
	}
	p := &Prompts{max: cmp.Or(o.MaxBytes, DefaultPromptMaxBytes), sealer: o.Sealer}
	for i, s := range o.Redact {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("logging.redact.%d: %w", i, err)
		}
		p.redact = append(p.redact, re)
	}
	return p, nil
}

// Attrs returns the access log attributes of a request's prompt and
// response: each capped, then redacted or sealed, with PromptTruncatedKey
// or ResponseTruncatedKey true when it was cut. A nil p returns nil.
func (p *Prompts) Attrs(prompt, response string) []slog.Attr {
	if p == nil {
		return nil
	}
	attrs := make([]slog.Attr, 0, 4)
	attrs = p.field(attrs, PromptKey, PromptEncKey, PromptTruncatedKey, prompt)
	return p.field(attrs, ResponseKey, ResponseEncKey, ResponseTruncatedKey, response)
}

func (p *Prompts) field(attrs []slog.Attr, key, encKey, truncKey, s string) []slog.Attr {
	var shown string
	var cut bool
	if p.sealer != nil {
		shown, cut = capText(s, p.max)
		v, err := p.sealer.Encrypt([]byte(shown))
		if err != nil {
			// Only the system's random source failing gets here; the
			// text is left out rather than logged in the clear.
			attrs = append(attrs, slog.String(encKey+"_error", "cannot seal: "+err.Error()))
		} else {
			attrs = append(attrs, slog.String(encKey, v))
		}
	} else {
		shown, cut = p.redactCapped(s)
		attrs = append(attrs, slog.String(key, shown))
	}
	if cut {
		attrs = append(attrs, slog.Bool(truncKey, true))
	}
	return attrs
}

// capText returns s cut to at most max bytes at a character boundary,
// with Ellipsis added, and whether it was cut.
func capText(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	return s[:runeCut(s, max)] + Ellipsis, true
}

// runeCut returns the largest i <= n at which s can be cut without
// splitting a character.
func runeCut(s string, n int) int {
	if n >= len(s) {
		return len(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// redactCapped shows the first p.max bytes of s with every match of the
// patterns that starts among them replaced whole, and reports whether
// anything of s is left out. The patterns run on the shown part and a
// margin past it, not on all of s, which may be as large as a request
// body.
func (p *Prompts) redactCapped(s string) (string, bool) {
	if len(p.redact) == 0 {
		return capText(s, p.max)
	}
	window := s[:runeCut(s, p.max+redactMargin)]
	var spans [][]int
	for _, re := range p.redact {
		for _, m := range re.FindAllStringIndex(window, -1) {
			if m[1] > m[0] {
				spans = append(spans, m)
			}
		}
	}
	if len(spans) == 0 {
		return capText(s, p.max)
	}
	slices.SortFunc(spans, func(a, b []int) int { return cmp.Compare(a[0], b[0]) })
	// b holds at most p.max bytes before its last Redacted: a pattern
	// with many short matches must not make the line longer than that.
	var b strings.Builder
	pos := 0 // bytes of s shown or replaced so far
	replaced := false
	for _, m := range spans {
		if m[1] <= pos {
			continue // inside the replacement before
		}
		if replaced && m[0] <= pos {
			// Overlaps or touches the replacement before, which now
			// reaches its end.
			pos = m[1]
			continue
		}
		if m[0] >= p.max || b.Len()+m[0]-pos > p.max {
			break
		}
		b.WriteString(s[pos:m[0]])
		b.WriteString(Redacted)
		pos, replaced = m[1], true
	}
	// The rest up to the cap: never past p.max bytes of s, so never into
	// a match left out above, which starts at or past there.
	if room := p.max - b.Len(); room > 0 && pos < p.max {
		end := max(runeCut(s, min(p.max, pos+room)), pos)
		b.WriteString(s[pos:end])
		pos = end
	}
	if pos >= len(s) {
		return b.String(), false
	}
	b.WriteString(Ellipsis)
	return b.String(), true
}
