package alert

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// tool finds a binary of Debian's prometheus or victoria-metrics package.
// In CI it must be there; elsewhere its absence skips the test.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; install the Debian package %s (apt-get install -y %s)", name, pkg, pkg)
		}
		t.Skipf("%s not installed (Debian package %s)", name, pkg)
	}
	return p
}

func run(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRulesGolden(t *testing.T) {
	got, err := Rules(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "rules.yml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRulesGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Rules(DefaultOptions()) differs from %s (run with -update if the change is meant):\n%s", golden, got)
	}
	again, _ := Rules(DefaultOptions())
	if !bytes.Equal(got, again) {
		t.Error("Rules is not deterministic")
	}
	// The seed's rule, recognisable in the file.
	for _, s := range []string{`alert: "AiassistHighErrorRate"`, `for: "3m"`, `severity: "critical"`, "> 0.05", "[5m]"} {
		if !bytes.Contains(got, []byte(s)) {
			t.Errorf("rule file lacks %q", s)
		}
	}
}

// variants are non-default thresholds that the tools must accept too:
// compound durations, a model filter with characters to escape, odd
// severities.
func variants() map[string]Options {
	v := map[string]Options{"default": DefaultOptions()}
	o := DefaultOptions()
	o.ErrorRate = ErrorRateOptions{Above: 0.001, For: 90 * time.Second, Window: 150 * time.Second, Severity: "page"}
	o.LatencyP95 = LatencyOptions{Above: 1500 * time.Millisecond, For: 0, Window: 26 * time.Hour / 2, Model: `qwen "chat"\v2`, Severity: "no"}
	o.QueueDepth = QueueDepthOptions{Above: 1e6, For: time.Hour}
	o.KeyExpiring = KeyExpiringOptions{Within: 36 * time.Hour}
	o.CPU = CPUOptions{Above: 1.5, For: 10 * time.Second, Window: 2 * time.Minute}
	v["odd"] = o
	return v
}

func writeVariants(t *testing.T) map[string]string {
	dir := t.TempDir()
	files := map[string]string{}
	for name, o := range variants() {
		b, err := Rules(o)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+".yml")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	return files
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	for name, p := range writeVariants(t) {
		out := run(t, "", promtool, "check", "rules", p)
		if !strings.Contains(out, "6 rules found") {
			t.Errorf("%s: promtool found other than 6 rules:\n%s", name, out)
		}
	}
}

// TestPromtoolTestRules runs the committed unit tests: every default alert
// firing and not firing, on Prometheus' own engine.
func TestPromtoolTestRules(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	out := run(t, "testdata", promtool, "test", "rules", "rules_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
}

func TestVmalertDryRun(t *testing.T) {
	vmalert := tool(t, "vmalert", "victoria-metrics")
	for name, p := range writeVariants(t) {
		t.Run(name, func(t *testing.T) {
			run(t, t.TempDir(), vmalert, "-dryRun", "-rule="+p, "-loggerLevel=ERROR")
		})
	}
}

// TestToolsRejectBrokenRules proves the tool tests can fail: a file with a
// broken expression or template must not pass either tool.
func TestToolsRejectBrokenRules(t *testing.T) {
	promtool, vmalert := tool(t, "promtool", "prometheus"), tool(t, "vmalert", "victoria-metrics")
	b, _ := Rules(DefaultOptions())
	for what, r := range map[string][2]string{
		"expression": {"histogram_quantile(0.95,", "histogram_quantile(0.95"},
		"template":   {"humanizePercentage }}", "noSuchFunction }}"},
	} {
		bad := bytes.Replace(b, []byte(r[0]), []byte(r[1]), 1)
		if bytes.Equal(bad, b) {
			t.Fatalf("%q is not in the rule file", r[0])
		}
		p := filepath.Join(t.TempDir(), "bad.yml")
		if err := os.WriteFile(p, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := exec.Command(promtool, "check", "rules", p).Run(); err == nil {
			t.Errorf("promtool accepted a broken %s", what)
		}
		cmd := exec.Command(vmalert, "-dryRun", "-rule="+p, "-loggerLevel=ERROR")
		cmd.Dir = t.TempDir()
		if err := cmd.Run(); err == nil {
			t.Errorf("vmalert accepted a broken %s", what)
		}
	}
}
