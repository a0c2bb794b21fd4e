package alert

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// fakeClock is the evaluator's clock in tests: time moves only when the
// test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// exposition is what Gather writes: the test sets it before each Eval.
type exposition struct {
	mu   sync.Mutex
	text string
}

func (x *exposition) Set(s string) {
	x.mu.Lock()
	x.text = s
	x.mu.Unlock()
}

func (x *exposition) Gather(w io.Writer) {
	x.mu.Lock()
	defer x.mu.Unlock()
	io.WriteString(w, x.text)
}

type harness struct {
	e     *Evaluator
	clock *fakeClock
	expo  *exposition
	logs  *syncBuffer
	set   *metrics.Set
}

func newHarness(t *testing.T, opts Options, start time.Time, step time.Duration) *harness {
	t.Helper()
	h := &harness{clock: &fakeClock{t: start}, expo: &exposition{}, logs: &syncBuffer{}, set: metrics.NewSet()}
	e, err := NewEvaluator(opts, EvaluatorOptions{
		Gather:  h.expo.Gather,
		Metrics: h.set,
		Logger:  slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:     h.clock.Now,
		Step:    step,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	h.e = e
	return h
}

// eval sets the clock and the metrics text, then evaluates once.
func (h *harness) eval(at time.Time, text string) {
	h.clock.Set(at)
	h.expo.Set(text)
	h.e.Eval()
}

func (h *harness) firing(name string) []Status {
	var out []Status
	for _, s := range h.e.Alerts() {
		if s.Name == name && s.State == StateFiring {
			out = append(out, s)
		}
	}
	return out
}

// metricValue reads one series of set as Prometheus would scrape it.
func metricValue(t *testing.T, set *metrics.Set, series string) float64 {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("series %s not exported:\n%s", series, b.String())
	return 0
}

// expandValues reads promtool's series notation: "a+bxn" is a, a+b, ...,
// a+n*b; "a-bxn" counts down; a plain number is one sample.
func expandValues(t *testing.T, s string) []float64 {
	t.Helper()
	var out []float64
	for _, tok := range strings.Fields(s) {
		x := strings.IndexByte(tok, 'x')
		if x < 0 {
			v, err := strconv.ParseFloat(tok, 64)
			if err != nil {
				t.Fatalf("bad value %q", tok)
			}
			out = append(out, v)
			continue
		}
		n, err := strconv.Atoi(tok[x+1:])
		if err != nil {
			t.Fatalf("bad repeat in %q", tok)
		}
		head := tok[:x]
		sign := strings.LastIndexAny(head, "+-")
		if sign <= 0 {
			t.Fatalf("bad term %q", tok)
		}
		a, err1 := strconv.ParseFloat(head[:sign], 64)
		b, err2 := strconv.ParseFloat(head[sign+1:], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad term %q", tok)
		}
		if head[sign] == '-' {
			b = -b
		}
		for i := 0; i <= n; i++ {
			out = append(out, a+float64(i)*b)
		}
	}
	return out
}

type inputSeries struct {
	series string // as in promtool: name{labels}
	values string
}

// textAt is the exposition at sample index i: each series that has a
// value there.
func textAt(t *testing.T, in []inputSeries, i int) string {
	var b strings.Builder
	for _, s := range in {
		vs := expandValues(t, s.values)
		if i < len(vs) {
			fmt.Fprintf(&b, "%s %s\n", s.series, strconv.FormatFloat(vs[i], 'g', -1, 64))
		}
	}
	return b.String()
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
