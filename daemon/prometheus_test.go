package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aiassist/aiassist/daemon/alert"
	"github.com/aiassist/aiassist/daemon/observe"
)

// The monitoring test runs one daemon, one Debian prometheus and one
// Debian victoria-metrics scraping it, and checks what an operator relies
// on: promtool finds help text for every series, the exported error-rate
// rule goes pending then firing under a burst of 5xx, every panel of the
// Grafana dashboard evaluates, and VictoriaMetrics computes a quantile
// over the request histogram.

// needTool finds a binary of a Debian package. CI installs the package
// (.ci/run), so there its absence fails the test; elsewhere it skips.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; install the Debian package %s (apt-get install -y %s)", name, pkg, pkg)
		}
		t.Skipf("%s not installed (Debian package %s)", name, pkg)
	}
	return p
}

// server is a monitoring server (prometheus or victoria-metrics) run
// for the test and stopped at its end.
type server struct {
	name   string
	base   string
	log    *syncBuffer
	done   chan struct{}
	client *http.Client
}

func startServer(t *testing.T, name, base string, bin string, args ...string) *server {
	t.Helper()
	s := &server{name: name, base: base, log: &syncBuffer{}, done: make(chan struct{}), client: &http.Client{Timeout: 10 * time.Second}}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, s.log.String())
		}
	})
	return s
}

// waitReady polls path until it answers 200, within a deadline.
func (s *server) waitReady(t *testing.T, path string) {
	t.Helper()
	s.until(t, s.name+" to be ready", func() bool {
		resp, err := s.client.Get(s.base + path)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// until polls cond until it holds; it fails the test past a deadline far
// above what the servers need, or if the server exits.
func (s *server) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case <-s.done:
			t.Fatalf("%s exited while waiting for %s", s.name, what)
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sample is one element of an instant vector of the query API.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) float() float64 {
	v, _ := s.Value[1].(string)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// apiGet calls the Prometheus HTTP API (which VictoriaMetrics serves too)
// and decodes its data, or returns the API's error.
func (s *server) apiGet(path string, params url.Values, data any) error {
	resp, err := s.client.Get(s.base + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		return fmt.Errorf("%s %s: status %d, cannot decode the answer: %w", s.name, path, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s %s: status %d, %s: %s", s.name, path, resp.StatusCode, body.ErrorType, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

// query evaluates expr now; a result that is not an instant vector
// (a scalar) comes back as one sample without labels.
func (s *server) query(expr string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := s.apiGet("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var v []sample
		return v, json.Unmarshal(data.Result, &v)
	case "scalar":
		var v [2]any
		err := json.Unmarshal(data.Result, &v)
		return []sample{{Value: v}}, err
	}
	return nil, fmt.Errorf("%s: %s: result type %q, want an instant vector", s.name, expr, data.ResultType)
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
	Value  string            `json:"value"`
}

func (s *server) alerts() ([]promAlert, error) {
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	err := s.apiGet("/api/v1/alerts", nil, &data)
	return data.Alerts, err
}

// dashboardExprs returns every target expression of a Grafana dashboard
// by panel title, rows' nested panels included.
func dashboardExprs(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Title         string            `json:"title"`
		UID           string            `json:"uid"`
		SchemaVersion int               `json:"schemaVersion"`
		Panels        []json.RawMessage `json:"panels"`
		Templating    struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dash.Title == "" || dash.UID == "" || dash.SchemaVersion < 36 {
		t.Errorf("%s: title %q, uid %q, schemaVersion %d: want a title, a uid and a current schema", path, dash.Title, dash.UID, dash.SchemaVersion)
	}
	if !slices.ContainsFunc(dash.Templating.List, func(v struct {
		Name  string `json:"name"`
		Type  string `json:"type"`
		Query any    `json:"query"`
	}) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	}) {
		t.Errorf("%s: no Prometheus datasource variable named datasource", path)
	}
	out := map[string][]string{}
	ids := map[int]bool{}
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if ids[p.ID] {
				t.Errorf("%s: panel id %d used twice", path, p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: panel %q does not use the datasource variable", path, p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no targets", path, p.Title)
			}
			if _, dup := out[p.Title]; dup {
				t.Errorf("%s: two panels are titled %q", path, p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("%s: panel %q target %s has no expr", path, p.Title, tg.RefID)
				}
				out[p.Title] = append(out[p.Title], tg.Expr)
			}
		}
	}
	walk(dash.Panels)
	return out
}

// grafanaVars stands in for what Grafana substitutes before it queries:
// the dashboard's own variables at "All", and the built-in intervals at
// what Grafana picks for a 15s scrape and the default time range.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "1m",
	"$__interval", "15s",
	"$__range", "1h",
	"$instance", ".*",
	"$model", ".*",
)

// mayBeEmpty are dashboard panels whose series the test's daemon does not
// export: the test config turns no response cache on, and has no API
// keys with an expiry.
var mayBeEmpty = []string{"Cache hit ratio", "API key expiry"}

func TestPrometheus(t *testing.T) {
	requireBinary(t)
	promBin := needTool(t, "prometheus", "prometheus")
	promtool := needTool(t, "promtool", "prometheus")
	vmBin := needTool(t, "victoria-metrics", "victoria-metrics")

	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	llama, _ := filepath.Abs(filepath.Join("..", "examples", "models", "tiny-llama"))
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	// One generation slot and no queue: concurrent completions beyond the
	// first are refused with 503 queue_full, the 5xx burst of the test.
	writeConfig(t, cfg, fmt.Sprintf(`listeners: [{port: %d}]
logging: access_log: false
models: {
	demo: {kind: "tensor", path: "demo.onnx"}
	llama: {kind: "causal-lm", path: %q, max_sequences: 1, max_queue: 0}
}
`, port, llama))
	p := start(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p.until("readiness", func() bool { code, _, _ := p.get(base + "/v2/health/ready"); return code == 200 })

	complete := func(ctx context.Context) (int, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/completions", strings.NewReader(`{"model":"llama","prompt":"Hello there","max_tokens":32,"temperature":0}`))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := p.client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// Some traffic first, so that the request, batch and generation
	// families have samples when promtool reads them.
	ctx := context.Background()
	for range 3 {
		if err := infer(ctx, p.client, port, "demo"); err != nil {
			t.Fatal(err)
		}
	}
	if code, err := complete(ctx); err != nil || code != 200 {
		t.Fatalf("completion: %d %v", code, err)
	}

	t.Run("promtool check metrics", func(t *testing.T) {
		code, body, err := p.get(base + "/metrics")
		if err != nil || code != 200 {
			t.Fatalf("scrape: %d %v", code, err)
		}
		for _, fam := range []string{"aiassist_requests_total", "aiassist_request_duration_seconds", "aiassist_batch_size", "aiassist_time_to_first_token_seconds", "process_open_fds"} {
			if !strings.Contains(body, "# HELP "+fam+" ") {
				t.Errorf("the scrape has no help text for %s", fam)
			}
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		out, _ := cmd.CombinedOutput() // exit status 1 for lint remarks; the lines say which
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line = strings.TrimSpace(line); line != "" && !slices.Contains(observe.AcceptedLint, line) {
				t.Errorf("promtool check metrics: %s", line)
			}
		}
	})

	// The exported rules with short windows: the error-rate rule over 10s
	// holding for 3s, the others at their defaults.
	opts := alert.DefaultOptions()
	opts.ErrorRate.Window, opts.ErrorRate.For = 10*time.Second, 3*time.Second
	rules, err := alert.Rules(opts)
	if err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rulesFile, rules, 0o644); err != nil {
		t.Fatal(err)
	}
	scrape := fmt.Sprintf(`scrape_configs:
  - job_name: aiassist
    static_configs:
      - targets: ["127.0.0.1:%d"]
`, port)
	promCfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfg, []byte(fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files: [%q]\n%s", rulesFile, scrape)), 0o644); err != nil {
		t.Fatal(err)
	}
	vmCfg := filepath.Join(dir, "vmscrape.yml")
	if err := os.WriteFile(vmCfg, []byte("global:\n  scrape_interval: 1s\n"+scrape), 0o644); err != nil {
		t.Fatal(err)
	}
	promPort, vmPort := freePort(t), freePort(t)
	prom := startServer(t, "prometheus", fmt.Sprintf("http://127.0.0.1:%d", promPort), promBin,
		"--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "prometheus"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort), "--log.level=warn")
	vm := startServer(t, "victoria-metrics", fmt.Sprintf("http://127.0.0.1:%d", vmPort), vmBin,
		"-promscrape.config="+vmCfg, fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", vmPort),
		"-storageDataPath="+filepath.Join(dir, "victoria-metrics"), "-search.latencyOffset=1s", "-loggerLevel=WARN")
	prom.waitReady(t, "/-/ready")
	vm.waitReady(t, "/health")

	// Traffic until the end of the test: a client of the tensor model that
	// succeeds, and four of the generation model of which all but the one
	// holding the slot get 503.
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	count := func(code int) { mu.Lock(); codes[code]++; mu.Unlock() }
	defer func() { stopTraffic(); wg.Wait() }()
	wg.Go(func() {
		for trafficCtx.Err() == nil {
			if err := infer(trafficCtx, p.client, port, "demo"); err == nil {
				count(200)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	for range 4 {
		wg.Go(func() {
			for trafficCtx.Err() == nil {
				if code, err := complete(trafficCtx); err == nil {
					count(code)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}

	t.Run("error-rate alert pending then firing", func(t *testing.T) {
		var states []string
		prom.until(t, alert.HighErrorRate+" firing in Prometheus", func() bool {
			as, err := prom.alerts()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range as {
				if a.Labels["alertname"] != alert.HighErrorRate {
					continue
				}
				if a.Labels["severity"] != "critical" {
					t.Errorf("%s has severity %q, want critical", a.Labels["alertname"], a.Labels["severity"])
				}
				if len(states) == 0 || states[len(states)-1] != a.State {
					states = append(states, a.State)
				}
				return a.State == "firing"
			}
			return false
		})
		if !slices.Equal(states, []string{"pending", "firing"}) {
			t.Errorf("%s went through %v, want pending then firing", alert.HighErrorRate, states)
		}
		mu.Lock()
		t.Logf("%s went through %v; answers so far by status: %v", alert.HighErrorRate, states, codes)
		mu.Unlock()
	})

	t.Run("grafana dashboard", func(t *testing.T) {
		panels := dashboardExprs(t, filepath.Join("..", "examples", "grafana", "aiassist.json"))
		if len(panels) < 12 {
			t.Fatalf("the dashboard has %d panels with queries, want the dozen the issue lists", len(panels))
		}
		for title, exprs := range panels {
			for _, e := range exprs {
				q := grafanaVars.Replace(e)
				if strings.Contains(q, "$") {
					t.Errorf("panel %q: %s: a variable the test does not substitute", title, e)
					continue
				}
				res, err := prom.query(q)
				if err != nil {
					t.Errorf("panel %q: %v", title, err)
					continue
				}
				if len(res) == 0 && !slices.Contains(mayBeEmpty, title) {
					t.Errorf("panel %q: %s: no data", title, q)
				}
				// The same dashboard over VictoriaMetrics (a Prometheus
				// datasource pointed at it) must parse and run too; its
				// data lags, so only errors count there.
				if _, err := vm.query(q); err != nil {
					t.Errorf("panel %q: %v", title, err)
				}
			}
		}
	})

	t.Run("victoria-metrics histogram_quantile", func(t *testing.T) {
		const q = `histogram_quantile(0.95, sum by (le) (rate(aiassist_request_duration_seconds_bucket[1m])))`
		var v float64
		vm.until(t, "a p95 from victoria-metrics", func() bool {
			res, err := vm.query(q)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 {
				return false
			}
			v = res[0].float()
			return !math.IsNaN(v)
		})
		// The quantile falls within the histogram's finite buckets.
		if v <= 0 || v > 60 {
			t.Errorf("%s = %v, want a duration within the buckets", q, v)
		}
		t.Logf("victoria-metrics: %s = %v", q, v)
	})
}
