package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// forever is a number of spin steps that takes about a minute: a run that
// is not stopped makes the test fail by its own deadline rather than pass.
const forever = 1 << 24

func spinPath(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spin.onnx")
	if err := modelgen.WriteFile(path, modelgen.SpinModel()); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadSpin(t testing.TB, opts TensorModelOptions) *TensorModel {
	t.Helper()
	opts.Name, opts.Path = "spin", spinPath(t)
	m, err := LoadTensorModel(rt, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// spinInput is one row of input for the spin model, asking for n steps.
func spinInput(x [4]float32, n int64) []Tensor {
	it := make([]byte, 8)
	binary.LittleEndian.PutUint64(it, uint64(n))
	return []Tensor{
		{Name: "input", DataType: FP32, Shape: []int64{1, 4}, Data: f32Bytes(x[:])},
		{Name: "iterations", DataType: Int64, Shape: []int64{1, 1}, Data: it},
	}
}

// series reads one counter of set; "" if it is not there.
func series(set *metrics.Set, name string) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for line := range strings.SplitSeq(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// inferWithin runs Infer and fails the test if it does not return within a
// minute.
func inferWithin(t *testing.T, m *TensorModel, ctx context.Context, in []Tensor) ([]Tensor, error) {
	t.Helper()
	type result struct {
		out []Tensor
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := m.Infer(ctx, in, nil)
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-time.After(time.Minute):
		t.Fatal("Infer did not return within a minute: the run was not stopped")
		return nil, nil
	}
}

// TestRunStoppedAtDeadline gives a run of about a minute a deadline of
// 100 ms: ONNX Runtime is told to terminate it, the request gets a
// *DeadlineError with Ran, the terminated counter says so, and the
// session serves the next request.
func TestRunStoppedAtDeadline(t *testing.T) {
	set := metrics.NewSet()
	m := loadSpin(t, TensorModelOptions{Metrics: set})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := inferWithin(t, m, ctx, spinInput([4]float32{1, 2, 3, 4}, forever))
	var dl *DeadlineError
	if !errors.As(err, &dl) || !dl.Ran || dl.Model != "spin" || !errors.Is(err, ErrStopped) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrExpired) {
		t.Fatalf("err = %v, want a DeadlineError with Ran wrapping ErrStopped and DeadlineExceeded", err)
	}
	if got := series(set, `aiassist_model_runs_terminated_total{model="spin"}`); got != "1" {
		t.Errorf("aiassist_model_runs_terminated_total = %q, want 1", got)
	}
	// The stopped run's options are reset: the next run goes through.
	out, err := inferWithin(t, m, context.Background(), spinInput([4]float32{5, 6, 7, 8}, 3))
	if err != nil {
		t.Fatal(err)
	}
	if got := bytesF32(out[0].Data); !slices.Equal(got, []float32{5, 6, 7, 8}) {
		t.Errorf("output %v, want the input back", got)
	}
	if got := series(set, `aiassist_model_runs_terminated_total{model="spin"}`); got != "1" {
		t.Errorf("aiassist_model_runs_terminated_total = %q after a run that finished, want 1", got)
	}
}

// TestBatchRunsOnForOthers batches two requests and cancels one while
// they run: the run goes on for the other, which gets its answer; the
// cancelled one gets a *DeadlineError once the run is over, and nothing
// is terminated.
func TestBatchRunsOnForOthers(t *testing.T) {
	set := metrics.NewSet()
	m := loadSpin(t, TensorModelOptions{Metrics: set, Batching: BatchOptions{Enabled: true, MaxBatchSize: 2, MaxQueueDelay: time.Hour, MaxQueueSize: 8}})
	if !m.Batched() {
		t.Fatal("the spin model is not batched")
	}
	// A batch of two rows first, so that the queue then waits for two
	// requests to run them as one batch.
	two := spinInput([4]float32{}, 1)
	for i := range two {
		two[i].Shape[0] = 2
		two[i].Data = append(two[i].Data, two[i].Data...)
	}
	if _, err := inferWithin(t, m, context.Background(), two); err != nil {
		t.Fatal(err)
	}
	leaving, leave := context.WithCancel(context.Background())
	defer leave()
	var wg sync.WaitGroup
	var errLeaving, errStaying error
	var outStaying []Tensor
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, errLeaving = m.Infer(leaving, spinInput([4]float32{1, 1, 1, 1}, 600_000), nil)
	}()
	go func() {
		defer wg.Done()
		outStaying, errStaying = m.Infer(context.Background(), spinInput([4]float32{2, 3, 4, 5}, 1), nil)
	}()
	// Neither request runs alone (the queue waits an hour for a second
	// row), so a session in use means the batch of both runs.
	waitUntil(t, "the two requests to run as one batch", func() bool { return len(m.free) == 0 })
	leave()
	wg.Wait()
	if errStaying != nil {
		t.Fatalf("the request that stayed: %v", errStaying)
	}
	if got := bytesF32(outStaying[0].Data); !slices.Equal(got, []float32{2, 3, 4, 5}) {
		t.Errorf("output %v, want the input back", got)
	}
	var dl *DeadlineError
	if !errors.As(errLeaving, &dl) || !dl.Ran || !errors.Is(errLeaving, context.Canceled) {
		t.Errorf("the request that left: %v, want a DeadlineError with Ran", errLeaving)
	}
	if got := series(set, `aiassist_model_runs_terminated_total{model="spin"}`); got != "0" {
		t.Errorf("aiassist_model_runs_terminated_total = %q, want 0: a request still waited", got)
	}
}

// waitUntil polls cond for up to a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeClock advances by step at every reading, so that every run measures
// step long.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// TestAdmissionByDeadline measures runs of one second on a fake clock: a
// request with less than that left is refused at once with an
// *AdmissionError, one with more is served, and before MinSamples runs
// nothing is refused.
func TestAdmissionByDeadline(t *testing.T) {
	set := metrics.NewSet()
	clock := &fakeClock{step: time.Second}
	m := loadSpin(t, TensorModelOptions{Metrics: set, Clock: clock.Now})
	in := spinInput([4]float32{1, 2, 3, 4}, 1)
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 500*time.Millisecond)
	}
	for i := range MinSamples {
		ctx, cancel := short()
		_, err := m.Infer(ctx, in, nil)
		cancel()
		if err != nil {
			t.Fatalf("request %d, with %d runs measured: %v; want it served", i, i, err)
		}
	}
	ctx, cancel := short()
	defer cancel()
	_, err := m.Infer(ctx, in, nil)
	var ae *AdmissionError
	if !errors.As(err, &ae) || ae.Model != "spin" || ae.Estimated != time.Second || ae.Wait != 0 || ae.Deadline > 500*time.Millisecond || !errors.Is(err, ErrDeadlineUnreachable) {
		t.Fatalf("err = %v, want an AdmissionError estimating 1s", err)
	}
	if msg := err.Error(); msg != `model "spin" would take about 1s to answer, more than the `+roundDuration(ae.Deadline).String()+` left before the request's deadline` {
		t.Errorf("message %q", msg)
	}
	if got := series(set, `aiassist_model_admission_refused_total{model="spin",reason="deadline"}`); got != "1" {
		t.Errorf("aiassist_model_admission_refused_total = %q, want 1", got)
	}
	long, cancelLong := context.WithTimeout(context.Background(), time.Minute)
	defer cancelLong()
	if _, err := m.Infer(long, in, nil); err != nil {
		t.Errorf("a request with a minute left: %v", err)
	}
	if _, err := m.Infer(context.Background(), in, nil); err != nil {
		t.Errorf("a request without a deadline: %v", err)
	}
}

// TestAdmissionCountsTheQueue holds the only session with requests queued
// behind it: each full round of them ahead adds a run to the estimate.
func TestAdmissionCountsTheQueue(t *testing.T) {
	clock := &fakeClock{step: time.Second}
	m := loadSpin(t, TensorModelOptions{Clock: clock.Now, Batching: BatchOptions{MaxQueueSize: 8}})
	in := spinInput([4]float32{1, 2, 3, 4}, 1)
	for range MinSamples {
		if _, err := m.Infer(context.Background(), in, nil); err != nil {
			t.Fatal(err)
		}
	}
	held := <-m.free
	released := false
	release := func() {
		if !released {
			released = true
			m.free <- held
		}
	}
	t.Cleanup(release) // before Close, which waits for the queue
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := m.Infer(context.Background(), in, nil)
			errs <- err
		}()
	}
	// The worker holds one, waiting for the session; two are queued.
	waitUntil(t, "two requests queued", func() bool { return m.queue.Len() == 2 })
	f := func(left time.Duration, refused bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), left)
		defer cancel()
		err := m.admit(ctx)
		var ae *AdmissionError
		if refused != errors.As(err, &ae) {
			t.Fatalf("%s left: admit = %v, want refused %v", left, err, refused)
		}
		if refused && (ae.Wait != 2*time.Second || ae.Estimated != 3*time.Second) {
			t.Errorf("%s left: %+v, want 2s of wait and 3s in all", left, ae)
		}
	}
	f(2500*time.Millisecond, true)
	f(time.Minute, false)
	release()
	for range 3 {
		select {
		case err := <-errs:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the queued requests were not served")
		}
	}
}
