package daemon_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// freePorts returns n distinct loopback ports nothing listens on now.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// TestReloadUnderLoad rewrites the config of a running aiassistd 50 times
// while 8 clients call the model every state serves, on the listener
// every state has. The changes add and remove a model, change the demo
// model's instances and batching (so it is reloaded), the server's body
// limit (so a new fasthttp.Server takes over) and the request timeout,
// and move a second listener between two ports and away; every fifth
// file is invalid CUE or names a model file that does not exist. It checks
// that no client request fails, that the generation counts every valid
// file and only those, and that after an invalid one the old state still
// serves: its models, its listeners, and last_reload_successful 0.
func TestReloadUnderLoad(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "models", "demo.onnx"))
	writeDemo(t, filepath.Join(dir, "models", "extra.onnx"))
	ports := freePorts(t, 3)
	fixed, seconds := ports[0], []int{0, ports[1], ports[2]}

	type served struct {
		extra  bool
		second int // port of the second listener; 0 for none
	}
	render := func(i int, s served) string {
		var b strings.Builder
		fmt.Fprintf(&b, "listeners: [{port: %d}", fixed)
		if s.second != 0 {
			fmt.Fprintf(&b, ", {port: %d}", s.second)
		}
		b.WriteString("]\nlogging: access_log: false\n")
		fmt.Fprintf(&b, "server: {request_timeout: \"%ds\", max_body_bytes: %d}\n", 30+i, (1+i%3)<<20)
		fmt.Fprintf(&b, "models: demo: {kind: \"tensor\", path: \"models/demo.onnx\", instances: %d, batching: {max_batch_size: %d, max_queue_delay: \"%dms\", max_queue_size: %d}}\n",
			1+i%2, 4<<(i%3), 1+i%3, 64+i)
		if s.extra {
			b.WriteString("models: extra: {kind: \"tensor\", path: \"models/extra.onnx\", batching: enabled: false}\n")
		}
		return b.String()
	}
	cfg := filepath.Join(dir, "config.cue")
	cur := served{}
	writeConfig(t, cfg, render(0, cur))
	p := start(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", fixed)
	p.until("readiness", func() bool { code, _, _ := p.get(base + "/v2/health/ready"); return code == 200 })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var ok, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := infer(ctx, client, fixed, "demo")
				switch {
				case err == nil:
					ok.Add(1)
				case ctx.Err() != nil:
				default:
					failed.Add(1)
					failMu.Lock()
					if len(failures) < 10 {
						failures = append(failures, err.Error())
					}
					failMu.Unlock()
				}
			}
		})
	}

	metric := func(name string) float64 {
		m := p.metrics(fixed)
		if m == nil {
			t.Fatalf("cannot scrape metrics")
		}
		return m[name]
	}
	status := func(url string) int {
		code, _, err := p.get(url)
		if err != nil {
			return 0
		}
		return code
	}
	// check asserts that s is what the daemon serves.
	check := func(i int, s served, prevSecond int) {
		t.Helper()
		want := 404
		if s.extra {
			want = 200
		}
		if got := status(base + "/v2/models/extra/ready"); got != want {
			t.Errorf("step %d: GET /v2/models/extra/ready = %d, want %d", i, got, want)
		}
		if err := infer(ctx, p.client, fixed, "demo"); err != nil {
			t.Errorf("step %d: demo: %v", i, err)
		}
		if s.second != 0 {
			if got := status(fmt.Sprintf("http://127.0.0.1:%d/v2/health/ready", s.second)); got != 200 {
				t.Errorf("step %d: second listener :%d answers %d, want 200", i, s.second, got)
			}
		}
		if prevSecond != 0 && prevSecond != s.second {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", prevSecond))
			if err == nil {
				c.Close()
				t.Errorf("step %d: removed listener :%d still accepts", i, prevSecond)
			}
		}
	}

	valid, invalid := 0, 0
	prevSecond := 0
	for i := 1; i <= 50; i++ {
		switch i % 10 {
		case 4: // invalid CUE
			invalid++
			writeConfig(t, cfg, render(i, cur)+"models: broken: {\n")
		case 8: // valid CUE, but the model file does not exist
			invalid++
			writeConfig(t, cfg, render(i, cur)+"models: ghost: {kind: \"tensor\", path: \"models/missing.onnx\"}\n")
		default:
			valid++
			prevSecond = cur.second
			cur = served{extra: valid%2 == 1, second: seconds[valid%3]}
			writeConfig(t, cfg, render(i, cur))
		}
		if i%10 == 4 || i%10 == 8 {
			p.until(fmt.Sprintf("step %d: failure %d", i, invalid), func() bool {
				return metric(`aiassist_config_reloads_total{result="failure"}`) == float64(invalid)
			})
			if got := metric("aiassist_config_last_reload_successful"); got != 0 {
				t.Errorf("step %d: last_reload_successful = %v after an invalid file, want 0", i, got)
			}
		} else {
			p.until(fmt.Sprintf("step %d: generation %d", i, 1+valid), func() bool {
				return metric("aiassist_config_generation") == float64(1+valid)
			})
			if got := metric("aiassist_config_last_reload_successful"); got != 1 {
				t.Errorf("step %d: last_reload_successful = %v, want 1", i, got)
			}
		}
		if got := metric("aiassist_config_generation"); got != float64(1+valid) {
			t.Fatalf("step %d: generation %v, want %d", i, got, 1+valid)
		}
		check(i, cur, prevSecond)
	}
	cancel()
	wg.Wait()

	m := p.metrics(fixed)
	if got := m[`aiassist_config_reloads_total{result="success"}`]; got != float64(valid) {
		t.Errorf("reloads_total{result=\"success\"} = %v, want %d", got, valid)
	}
	if got := m[`aiassist_config_reloads_total{result="failure"}`]; got != float64(invalid) {
		t.Errorf("reloads_total{result=\"failure\"} = %v, want %d", got, invalid)
	}
	if failed.Load() > 0 || ok.Load() == 0 {
		t.Errorf("%d requests failed, %d succeeded; first failures:\n%s", failed.Load(), ok.Load(), strings.Join(failures, "\n"))
	}
	t.Logf("%d valid and %d invalid files; %d requests, none failed", valid, invalid, ok.Load())
	for _, line := range strings.Split(p.log.String(), "\n") {
		if strings.Contains(line, "reload failed") && !strings.Contains(line, "config.cue:") && !strings.Contains(line, "models.ghost") {
			t.Errorf("a failed reload's log line names neither the file position nor the model: %s", line)
		}
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}
