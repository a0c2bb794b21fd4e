package daemon

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiassist/aiassist/schema"
)

// TestSameSpec: a reload may keep a model whose scaling block or unused
// instances changed, but not one that gains or loses its block.
func TestSameSpec(t *testing.T) {
	base := schema.Model{Name: "m", Kind: schema.KindTensor, Path: "/m.onnx", Instances: 1, IntraOpThreads: 1}
	scaled := func(max int, cooldown time.Duration) schema.Model {
		m := base
		m.Scaling = &schema.Scaling{MinInstances: 1, MaxInstances: max, OutStep: 1, InStep: 1, Cooldown: cooldown}
		return m
	}
	more := base
	more.Instances = 2
	threads := scaled(4, time.Minute)
	threads.IntraOpThreads = 2
	for _, tc := range []struct {
		name string
		a, b schema.Model
		want bool
	}{
		{"unchanged", base, base, true},
		{"instances without scaling", base, more, false},
		{"policy changed", scaled(4, time.Minute), scaled(3, time.Hour), true},
		{"scaling added", base, scaled(4, time.Minute), false},
		{"scaling removed", scaled(4, time.Minute), base, false},
		{"threads changed", scaled(4, time.Minute), threads, false},
	} {
		if got := sameSpec(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: sameSpec = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestWarnBudget: models whose max_instances could take more cores than
// the budget are warned of, at their max_instances.
func TestWarnBudget(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.cue")
	src := `models: a: {kind: "tensor", path: "a.onnx", intra_op_threads: 2, scaling: max_instances: 3}
models: b: {kind: "tensor", path: "b.onnx", instances: 2}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := schema.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	warnBudget(logger, cfg, 8) // 3×2 + 2 = 8 fits
	if buf.Len() != 0 {
		t.Errorf("warned within the budget: %s", buf.String())
	}
	warnBudget(logger, cfg, 7)
	out := buf.String()
	if !strings.Contains(out, `"cores_max":8`) || !strings.Contains(out, `"budget_cores":7`) || !strings.Contains(out, "config.cue:1:90") {
		t.Errorf("warning = %s", out)
	}
}
