package generate

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/internal/testpaths"
)

func tinyLlamaDir(t testing.TB) string {
	return filepath.Join(testpaths.RepoRoot(t), "examples", "models", "tiny-llama")
}

// sharedModel returns a model folder under shared/models; a missing one
// skips the test, or fails it with CI=true.
func sharedModel(t testing.TB, name string) string {
	t.Helper()
	return testpaths.SharedPath(t, filepath.Join("models", name))
}

var (
	rtOnce sync.Once
	rt     *engine.Runtime
	rtErr  error
)

func ortRuntime(t testing.TB) *engine.Runtime {
	t.Helper()
	rtOnce.Do(func() { rt, rtErr = engine.Init(engine.RuntimeOptions{}) })
	if rtErr != nil {
		t.Fatalf("ONNX Runtime: %v", rtErr)
	}
	return rt
}

// load opens the model in dir and closes it when the test ends.
func load(t testing.TB, opts Options) *Model {
	t.Helper()
	m, err := Load(ortRuntime(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func greedyIDs(t testing.TB, m *Model, prompt []int, n int) ([]int, Result) {
	t.Helper()
	var ids []int
	res, err := m.GenerateIDs(context.Background(), prompt, Request{MaxTokens: n}, func(id int) error {
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids, res
}

// recomputeGreedy is the no-cache reference the cached decode loop is
// tested against: it decodes greedily by feeding the whole sequence at
// every step with an empty past, on the model's first session.
func recomputeGreedy(t testing.TB, m *Model, prompt []int, n int) []int {
	t.Helper()
	l := m.lanes[0]
	ids := slices.Clone(prompt)
	var out []int
	for len(out) < n && len(ids) < m.context {
		res, err := l.runModel([][]int{ids}, [][]int{positions(0, len(ids))}, nil, 0, []int{0}, nil)
		if err != nil {
			t.Fatal(err)
		}
		destroyAll(res.present)
		id := argmax(res.logits[0])
		out = append(out, id)
		ids = append(ids, id)
		if m.eos[id] {
			break
		}
	}
	return out
}

// waitDeadline bounds every wait in these tests, so that a bug fails the
// test instead of hanging it.
const waitDeadline = 2 * time.Minute

// waitFor polls cond until it holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, waitDeadline)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// newGate returns wait, which blocks until open is called, and open,
// which may be called more than once and is called at t's cleanup.
func newGate(t testing.TB) (wait, open func()) {
	gate := make(chan struct{})
	var once sync.Once
	open = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open)
	return func() { <-gate }, open
}

// waitLaneLoad waits until m's first lane holds n sequences, running or
// waiting to join.
func waitLaneLoad(t testing.TB, m *Model, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d sequences assigned to the lane", n), func() bool {
		l := m.lanes[0]
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.load == n
	})
}

// await receives from ch.
func await[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitDeadline):
		t.Fatalf("gave up waiting for %s after %s", what, waitDeadline)
		panic("unreachable")
	}
}

// batchSizes reads the aiassist_generation_batch_size histogram of model
// from set: the number of decode steps, of those that ran at most
// upTo sequences, and the sequences summed over all steps.
func batchSizes(t testing.TB, set *metrics.Set, model string, upTo ...int) (steps, small, sum float64) {
	t.Helper()
	le := "1"
	if len(upTo) > 0 {
		le = strconv.Itoa(upTo[0])
	}
	var b strings.Builder
	set.WritePrometheus(&b)
	prefix := "aiassist_generation_batch_size"
	found := false
	for _, line := range strings.Split(b.String(), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case prefix + `_bucket{model="` + model + `",le="` + le + `"}`:
			dst, found = &small, true
		case prefix + `_count{model="` + model + `"}`:
			dst = &steps
		case prefix + `_sum{model="` + model + `"}`:
			dst = &sum
		default:
			continue
		}
		if _, err := fmt.Sscan(value, dst); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
	}
	if !found && steps > 0 {
		t.Fatalf("the batch size histogram has no bucket le=%q", le)
	}
	return steps, small, sum
}
