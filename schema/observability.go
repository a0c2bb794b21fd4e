package schema

// The checks of the observability settings: the log's prompt fields and
// the alerts.

import (
	"errors"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
)

// DefaultRedact returns the patterns of logging.redact when the file
// leaves it out: e-mail addresses, phone numbers and card numbers.
// config.cue's doc of redact lists them too; TestDefaultRedactDoc keeps
// the two in step.
func DefaultRedact() []string { return slices.Clone(defaultRedact) }

var defaultRedact = []string{
	`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`,
	`\+?\(?\d(?:[\s().-]{0,2}\d){8,14}`,
	`\b(?:\d[ -]?){12,18}\d\b`,
}

// redactPatterns are the patterns of logging.redact as the file gives
// them: nil (left out) takes DefaultRedact, [] none.
func redactPatterns(raw []string) []string {
	if raw == nil {
		return DefaultRedact()
	}
	return list(raw)
}

// checkLogging checks that each redact pattern compiles, and warns of
// prompt settings that do nothing.
func (c *checker) checkLogging(l Logging) {
	for i, p := range l.Redact {
		if _, err := regexp.Compile(p); err != nil {
			reason := err.Error()
			var se *syntax.Error
			if errors.As(err, &se) {
				reason = se.Code.String()
				if se.Expr != "" && se.Expr != p {
					reason += " at " + strconv.Quote(se.Expr)
				}
			}
			c.errorf([]string{"logging", "redact", strconv.Itoa(i)}, "invalid regular expression %q: %s; write it in RE2 syntax, which Go's regexp package takes (no lookaround or backreferences)", p, reason)
		}
	}
	if l.EncryptPrompts && !l.LogPrompts {
		c.warnf([]string{"logging", "encrypt_prompts"}, "encrypt_prompts has no effect while log_prompts is false, as no prompt is logged; set log_prompts: true, or remove encrypt_prompts")
	}
	if l.LogPrompts && !l.AccessLog {
		c.warnf([]string{"logging", "log_prompts"}, "log_prompts has no effect while access_log is false, as prompts are logged on the access log lines; set access_log: true, or remove log_prompts")
	}
}

// checkAlerts checks what the alerts name: a model, and a webhook URL.
// The bounds of the numbers and durations are the schema's and
// convertAlerts'.
func (c *checker) checkAlerts(cfg *Config) {
	a := cfg.Alerts
	if m := a.LatencyP95.Model; m != "" {
		if _, ok := cfg.Models[m]; !ok {
			c.errorf([]string{"alerts", "latency_p95", "model"}, "model %q is not configured; add it under models, or name one of: %s, or remove model to watch every model", m, strings.Join(cfg.ModelNames(), ", "))
		}
	}
	if w := a.Webhook; w != nil {
		if msg := checkWebhookURL(w.URL); msg != "" {
			c.errorf([]string{"alerts", "webhook", "url"}, "%s", msg)
		}
	}
}

// checkWebhookURL returns what is wrong with a webhook URL, or "". The
// message never holds the URL's userinfo, query or fragment: a receiver's
// password or token may sit in them.
func checkWebhookURL(s string) string {
	const fix = `write an absolute http:// or https:// URL with a host, such as "http://127.0.0.1:9093/api/v2/alerts"`
	if strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return "the URL has spaces or control characters; " + fix
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's error repeats the URL, password included.
		return "the URL cannot be parsed; " + fix
	}
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return strconv.Quote(shown) + " is not an http:// or https:// URL; " + fix
	case u.Host == "" || u.Hostname() == "":
		return strconv.Quote(shown) + " has no host; " + fix
	case !validPort(u):
		return strconv.Quote(shown) + " has an invalid port; " + fix
	}
	return ""
}
