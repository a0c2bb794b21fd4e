package alert

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var quantileCases = []struct {
	name string
	q    float64
	bs   []bucket // cumulative counts
	want float64
}{
	{"rank inside a middle bucket", 0.95, []bucket{{0.5, 10}, {1, 20}, {2.5, 50}, {5, 100}, {math.Inf(1), 100}}, 4.75},
	{"median", 0.5, []bucket{{0.5, 10}, {1, 20}, {2.5, 50}, {5, 100}, {math.Inf(1), 100}}, 2.5},
	{"first bucket interpolates from 0", 0.95, []bucket{{1, 100}, {2, 100}, {math.Inf(1), 100}}, 0.95},
	{"rank in +Inf gives the second-highest bound", 0.95, []bucket{{1, 10}, {2, 20}, {math.Inf(1), 100}}, 2},
	{"unsorted input", 0.95, []bucket{{math.Inf(1), 100}, {5, 100}, {0.5, 10}, {2.5, 50}, {1, 20}}, 4.75},
	{"non-monotonic counts are flattened", 0.5, []bucket{{1, 10}, {2, 5}, {4, 20}, {math.Inf(1), 20}}, 1},
	{"a non-positive first bound is returned as is", 0.25, []bucket{{-1, 10}, {1, 20}, {math.Inf(1), 20}}, -1},
	{"fractional rates", 0.9, []bucket{{0.1, 0.2}, {0.2, 0.9}, {0.4, 1.3}, {math.Inf(1), 1.4}}, 0.38},
	{"no +Inf bucket", 0.95, []bucket{{1, 10}, {2, 20}}, math.NaN()},
	{"only +Inf", 0.95, []bucket{{math.Inf(1), 10}}, math.NaN()},
	{"no observations", 0.95, []bucket{{1, 0}, {math.Inf(1), 0}}, math.NaN()},
	{"no buckets", 0.95, nil, math.NaN()},
	{"q above 1", 1.5, []bucket{{1, 10}, {math.Inf(1), 10}}, math.Inf(1)},
	{"q below 0", -0.5, []bucket{{1, 10}, {math.Inf(1), 10}}, math.Inf(-1)},
}

func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		return a == b
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}

func TestBucketQuantile(t *testing.T) {
	for _, c := range quantileCases {
		bs := append([]bucket(nil), c.bs...)
		if got := bucketQuantile(c.q, bs); !sameFloat(got, c.want) {
			t.Errorf("%s: bucketQuantile(%v) = %v, want %v", c.name, c.q, got, c.want)
		}
	}
}

// TestBucketQuantileMatchesPrometheus asks Prometheus' own engine
// (promtool's PromQL unit tests) for histogram_quantile on every finite
// case of the table, so the evaluator's p95 is Prometheus' p95.
func TestBucketQuantileMatchesPrometheus(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	var b strings.Builder
	b.WriteString("tests:\n  - interval: 1m\n    input_series:\n")
	var exprs strings.Builder
	n := 0
	for i, c := range quantileCases {
		if len(c.bs) == 0 || !finite(c.want) || c.q < 0 || c.q > 1 {
			continue
		}
		n++
		for _, bk := range c.bs {
			le := strconv.FormatFloat(bk.upper, 'g', -1, 64)
			if math.IsInf(bk.upper, 1) {
				le = "+Inf"
			}
			fmt.Fprintf(&b, "      - series: 'h_bucket{case=\"%d\",le=\"%s\"}'\n        values: '%s'\n", i, le, strconv.FormatFloat(bk.count, 'g', -1, 64))
		}
		fmt.Fprintf(&exprs, "      - expr: 'abs(histogram_quantile(%v, h_bucket{case=\"%d\"}) - %v) < bool 1e-9'\n        eval_time: 0m\n        exp_samples:\n          - labels: '{case=\"%d\"}'\n            value: 1\n",
			c.q, i, strconv.FormatFloat(bucketQuantile(c.q, append([]bucket(nil), c.bs...)), 'g', -1, 64), i)
	}
	if n < 5 {
		t.Fatalf("only %d cases to cross-check", n)
	}
	b.WriteString("    promql_expr_test:\n")
	b.WriteString(exprs.String())
	p := filepath.Join(t.TempDir(), "quantile_test.yml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, "", promtool, "test", "rules", p)
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool disagrees:\n%s\n%s", out, b.String())
	}
}
