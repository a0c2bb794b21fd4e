package daemon_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aiassist/aiassist/daemon"
	"github.com/aiassist/aiassist/daemon/alert"
	"github.com/aiassist/aiassist/schema"
)

const alertModels = `models: {
	demo: {kind: "tensor", path: "demo.onnx"}
	chat: {kind: "causal-lm", path: "chat"}
}
`

func parseAlerts(t *testing.T, src string) alert.Options {
	t.Helper()
	cfg, err := schema.Parse("alerts.cue", []byte(alertModels+src))
	if err != nil {
		t.Fatal(err)
	}
	return daemon.AlertOptions(cfg)
}

// TestAlertOptionsDefaults: a config without alerts gets the alert
// package's defaults, the seed's HighErrorRate among them.
func TestAlertOptionsDefaults(t *testing.T) {
	got := parseAlerts(t, "")
	if want := alert.DefaultOptions(); !reflect.DeepEqual(got, want) {
		t.Errorf("AlertOptions of the defaults:\n got %+v\nwant %+v", got, want)
	}
	if got.ErrorRate.Above != 0.05 || got.ErrorRate.For != 3*time.Minute || got.ErrorRate.Window != 5*time.Minute || got.ErrorRate.Severity != "critical" {
		t.Errorf("error rate %+v is not the seed's HighErrorRate", got.ErrorRate)
	}
}

// TestAlertOptionsEveryField: a config that sets every threshold to
// something other than its default moves every field of the options,
// so none is forgotten in the translation, and the rule file says them.
func TestAlertOptionsEveryField(t *testing.T) {
	got := parseAlerts(t, `alerts: {
	error_rate: {above: 0.1, for: "1m", window: "2m", severity: "page"}
	latency_p95: {above: "1500ms", for: "30s", window: "1m", model: "chat", severity: "minor"}
	queue_depth: {above: 10, for: "10s", severity: "major"}
	reload_failed: {for: "1m", severity: "critical"}
	key_expiring: {within: "2d12h", severity: "info"}
	cpu: {above: 1, for: "10m", window: "1d", severity: "low"}
	webhook: {url: "http://127.0.0.1:9093/api/v2/alerts", timeout: "3s", max_attempts: 2}
}
`)
	want := alert.Options{
		ErrorRate:    alert.ErrorRateOptions{Above: 0.1, For: time.Minute, Window: 2 * time.Minute, Severity: "page"},
		LatencyP95:   alert.LatencyOptions{Above: 1500 * time.Millisecond, For: 30 * time.Second, Window: time.Minute, Model: "chat", Severity: "minor"},
		QueueDepth:   alert.QueueDepthOptions{Above: 10, For: 10 * time.Second, Severity: "major"},
		ReloadFailed: alert.ReloadFailedOptions{For: time.Minute, Severity: "critical"},
		KeyExpiring:  alert.KeyExpiringOptions{Within: 60 * time.Hour, Severity: "info"},
		CPU:          alert.CPUOptions{Above: 1, For: 10 * time.Minute, Window: 24 * time.Hour, Severity: "low"},
		Webhook:      alert.WebhookOptions{URL: "http://127.0.0.1:9093/api/v2/alerts", Timeout: 3 * time.Second, MaxAttempts: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AlertOptions:\n got %+v\nwant %+v", got, want)
	}
	// Every threshold the file can set differs from its default, so a
	// field left untranslated shows as equal to it.
	def := reflect.ValueOf(alert.DefaultOptions())
	g := reflect.ValueOf(got)
	for i := range g.NumField() {
		if g.Type().Field(i).Name == "Webhook" {
			continue
		}
		for j := range g.Field(i).NumField() {
			if name := g.Type().Field(i).Name + "." + g.Field(i).Type().Field(j).Name; g.Field(i).Field(j).Interface() == def.Field(i).Field(j).Interface() && name != "ReloadFailed.Severity" && name != "ErrorRate.Severity" {
				// The two severities are set to another value above
				// except where the default is the natural one.
				t.Errorf("%s is its default %v: not translated?", name, g.Field(i).Field(j).Interface())
			}
		}
	}
	rules, err := alert.Rules(got)
	if err != nil {
		t.Fatalf("the rule file of a valid config: %v", err)
	}
	for _, s := range []string{
		`[2m])) > 0.1"`, `for: "1m"`, `severity: "page"`,
		`model=\"chat\"`, `> 1.5"`, `severity: "minor"`,
		`> 10 or`, `for: "10s"`, `severity: "major"`,
		`- time() < 216000"`, `severity: "info"`,
		`[1d]) / aiassist_cpu_cores > 1"`, `severity: "low"`,
	} {
		if !strings.Contains(string(rules), s) {
			t.Errorf("the rule file lacks %q:\n%s", s, rules)
		}
	}
}
