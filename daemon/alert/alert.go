// Package alert turns the alert thresholds of the config into two things
// that agree: a Prometheus rule file (Rules) that Prometheus and vmalert load
// unchanged, and an in-process Evaluator that computes the same expressions
// over the daemon's own metrics, so a single server with no Prometheus still
// pages someone through a webhook.
package alert

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Alert names, shared by the rule file, the in-process evaluator, the
// aiassist_alert_firing{alert} gauge and the webhook's alertname label.
// AiassistHighErrorRate is the seed's HighErrorRate.
const (
	HighErrorRate  = "AiassistHighErrorRate"
	HighLatencyP95 = "AiassistHighLatencyP95"
	QueueDepthHigh = "AiassistQueueDepth"
	ReloadFailed   = "AiassistReloadFailed"
	KeyExpiring    = "AiassistKeyExpiring"
	HighCPU        = "AiassistHighCPU"
)

// Names lists every alert in the order the rule file holds them.
var Names = []string{HighErrorRate, HighLatencyP95, QueueDepthHigh, ReloadFailed, KeyExpiring, HighCPU}

// Series the rules read. Every one but CPUCoresSeries is exported by the
// daemon already; CPUCoresSeries and KeyExpirySeries are the ones the daemon
// must add (see the package README in the lead's report).
const (
	RequestsSeries       = "aiassist_requests_total"
	DurationBucketSeries = "aiassist_request_duration_seconds_bucket"
	QueueDepthSeries     = "aiassist_queue_depth"
	GenQueueDepthSeries  = "aiassist_generation_queue_depth"
	ReloadOKSeries       = "aiassist_config_last_reload_successful"
	KeyExpirySeries      = "aiassist_auth_key_expiry_timestamp_seconds"
	CPUSecondsSeries     = "process_cpu_seconds_total"
	CPUCoresSeries       = "aiassist_cpu_cores"
)

// Options are the thresholds of the config's alerts section as Go values.
// A zero Window takes DefaultWindow and an empty Severity the rule's default
// severity; other zero values mean what they say (For 0 fires at once).
type Options struct {
	ErrorRate    ErrorRateOptions
	LatencyP95   LatencyOptions
	QueueDepth   QueueDepthOptions
	ReloadFailed ReloadFailedOptions
	KeyExpiring  KeyExpiringOptions
	CPU          CPUOptions
	// Webhook, when its URL is set, receives Alertmanager API v2 posts from
	// the in-process evaluator. The rule file does not use it.
	Webhook WebhookOptions
}

// ErrorRateOptions: the share of model requests answered with a 5xx status
// over Window. Client errors (4xx: bad JSON, unknown model, auth, rate
// limits) do not count: they say nothing about the server's health, and
// one broken client would otherwise page the operator. 503 queue_full and
// 504 deadline_exceeded count: the server failed to serve. Requests that
// name no model (health probes, /metrics scrapes, unknown routes) are left
// out of both sides: a readiness probe answering 503 during warm-up is not
// an API error, and frequent probes would dilute the ratio.
type ErrorRateOptions struct {
	Above    float64 // ratio, 0.05 is 5 %
	For      time.Duration
	Window   time.Duration
	Severity string
}

// LatencyOptions: the 95th percentile of request duration over Window, per
// model, or of Model alone when set. Requests without a model (health,
// metrics) are left out.
type LatencyOptions struct {
	Above    time.Duration
	For      time.Duration
	Window   time.Duration
	Model    string
	Severity string
}

// QueueDepthOptions: requests waiting in a model's queue (tensor batching
// queue or generation queue).
type QueueDepthOptions struct {
	Above    float64
	For      time.Duration
	Severity string
}

// ReloadFailedOptions: the last config reload failed; the daemon keeps
// serving the last good config.
type ReloadFailedOptions struct {
	For      time.Duration
	Severity string
}

// KeyExpiringOptions: an API key expires within Within (or has expired).
type KeyExpiringOptions struct {
	Within   time.Duration
	Severity string
}

// CPUOptions: process CPU time per second over Window divided by the
// machine's cores, so 0.8 is 80 % of all cores.
type CPUOptions struct {
	Above    float64
	For      time.Duration
	Window   time.Duration
	Severity string
}

// WebhookOptions configure the Alertmanager-compatible receiver. Zero
// values take the defaults named on each field.
type WebhookOptions struct {
	// URL of the receiver, e.g. http://127.0.0.1:9093/api/v2/alerts.
	// Userinfo is sent as basic auth and never logged.
	URL string
	// Timeout per attempt. Default 10s.
	Timeout time.Duration
	// MaxAttempts per post before it is dropped. Default 5.
	MaxAttempts int
	// Backoff before the first retry; it doubles up to MaxBackoff.
	// Defaults 1s and 30s.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// QueueSize is how many posts may wait; past it the oldest is dropped
	// (a later resend carries the state again). Default 64.
	QueueSize int
	// ResendEvery re-sends firing alerts, and resolved ones for 15
	// minutes, as Prometheus does. Default 1m.
	ResendEvery time.Duration
}

// DefaultWindow is the rate window when an option leaves it zero.
const DefaultWindow = 5 * time.Minute

// DefaultOptions are the config's defaults; the error-rate rule is the
// seed's HighErrorRate.
func DefaultOptions() Options {
	return Options{
		ErrorRate:    ErrorRateOptions{Above: 0.05, For: 3 * time.Minute, Window: 5 * time.Minute, Severity: "critical"},
		LatencyP95:   LatencyOptions{Above: 2 * time.Second, For: 5 * time.Minute, Window: 5 * time.Minute, Severity: "warning"},
		QueueDepth:   QueueDepthOptions{Above: 50, For: 2 * time.Minute, Severity: "warning"},
		ReloadFailed: ReloadFailedOptions{For: 0, Severity: "warning"},
		KeyExpiring:  KeyExpiringOptions{Within: 10 * 24 * time.Hour, Severity: "warning"},
		CPU:          CPUOptions{Above: 0.8, For: 5 * time.Minute, Window: 5 * time.Minute, Severity: "warning"},
	}
}

// Check reports whether o is valid, as Rules and Update would find; the
// error names the config field.
func (o Options) Check() error {
	_, err := o.normalize()
	return err
}

// normalize fills defaults and checks o; the error names the config field.
func (o Options) normalize() (Options, error) {
	def := DefaultOptions()
	sev := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	win := func(w *time.Duration) {
		if *w == 0 {
			*w = DefaultWindow
		}
	}
	sev(&o.ErrorRate.Severity, def.ErrorRate.Severity)
	sev(&o.LatencyP95.Severity, def.LatencyP95.Severity)
	sev(&o.QueueDepth.Severity, def.QueueDepth.Severity)
	sev(&o.ReloadFailed.Severity, def.ReloadFailed.Severity)
	sev(&o.KeyExpiring.Severity, def.KeyExpiring.Severity)
	sev(&o.CPU.Severity, def.CPU.Severity)
	win(&o.ErrorRate.Window)
	win(&o.LatencyP95.Window)
	win(&o.CPU.Window)

	var errs []error
	ratio := func(field string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			errs = append(errs, fmt.Errorf("alerts.%s: must be a finite number >= 0, got %v", field, v))
		}
	}
	dur := func(field string, d time.Duration, min time.Duration) {
		if d < min {
			errs = append(errs, fmt.Errorf("alerts.%s: must be at least %s, got %s", field, formatDuration(min), d))
		} else if d%time.Millisecond != 0 {
			errs = append(errs, fmt.Errorf("alerts.%s: must be a whole number of milliseconds, got %s", field, d))
		}
	}
	severity := func(field, s string) {
		if len(s) > 32 || strings.IndexFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}) >= 0 {
			errs = append(errs, fmt.Errorf("alerts.%s: %q is not a severity; use up to 32 letters, digits, '_' or '-', e.g. \"critical\"", field, s))
		}
	}
	ratio("error_rate.above", o.ErrorRate.Above)
	dur("error_rate.for", o.ErrorRate.For, 0)
	dur("error_rate.window", o.ErrorRate.Window, time.Second)
	severity("error_rate.severity", o.ErrorRate.Severity)
	dur("latency_p95.above", o.LatencyP95.Above, 0)
	dur("latency_p95.for", o.LatencyP95.For, 0)
	dur("latency_p95.window", o.LatencyP95.Window, time.Second)
	severity("latency_p95.severity", o.LatencyP95.Severity)
	if m := o.LatencyP95.Model; m != "" && (len(m) > 256 || strings.IndexFunc(m, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0) {
		errs = append(errs, fmt.Errorf("alerts.latency_p95.model: %q is not a model name; use the name of a configured model", m))
	}
	ratio("queue_depth.above", o.QueueDepth.Above)
	dur("queue_depth.for", o.QueueDepth.For, 0)
	severity("queue_depth.severity", o.QueueDepth.Severity)
	dur("reload_failed.for", o.ReloadFailed.For, 0)
	severity("reload_failed.severity", o.ReloadFailed.Severity)
	dur("key_expiring.within", o.KeyExpiring.Within, 0)
	severity("key_expiring.severity", o.KeyExpiring.Severity)
	ratio("cpu.above", o.CPU.Above)
	dur("cpu.for", o.CPU.For, 0)
	dur("cpu.window", o.CPU.Window, time.Second)
	severity("cpu.severity", o.CPU.Severity)
	if err := o.Webhook.check(); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []time.Duration{o.ErrorRate.Window, o.LatencyP95.Window, o.CPU.Window} {
		if d > maxWindow {
			errs = append(errs, fmt.Errorf("alerts: a window of %s is longer than the %s the in-process evaluator keeps; use a shorter window", d, maxWindow))
			break
		}
	}
	return o, errors.Join(errs...)
}

// maxWindow bounds the history the evaluator keeps.
const maxWindow = 24 * time.Hour

func (w WebhookOptions) check() error {
	if w.URL == "" {
		return nil
	}
	u, err := url.Parse(w.URL)
	if err != nil {
		// url.Parse's error repeats the URL, password included.
		return errors.New("alerts.webhook.url: cannot parse the URL; use e.g. http://127.0.0.1:9093/api/v2/alerts")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("alerts.webhook.url: %q must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:9093/api/v2/alerts", redactURL(u))
	}
	if w.Timeout < 0 || w.MaxAttempts < 0 || w.Backoff < 0 || w.MaxBackoff < 0 || w.QueueSize < 0 || w.ResendEvery < 0 {
		return errors.New("alerts.webhook: timeout, attempts, backoff, queue size and resend interval must not be negative")
	}
	return nil
}

// redactURL is u without userinfo, query and fragment, safe to log: a
// receiver's token may sit in any of them.
func redactURL(u *url.URL) string {
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return c.String()
}

// rule is one alert: its Prometheus form and how to compute it in-process.
type rule struct {
	name        string
	expr        string
	hold        time.Duration
	severity    string
	summary     string
	description string
	// threshold is logged with the value, in the value's unit.
	threshold float64
	eval      func(v *view) []instance
}

// rules builds the alert definitions from normalized options; the rule
// file and the evaluator both read them, so they cannot drift apart.
func rules(o Options) []rule {
	er, lat, q, rl, key, cpu := o.ErrorRate, o.LatencyP95, o.QueueDepth, o.ReloadFailed, o.KeyExpiring, o.CPU
	modelSel := `model!=""`
	modelText := "model {{ $labels.model }}"
	if lat.Model != "" {
		modelSel = `model=` + strconv.Quote(lat.Model)
	}
	return []rule{{
		name: HighErrorRate,
		expr: fmt.Sprintf(`sum without (route, model, code) (rate(%s{model!="",code=~"5.."}[%s])) / sum without (route, model, code) (rate(%s{model!=""}[%s])) > %s`,
			RequestsSeries, formatDuration(er.Window), RequestsSeries, formatDuration(er.Window), formatFloat(er.Above)),
		hold:     er.For,
		severity: er.Severity,
		summary:  "aiassist error rate is high",
		description: fmt.Sprintf("{{ $value | humanizePercentage }} of requests failed with a server error (5xx) over the last %s; the threshold is %s.",
			formatDuration(er.Window), humanizePercentage(er.Above)),
		threshold: er.Above,
		eval:      func(v *view) []instance { return v.errorRate(er) },
	}, {
		name: HighLatencyP95,
		expr: fmt.Sprintf(`histogram_quantile(0.95, sum without (route) (rate(%s{%s}[%s]))) > %s`,
			DurationBucketSeries, modelSel, formatDuration(lat.Window), formatFloat(lat.Above.Seconds())),
		hold:     lat.For,
		severity: lat.Severity,
		summary:  "aiassist p95 latency is high",
		description: fmt.Sprintf("p95 request latency of %s is {{ $value | humanizeDuration }} over the last %s; the threshold is %s.",
			modelText, formatDuration(lat.Window), thresholdDuration(lat.Above)),
		threshold: lat.Above.Seconds(),
		eval:      func(v *view) []instance { return v.latency(lat) },
	}, {
		name: QueueDepthHigh,
		expr: fmt.Sprintf(`%s > %s or %s > %s`,
			QueueDepthSeries, formatFloat(q.Above), GenQueueDepthSeries, formatFloat(q.Above)),
		hold:        q.For,
		severity:    q.Severity,
		summary:     "aiassist queue is long",
		description: fmt.Sprintf("{{ $value }} requests wait in the queue of model {{ $labels.model }}; the threshold is %s.", formatFloat(q.Above)),
		threshold:   q.Above,
		eval:        func(v *view) []instance { return v.queueDepth(q) },
	}, {
		name:        ReloadFailed,
		expr:        ReloadOKSeries + ` == 0`,
		hold:        rl.For,
		severity:    rl.Severity,
		summary:     "aiassist config reload failed",
		description: "The last config reload failed; the daemon keeps serving the last good config. Run aiassistd check on the file, or read the daemon's log for the file:line:col of the error.",
		threshold:   0,
		eval:        func(v *view) []instance { return v.reloadFailed() },
	}, {
		name:        KeyExpiring,
		expr:        fmt.Sprintf(`%s - time() < %s`, KeyExpirySeries, formatFloat(key.Within.Seconds())),
		hold:        0,
		severity:    key.Severity,
		summary:     "aiassist API key expires soon",
		description: fmt.Sprintf("API key {{ $labels.key }} expires in {{ $value | humanizeDuration }} (negative: expired); the threshold is %s. Issue a new key and retire this one.", thresholdDuration(key.Within)),
		threshold:   key.Within.Seconds(),
		eval:        func(v *view) []instance { return v.keyExpiring(key) },
	}, {
		name: HighCPU,
		expr: fmt.Sprintf(`rate(%s[%s]) / %s > %s`,
			CPUSecondsSeries, formatDuration(cpu.Window), CPUCoresSeries, formatFloat(cpu.Above)),
		hold:     cpu.For,
		severity: cpu.Severity,
		summary:  "aiassist CPU use is high",
		description: fmt.Sprintf("The daemon used {{ $value | humanizePercentage }} of the machine's CPU cores over the last %s; the threshold is %s.",
			formatDuration(cpu.Window), humanizePercentage(cpu.Above)),
		threshold: cpu.Above,
		eval:      func(v *view) []instance { return v.cpu(cpu) },
	}}
}

// thresholdDuration writes a threshold for people: "10d", "2s", "1.5s".
func thresholdDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return formatDuration(d)
	}
	return humanizeDuration(d.Seconds())
}

// formatFloat writes v in plain decimal ("1000000", "0.05"), which PromQL
// and MetricsQL both parse and people read without effort.
func formatFloat(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// formatDuration writes d in Prometheus' duration syntax ("3m", "1h30m",
// "10d", "0s"), which vmalert parses too.
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.unit)
			d -= n * u.d
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}
