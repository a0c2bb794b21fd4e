package alert

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// The promtool unit tests in testdata/rules_test.yml are written by
// TestRuleUnitTests from the in-process evaluator: each case below states,
// by hand, which alerts fire at which minute; the evaluator runs the same
// input series minute by minute and must agree; its annotations go into the
// file as exp_annotations. TestPromtoolTestRules then runs Prometheus'
// engine on that file, so Prometheus and the evaluator are checked against
// each other on every default alert, firing and not firing.

type evalCase struct {
	at     time.Duration
	alert  string
	firing []map[string]string // label sets expected to fire; empty: none
}

type unitCase struct {
	name   string
	series []inputSeries
	evals  []evalCase
}

func unitCases() []unitCase {
	qwen := map[string]string{"model": "qwen"}
	return []unitCase{{
		name: "error rate: a 10% burst of 5xx fires after 3m pending and resolves when it stops",
		series: []inputSeries{
			{`aiassist_requests_total{route="/v1/generate",model="qwen",code="200"}`, "0+90x20"},
			{`aiassist_requests_total{route="/v1/generate",model="qwen",code="500"}`, "0+10x6 60+0x14"},
		},
		evals: []evalCase{
			{3 * time.Minute, HighErrorRate, nil}, // pending since 1m
			{4 * time.Minute, HighErrorRate, []map[string]string{{}}},
			{6 * time.Minute, HighErrorRate, []map[string]string{{}}},
			{12 * time.Minute, HighErrorRate, nil}, // no 5xx in the window any more
		},
	}, {
		name: "error rate: client errors (4xx) and requests without a model (a readiness probe's 503) do not count",
		series: []inputSeries{
			{`aiassist_requests_total{route="/v2/health/ready",model="",code="503"}`, "0+100x10"},
			{`aiassist_requests_total{route="/v1/generate",model="qwen",code="200"}`, "0+50x10"},
			{`aiassist_requests_total{route="/v1/generate",model="qwen",code="404"}`, "0+50x10"},
			{`aiassist_requests_total{route="/v1/generate",model="qwen",code="429"}`, "0+20x10"},
			{`aiassist_requests_total{route="/v1/generate",model="qwen",code="503"}`, "0+2x10"},
		},
		evals: []evalCase{{8 * time.Minute, HighErrorRate, nil}},
	}, {
		name: "latency: p95 of qwen is 4.75s and fires after 5m; a fast model and requests without a model do not",
		series: []inputSeries{
			{`aiassist_request_duration_seconds_bucket{route="/v1/generate",model="qwen",le="0.5"}`, "0+10x10"},
			{`aiassist_request_duration_seconds_bucket{route="/v1/generate",model="qwen",le="1"}`, "0+20x10"},
			{`aiassist_request_duration_seconds_bucket{route="/v1/generate",model="qwen",le="2.5"}`, "0+50x10"},
			{`aiassist_request_duration_seconds_bucket{route="/v1/generate",model="qwen",le="5"}`, "0+100x10"},
			{`aiassist_request_duration_seconds_bucket{route="/v1/generate",model="qwen",le="+Inf"}`, "0+100x10"},
			{`aiassist_request_duration_seconds_bucket{route="/v2/models/{name}/infer",model="fast",le="0.5"}`, "0+100x10"},
			{`aiassist_request_duration_seconds_bucket{route="/v2/models/{name}/infer",model="fast",le="+Inf"}`, "0+100x10"},
			{`aiassist_request_duration_seconds_bucket{route="metrics",model="",le="5"}`, "0+0x10"},
			{`aiassist_request_duration_seconds_bucket{route="metrics",model="",le="+Inf"}`, "0+100x10"},
		},
		evals: []evalCase{
			{5 * time.Minute, HighLatencyP95, nil},
			{6 * time.Minute, HighLatencyP95, []map[string]string{qwen}},
		},
	}, {
		name: "queue depth: a tensor and a generation queue above 50 fire after 2m; a short queue does not",
		series: []inputSeries{
			{`aiassist_queue_depth{model="resnet"}`, "60+0x10"},
			{`aiassist_queue_depth{model="small"}`, "10+0x10"},
			{`aiassist_generation_queue_depth{model="qwen"}`, "51+0x10"},
		},
		evals: []evalCase{
			{1 * time.Minute, QueueDepthHigh, nil},
			{2 * time.Minute, QueueDepthHigh, []map[string]string{qwen, {"model": "resnet"}}},
		},
	}, {
		name: "reload failed: fires at once and resolves on the next good reload",
		series: []inputSeries{
			{`aiassist_config_last_reload_successful`, "1 1 0 0 1 1"},
		},
		evals: []evalCase{
			{1 * time.Minute, ReloadFailed, nil},
			{2 * time.Minute, ReloadFailed, []map[string]string{{}}},
			{4 * time.Minute, ReloadFailed, nil},
		},
	}, {
		name: "key expiring: fires once less than 10d are left; a key with more time does not",
		series: []inputSeries{
			{`aiassist_auth_key_expiry_timestamp_seconds{key="ops"}`, "864300+0x10"},
			{`aiassist_auth_key_expiry_timestamp_seconds{key="ci"}`, "2000000+0x10"},
		},
		evals: []evalCase{
			{5 * time.Minute, KeyExpiring, nil}, // exactly 10d left: not less
			{6 * time.Minute, KeyExpiring, []map[string]string{{"key": "ops"}}},
		},
	}, {
		name: "cpu: 1.8 of 2 cores is 90% and fires after 5m",
		series: []inputSeries{
			{`process_cpu_seconds_total`, "0+108x12"},
			{`aiassist_cpu_cores`, "2+0x12"},
		},
		evals: []evalCase{
			{9 * time.Minute, HighCPU, nil}, // above since 5m, once the window is full
			{10 * time.Minute, HighCPU, []map[string]string{{}}},
		},
	}, {
		name: "cpu: 1.8 of 4 cores is 45% and does not fire",
		series: []inputSeries{
			{`process_cpu_seconds_total`, "0+108x12"},
			{`aiassist_cpu_cores`, "4+0x12"},
		},
		evals: []evalCase{{11 * time.Minute, HighCPU, nil}},
	}}
}

// runUnitCase drives an evaluator minute by minute over c's series and
// returns, for each eval, the firing alerts.
func runUnitCase(t *testing.T, c unitCase) [][]Status {
	h := newHarness(t, DefaultOptions(), time.Unix(0, 0), time.Minute)
	var last time.Duration
	for _, ev := range c.evals {
		last = max(last, ev.at)
	}
	out := make([][]Status, len(c.evals))
	for m := time.Duration(0); m <= last; m += time.Minute {
		h.eval(time.Unix(0, 0).Add(m), textAt(t, c.series, int(m/time.Minute)))
		for i, ev := range c.evals {
			if ev.at == m {
				out[i] = h.firing(ev.alert)
			}
		}
	}
	return out
}

func TestRuleUnitTests(t *testing.T) {
	sev := map[string]string{}
	for _, r := range rules(mustNormalize(t, DefaultOptions())) {
		sev[r.name] = r.severity
	}
	var b bytes.Buffer
	b.WriteString("# promtool unit tests for rules.yml, written by TestRuleUnitTests (go test -run TestRuleUnitTests -args -update)\n")
	b.WriteString("# from the in-process evaluator's results; run: promtool test rules rules_test.yml\n")
	b.WriteString("rule_files:\n  - rules.yml\nevaluation_interval: 1m\ntests:\n")
	covered := map[string]bool{}
	for _, c := range unitCases() {
		got := runUnitCase(t, c)
		fmt.Fprintf(&b, "  - name: %s\n    interval: 1m\n    input_series:\n", quote(c.name))
		for _, s := range c.series {
			fmt.Fprintf(&b, "      - series: %s\n        values: %s\n", quote(s.series), quote(s.values))
		}
		b.WriteString("    alert_rule_test:\n")
		for i, ev := range c.evals {
			var gotLabels []map[string]string
			for _, s := range got[i] {
				gotLabels = append(gotLabels, s.Labels)
			}
			want := ev.firing
			sortLabelSets(want)
			sortLabelSets(gotLabels)
			if len(want) != 0 || len(gotLabels) != 0 {
				if !reflect.DeepEqual(gotLabels, want) {
					t.Errorf("%s: at %s %s fires for %v, want %v", c.name, ev.at, ev.alert, gotLabels, want)
				}
			}
			covered[ev.alert+fmt.Sprint(len(want) > 0)] = true
			fmt.Fprintf(&b, "      - eval_time: %s\n        alertname: %s\n", formatDuration(ev.at), quote(ev.alert))
			if len(got[i]) == 0 {
				b.WriteString("        exp_alerts: []\n")
				continue
			}
			b.WriteString("        exp_alerts:\n")
			for _, s := range got[i] {
				b.WriteString("          - exp_labels:\n")
				ls := map[string]string{"severity": sev[s.Name]}
				for k, v := range s.Labels {
					ls[k] = v
				}
				for _, k := range sortedKeys(ls) {
					fmt.Fprintf(&b, "              %s: %s\n", k, quote(ls[k]))
				}
				b.WriteString("            exp_annotations:\n")
				for _, k := range sortedKeys(s.Annotations) {
					fmt.Fprintf(&b, "              %s: %s\n", k, quote(s.Annotations[k]))
				}
			}
		}
	}
	for _, n := range Names {
		if !covered[n+"true"] || !covered[n+"false"] {
			t.Errorf("%s lacks a firing or a not-firing unit test", n)
		}
	}
	golden := filepath.Join("testdata", "rules_test.yml")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRuleUnitTests -args -update)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("%s is out of date with the evaluator (run with -args -update if the change is meant):\n%s", golden, b.String())
	}
}

func mustNormalize(t *testing.T, o Options) Options {
	t.Helper()
	n, err := o.normalize()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sortLabelSets(ls []map[string]string) {
	sort.Slice(ls, func(i, j int) bool { return fmt.Sprint(ls[i]) < fmt.Sprint(ls[j]) })
}

// The strings of the notation parser used above are part of the test's
// truth, so they get a check of their own.
func TestExpandValues(t *testing.T) {
	got := expandValues(t, "0+10x2 5 7-1x2")
	want := []float64{0, 10, 20, 5, 7, 6, 5}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if s := textAt(t, []inputSeries{{"a", "1 2"}, {`b{x="y"}`, "3"}}, 1); strings.TrimSpace(s) != "a 2" {
		t.Fatalf("textAt = %q", s)
	}
}
