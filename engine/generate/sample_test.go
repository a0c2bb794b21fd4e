package generate

import (
	"math"
	"os/exec"
	"strings"
	"testing"
)

func TestSampler(t *testing.T) {
	logits := []float32{0.1, 2, -1, 1.9, 0.5}
	f := func(req Request, history []int, want int) {
		t.Helper()
		s := newSampler(&req, 7)
		for range 50 {
			if got := s.next(logits, history); got != want {
				t.Fatalf("%+v: got %d, want %d", req, got, want)
			}
		}
	}
	f(Request{}, nil, 1)
	f(Request{Temperature: 1, TopK: 1}, nil, 1)
	f(Request{Temperature: 5, MinP: 1}, nil, 1)
	f(Request{Temperature: 1, TopP: 1e-6}, nil, 1)
	f(Request{RepetitionPenalty: 1.5}, []int{1}, 3)
	f(Request{RepetitionPenalty: 1}, []int{1}, 1)
	f(Request{Temperature: 1, TopK: 1, RepetitionPenalty: 1.5}, []int{1, 1}, 3)

	// Negative logits are multiplied: -1 * 3 = -3 loses to -2.
	s := newSampler(&Request{RepetitionPenalty: 3}, 1)
	if got := s.next([]float32{-1, -2}, []int{0}); got != 1 {
		t.Errorf("penalised negative logit: got %d", got)
	}
	if got := argmax([]float32{float32(math.NaN()), 1, 3, 3}); got != 2 {
		t.Errorf("argmax with NaN and a tie: %d", got)
	}
}

// TestSamplerDistribution draws from two tokens with probabilities 1/4
// and 3/4 and from a top_p cut that keeps only the likelier one.
func TestSamplerDistribution(t *testing.T) {
	logits := []float32{0, float32(math.Log(3))}
	count := func(req Request) float64 {
		s := newSampler(&req, 42)
		n := 0
		for range 4000 {
			n += s.next(logits, nil)
		}
		return float64(n) / 4000
	}
	if p := count(Request{Temperature: 1}); math.Abs(p-0.75) > 0.03 {
		t.Errorf("temperature 1: token 1 drawn %.3f of the time, want 0.75", p)
	}
	if p := count(Request{Temperature: 1, TopP: 0.7}); p != 1 {
		t.Errorf("top_p 0.7: token 1 drawn %.3f of the time, want always", p)
	}
	if p := count(Request{Temperature: 1, MinP: 0.5}); p != 1 {
		t.Errorf("min_p 0.5: token 1 drawn %.3f of the time, want always", p)
	}
	// A high temperature flattens towards 1/2.
	if p := count(Request{Temperature: 100}); math.Abs(p-0.5) > 0.03 {
		t.Errorf("temperature 100: token 1 drawn %.3f of the time, want about 0.5", p)
	}
}

// TestDeps keeps engine/generate a library: it may use the engine and
// its sub-packages, never the daemon, the schema or the command.
func TestDeps(t *testing.T) {
	for _, pkg := range []string{".", "../chattemplate"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for dep := range strings.FieldsSeq(string(out)) {
			if strings.HasPrefix(dep, "github.com/aiassist/aiassist/") && !strings.HasPrefix(dep, "github.com/aiassist/aiassist/engine") {
				t.Errorf("%s depends on %s; engine packages must not import the daemon, schema or cmd", pkg, dep)
			}
		}
	}
}
