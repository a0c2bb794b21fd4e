package generate

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine"
)

// stepGate holds a model's lanes before each step until the test lets one
// step through.
type stepGate struct{ steps chan struct{} }

func holdSteps(t *testing.T, m *Model) *stepGate {
	g := &stepGate{steps: make(chan struct{})}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	m.beforeStep = func() {
		select {
		case <-g.steps:
		case <-done: // the test is over: let the lane run out
		}
	}
	return g
}

// step lets one step run.
func (g *stepGate) step(t *testing.T) {
	t.Helper()
	select {
	case g.steps <- struct{}{}:
	case <-time.After(waitDeadline):
		t.Fatalf("no lane asked for a step within %s", waitDeadline)
	}
}

// TestDeadlineStopsAtNextToken lets a generation make a few tokens, then
// holds its lane until its deadline has passed: Generate returns a
// *engine.DeadlineError with Ran at once, and the one step the lane then
// runs drops the sequence and gives back its slot; a lane that went on
// decoding would ask for another step, which never comes.
func TestDeadlineStopsAtNextToken(t *testing.T) {
	t.Parallel()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t), MaxSequences: 2})
	g := holdSteps(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var made atomic.Int32
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := m.GenerateIDs(ctx, []int{1, 2, 3}, Request{MaxTokens: 200}, func(int) error {
			made.Add(1)
			return nil
		})
		done <- outcome{res, err}
	}()
	g.step(t) // prefill and the first decode step
	g.step(t)
	waitFor(t, "the first tokens", func() bool { return made.Load() >= 2 })
	o := await(t, "Generate to return at its deadline", done)
	var dl *engine.DeadlineError
	if !errors.As(o.err, &dl) || !dl.Ran || dl.Model != "tiny-llama" || !errors.Is(o.err, context.DeadlineExceeded) || !errors.Is(o.err, engine.ErrStopped) {
		t.Fatalf("err = %v, want a DeadlineError with Ran wrapping DeadlineExceeded", o.err)
	}
	if len(m.slots) != 1 {
		t.Fatalf("%d slots taken before the lane's next step, want 1", len(m.slots))
	}
	g.step(t)
	waitFor(t, "the slot to be given back at the next step", func() bool { return len(m.slots) == 0 })
	if n := made.Load(); n >= 200 {
		t.Errorf("%d tokens made", n)
	}
}

// TestAdmissionByServiceTime sets the measured times: 1 s a token and
// 100 s a whole generation. A generation's own estimate is the shorter of
// max_tokens tokens and a whole one; the generations waiting for a slot
// count in whole rounds of max_sequences.
func TestAdmissionByServiceTime(t *testing.T) {
	t.Parallel()
	set := metrics.NewSet()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t), MaxSequences: 1, Metrics: set})
	within := func(d time.Duration) (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), d)
	}
	ctx, cancel := within(time.Millisecond)
	defer cancel()
	if err := m.checkDeadline(ctx, 1000); err != nil {
		t.Fatalf("refused with nothing measured: %v", err)
	}
	for range engine.MinSamples {
		m.token.Observe(time.Second)
		m.whole.Observe(100 * time.Second)
	}
	f := func(left time.Duration, maxNew int, want time.Duration) {
		t.Helper()
		ctx, cancel := within(left)
		defer cancel()
		err := m.checkDeadline(ctx, maxNew)
		var ae *engine.AdmissionError
		switch {
		case want == 0 && err != nil:
			t.Errorf("%s left, %d tokens: %v, want admitted", left, maxNew, err)
		case want > 0 && (!errors.As(err, &ae) || ae.Estimated != want):
			t.Errorf("%s left, %d tokens: %v, want refused estimating %s", left, maxNew, err, want)
		}
	}
	f(3*time.Second, 5, 5*time.Second)
	f(time.Minute, 5, 0)
	f(time.Minute, 1000, 100*time.Second) // a whole generation is shorter
	f(5*time.Minute, 1000, 0)

	// Through Generate, refused before it takes a slot or a token; the
	// counter has the two refusals above and this one.
	ctx, cancel = within(3 * time.Second)
	defer cancel()
	_, err := m.Generate(ctx, Request{Prompt: "Hi", MaxTokens: 5}, nil)
	var ae *engine.AdmissionError
	if !errors.As(err, &ae) || !errors.Is(err, engine.ErrDeadlineUnreachable) || ae.Model != "tiny-llama" {
		t.Fatalf("Generate: %v, want an AdmissionError", err)
	}
	var b bytes.Buffer
	set.WritePrometheus(&b)
	if want := `aiassist_model_admission_refused_total{model="tiny-llama",reason="deadline"} 3`; !strings.Contains(b.String(), want) {
		t.Errorf("no %s in\n%s", want, b.String())
	}

	// One generation holds the only slot and two wait: two whole rounds
	// are ahead of the next one.
	g := holdSteps(t, m)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := m.Generate(context.Background(), Request{Prompt: "Hi", MaxTokens: 2}, nil)
			errs <- err
		}()
	}
	waitFor(t, "one generation running and two waiting", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.slots) == 1 && m.waiting == 2
	})
	f(time.Minute, 5, 205*time.Second)
	f(4*time.Minute, 5, 0)
	close(g.steps) // let every step through
	for range 3 {
		if err := await(t, "the generations", errs); err != nil {
			t.Error(err)
		}
	}
}
