package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// spinInput asks the spin model for a run of 3000 loop steps, a few
// milliseconds: long enough that concurrent clients queue.
const spinInput = `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]},` +
	`{"name":"iterations","shape":[1,1],"datatype":"INT64","data":[3000]}]}`

func inferSpin(ctx context.Context, client *http.Client, port int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/v2/models/spin/infer", port), strings.NewReader(spinInput))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || !strings.Contains(string(body), `[1,2,3,4]`) {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return nil
}

const scalingConfig = `listeners: [{address: "127.0.0.1", port: %d}]
runtime: cores: 8
models: spin: {
	kind: "tensor"
	path: "spin.onnx"
	batching: enabled: false
	scaling: {
		min_instances: 1
		max_instances: 3
		target: {queue_per_instance: 1, for: "1s"}
		cooldown: "%s"
	}
}
`

// TestScalingUnderLoad runs the real daemon with a short-window queue
// target: eight clients make it grow from 1 to 3 instances, a reload of
// the policy keeps them, and once the load drops to one client it
// shrinks back to 1 — all seen through /metrics, with every request
// answered rightly throughout.
func TestScalingUnderLoad(t *testing.T) {
	dir := t.TempDir()
	if err := modelgen.WriteFile(filepath.Join(dir, "spin.onnx"), modelgen.SpinModel()); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	writeConfig(t, cfg, fmt.Sprintf(scalingConfig, port, "2s"))
	p := start(t, cfg)
	p.until("ready", func() bool { return p.metrics(port)[`aiassist_instances_current{model="spin"}`] == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var served, failed atomic.Int64
	var firstErr atomic.Value
	clients := func(n int, stop <-chan struct{}) *sync.WaitGroup {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				client := &http.Client{Timeout: time.Minute}
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := inferSpin(ctx, client, port); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					served.Add(1)
				}
			})
		}
		return &wg
	}
	current := func() float64 { return p.metrics(port)[`aiassist_instances_current{model="spin"}`] }

	heavy := make(chan struct{})
	wg := clients(8, heavy)
	p.until("3 instances under load", func() bool { return current() == 3 })
	m := p.metrics(port)
	if got := m[`aiassist_scaling_decisions_total{model="spin",direction="out",reason="queue"}`]; got != 2 {
		t.Errorf("out decisions for the queue = %v, want 2 (1 -> 2 -> 3)", got)
	}
	if got := m[`aiassist_instances_desired{model="spin"}`]; got != 3 {
		t.Errorf("desired = %v, want 3", got)
	}

	// A reload of the policy alone keeps the model and its instances.
	writeConfig(t, cfg, fmt.Sprintf(scalingConfig, port, "3s"))
	p.until("the reload", func() bool { return p.metrics(port)[`aiassist_config_generation`] == 2 })
	m = p.metrics(port)
	if m[`aiassist_instances_current{model="spin"}`] != 3 || m[`aiassist_scaling_decisions_total{model="spin",direction="out",reason="queue"}`] != 2 {
		t.Errorf("after a policy reload: current %v, out decisions %v; want 3 and 2 (model kept, no change)",
			m[`aiassist_instances_current{model="spin"}`], m[`aiassist_scaling_decisions_total{model="spin",direction="out",reason="queue"}`])
	}

	before := served.Load()
	close(heavy)
	wg.Wait()
	light := make(chan struct{})
	wg = clients(1, light)
	p.until("1 instance after the load", func() bool { return current() == 1 })
	close(light)
	wg.Wait()
	if served.Load() <= before {
		t.Errorf("no request was served while the instances went")
	}
	if got := p.metrics(port)[`aiassist_scaling_decisions_total{model="spin",direction="in",reason="low_load"}`]; got != 2 {
		t.Errorf("in decisions = %v, want 2 (3 -> 2 -> 1)", got)
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed while the instances changed; first: %v", n, n+served.Load(), firstErr.Load())
	}
	t.Logf("%d requests served", served.Load())
}

// TestScalingCausalLM: a causal-lm model's decode lanes grow under
// generations waiting for a sequence slot and drain away after, with
// every generation answered.
func TestScalingCausalLM(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	model, _ := filepath.Abs("../examples/models/tiny-llama")
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	writeConfig(t, cfg, fmt.Sprintf(`listeners: [{address: "127.0.0.1", port: %d}]
runtime: cores: 8
models: lm: {
	kind: "causal-lm"
	path: %q
	max_sequences: 2
	scaling: {max_instances: 2, target: {queue_per_instance: 1, for: "1s"}, cooldown: "1s"}
}
`, port, model))
	p := start(t, cfg)
	current := func() float64 { return p.metrics(port)[`aiassist_instances_current{model="lm"}`] }
	p.until("ready", func() bool { return current() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var served, failed atomic.Int64
	var firstErr atomic.Value
	clients := func(n int, stop <-chan struct{}) *sync.WaitGroup {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				client := &http.Client{Timeout: time.Minute}
				for {
					select {
					case <-stop:
						return
					default:
					}
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/v1/generate", port), strings.NewReader(`{"prompt":"Hello","max_tokens":24}`))
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err == nil {
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
						}
					}
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					served.Add(1)
				}
			})
		}
		return &wg
	}
	heavy := make(chan struct{})
	wg := clients(6, heavy)
	p.until("2 lanes under load", func() bool { return current() == 2 })
	close(heavy)
	wg.Wait()
	// One client goes on while a lane drains away.
	light := make(chan struct{})
	wg = clients(1, light)
	p.until("1 lane after the load", func() bool { return current() == 1 })
	close(light)
	wg.Wait()
	m := p.metrics(port)
	if m[`aiassist_scaling_decisions_total{model="lm",direction="out",reason="queue"}`] != 1 || m[`aiassist_scaling_decisions_total{model="lm",direction="in",reason="low_load"}`] != 1 {
		t.Errorf("decisions: out %v, in %v; want 1 and 1", m[`aiassist_scaling_decisions_total{model="lm",direction="out",reason="queue"}`], m[`aiassist_scaling_decisions_total{model="lm",direction="in",reason="low_load"}`])
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d generations failed while the lanes changed; first: %v", n, n+served.Load(), firstErr.Load())
	}
}
