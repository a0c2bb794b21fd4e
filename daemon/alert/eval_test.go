package alert

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// received is one POST the test receiver got.
type received struct {
	path, user, pass, contentType string
	alerts                        []map[string]json.RawMessage
	err                           error
}

// receiver is an Alertmanager stand-in on 127.0.0.1 that hands every post
// to the test.
func receiver(t *testing.T, status func(n int) int) (*httptest.Server, chan received) {
	t.Helper()
	ch := make(chan received, 100)
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		rec := received{path: r.URL.Path, contentType: r.Header.Get("Content-Type")}
		rec.user, rec.pass, _ = r.BasicAuth()
		if r.Method != http.MethodPost {
			rec.err = &url.Error{Op: r.Method, URL: r.URL.Path, Err: http.ErrNotSupported}
		} else {
			dec := json.NewDecoder(r.Body)
			dec.DisallowUnknownFields()
			rec.err = dec.Decode(&rec.alerts)
		}
		w.WriteHeader(status(n))
		ch <- rec
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// next waits for a post, with a deadline.
func next(t *testing.T, ch chan received) received {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("receiver: %v", r.err)
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook post within 10s")
	}
	return received{}
}

type amJSON struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

// decodeAlerts checks each alert has exactly Alertmanager's fields.
func decodeAlerts(t *testing.T, r received) []amJSON {
	t.Helper()
	var out []amJSON
	for _, raw := range r.alerts {
		for k := range raw {
			switch k {
			case "labels", "annotations", "startsAt", "endsAt", "generatorURL":
			default:
				t.Errorf("unexpected field %q in a webhook alert", k)
			}
		}
		for _, k := range []string{"labels", "annotations", "startsAt", "endsAt"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("webhook alert lacks %q", k)
			}
		}
		b, _ := json.Marshal(raw)
		var a amJSON
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// TestErrorBurstFiresAndResolves drives a burst of 5xx through real
// counters in a metrics.Set; the fake clock moves 5s per evaluation. The
// error-rate alert goes pending, fires after 3m, is re-sent while firing,
// and resolves once the burst has left the 5m window; the receiver gets the
// firing and the resolved posts.
func TestErrorBurstFiresAndResolves(t *testing.T) {
	srv, posts := receiver(t, func(int) int { return http.StatusOK })
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("ops", "s3cret")
	u.Path = "/api/v2/alerts"

	src := metrics.NewSet()
	ok := src.NewCounter(`aiassist_requests_total{route="/v1/generate",model="qwen",code="200"}`)
	bad := src.NewCounter(`aiassist_requests_total{route="/v1/generate",model="qwen",code="500"}`)
	client := src.NewCounter(`aiassist_requests_total{route="/v1/generate",model="qwen",code="400"}`)

	opts := DefaultOptions()
	opts.Webhook.URL = u.String()
	start := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	h := newHarness(t, opts, start, 5*time.Second)
	h.e.gather = src.WritePrometheus
	h.e.genURL = "http://aiassist.example:8080/metrics"
	h.e.external = map[string]string{"instance": "host-a"}

	now := start
	step := func(okN, badN, clientN int) {
		ok.Add(okN)
		bad.Add(badN)
		client.Add(clientN)
		now = now.Add(5 * time.Second)
		h.clock.Set(now)
		h.e.Eval()
	}
	h.e.Eval() // baseline at start
	firingAt := time.Time{}
	for i := 0; i < 60 && firingAt.IsZero(); i++ { // up to 5m of burst
		step(40, 10, 50)
		if st := h.e.Alerts(); len(st) == 1 && st[0].State == StateFiring {
			firingAt = now
		}
	}
	if firingAt.IsZero() {
		t.Fatalf("error-rate alert did not fire during a 10%% burst; states: %+v", h.e.Alerts())
	}
	// Pending from the first step (start+5s), so firing 3m later.
	if want := start.Add(5*time.Second + 3*time.Minute); !firingAt.Equal(want) {
		t.Errorf("fired at %s, want %s (pending at the first step, then for: 3m)", firingAt, want)
	}
	if v := metricValue(t, h.set, `aiassist_alert_firing{alert="AiassistHighErrorRate"}`); v != 1 {
		t.Errorf("aiassist_alert_firing = %v, want 1", v)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"msg":"alert firing","alert":"AiassistHighErrorRate","severity":"critical","value":0.1,"threshold":0.05`) {
		t.Errorf("no firing log line with value and threshold:\n%s", logs)
	}

	r := next(t, posts)
	if r.path != "/api/v2/alerts" || r.contentType != "application/json" || r.user != "ops" || r.pass != "s3cret" {
		t.Errorf("post: path %q, content type %q, basic auth %q/%q", r.path, r.contentType, r.user, r.pass)
	}
	as := decodeAlerts(t, r)
	if len(as) != 1 {
		t.Fatalf("firing post has %d alerts", len(as))
	}
	a := as[0]
	if a.Labels["alertname"] != HighErrorRate || a.Labels["severity"] != "critical" || a.Labels["instance"] != "host-a" || len(a.Labels) != 3 {
		t.Errorf("labels %v", a.Labels)
	}
	if a.Annotations["summary"] == "" || !strings.Contains(a.Annotations["description"], "10% of requests failed") {
		t.Errorf("annotations %v", a.Annotations)
	}
	if !a.StartsAt.Equal(firingAt) || !a.EndsAt.After(now) || a.GeneratorURL != "http://aiassist.example:8080/metrics" {
		t.Errorf("startsAt %s endsAt %s (now %s) generatorURL %q", a.StartsAt, a.EndsAt, now, a.GeneratorURL)
	}

	// Still firing: re-sent after the resend interval (1m), not before.
	for i := 0; i < 13; i++ {
		step(40, 10, 50)
	}
	r = next(t, posts)
	if as := decodeAlerts(t, r); len(as) != 1 || !as[0].StartsAt.Equal(firingAt) || !as[0].EndsAt.After(now) {
		t.Errorf("re-sent firing alert: %+v", as)
	}
	select {
	case r := <-posts:
		t.Fatalf("a second post within one resend interval: %+v", r.alerts)
	default:
	}

	// The burst stops; only successes and client errors follow. Once the
	// window has no 5xx the alert resolves.
	resolvedAt := time.Time{}
	for i := 0; i < 80 && resolvedAt.IsZero(); i++ {
		step(40, 0, 50)
		if st := h.e.Alerts(); len(st) == 1 && st[0].State == StateInactive {
			resolvedAt = now
		}
	}
	if resolvedAt.IsZero() {
		t.Fatalf("alert did not resolve: %+v", h.e.Alerts())
	}
	if v := metricValue(t, h.set, `aiassist_alert_firing{alert="AiassistHighErrorRate"}`); v != 0 {
		t.Errorf("aiassist_alert_firing = %v after resolve, want 0", v)
	}
	if !strings.Contains(h.logs.String(), `"msg":"alert resolved","alert":"AiassistHighErrorRate","threshold":0.05`) {
		t.Errorf("no resolved log line:\n%s", h.logs.String())
	}
	var res amJSON
	for res.EndsAt.IsZero() || res.EndsAt.After(resolvedAt) {
		as := decodeAlerts(t, next(t, posts))
		if len(as) != 1 {
			t.Fatalf("post has %d alerts", len(as))
		}
		res = as[0]
	}
	if !res.EndsAt.Equal(resolvedAt) || !res.StartsAt.Equal(firingAt) {
		t.Errorf("resolved post: startsAt %s endsAt %s, want %s and %s", res.StartsAt, res.EndsAt, firingAt, resolvedAt)
	}
	if strings.Contains(h.logs.String(), "s3cret") {
		t.Error("the webhook password reached the log")
	}
}

// TestReloadKeepsFiringAlert: Update with new thresholds neither forgets a
// firing alert nor logs it firing again; an alert no longer crossing the
// new threshold resolves.
func TestReloadKeepsFiringAlert(t *testing.T) {
	start := time.Unix(1_900_000_000, 0)
	h := newHarness(t, DefaultOptions(), start, 5*time.Second)
	h.eval(start, "aiassist_queue_depth{model=\"qwen\"} 60\n")
	h.eval(start.Add(2*time.Minute), "aiassist_queue_depth{model=\"qwen\"} 60\n")
	if len(h.firing(QueueDepthHigh)) != 1 {
		t.Fatalf("queue alert not firing: %+v", h.e.Alerts())
	}
	o := DefaultOptions()
	o.QueueDepth.Severity = "critical"
	if err := h.e.Update(o); err != nil {
		t.Fatal(err)
	}
	h.eval(start.Add(2*time.Minute+5*time.Second), "aiassist_queue_depth{model=\"qwen\"} 60\n")
	if len(h.firing(QueueDepthHigh)) != 1 || strings.Count(h.logs.String(), `"msg":"alert firing"`) != 1 {
		t.Fatalf("after a reload: %+v\n%s", h.e.Alerts(), h.logs.String())
	}
	o.QueueDepth.Above = 100
	if err := h.e.Update(o); err != nil {
		t.Fatal(err)
	}
	h.eval(start.Add(2*time.Minute+10*time.Second), "aiassist_queue_depth{model=\"qwen\"} 60\n")
	if len(h.firing(QueueDepthHigh)) != 0 || !strings.Contains(h.logs.String(), `"msg":"alert resolved","alert":"AiassistQueueDepth","threshold":100,"firing_seconds":10,"value":60,"model":"qwen"`) {
		t.Fatalf("raised threshold: %+v\n%s", h.e.Alerts(), h.logs.String())
	}
	bad := DefaultOptions()
	bad.CPU.Above = -1
	if err := h.e.Update(bad); err == nil {
		t.Fatal("Update took a negative threshold")
	}
}

// TestLatencyModelFilter: with model set, only that model's p95 counts.
func TestLatencyModelFilter(t *testing.T) {
	o := DefaultOptions()
	o.LatencyP95.Model = "fast"
	o.LatencyP95.For = 0
	start := time.Unix(0, 0)
	h := newHarness(t, o, start, time.Minute)
	text := func(n int) string {
		var b strings.Builder
		for _, m := range []string{"slow", "fast"} {
			le5 := n
			if m == "fast" {
				le5 = 0
			}
			b.WriteString(`aiassist_request_duration_seconds_bucket{route="r",model="` + m + `",le="5"} ` + itoa(le5) + "\n")
			b.WriteString(`aiassist_request_duration_seconds_bucket{route="r",model="` + m + `",le="+Inf"} ` + itoa(n) + "\n")
		}
		return b.String()
	}
	h.eval(start, text(0))
	h.eval(start.Add(time.Minute), text(100))
	if st := h.firing(HighLatencyP95); len(st) != 1 || st[0].Labels["model"] != "fast" || st[0].Value != 5 {
		t.Fatalf("firing: %+v", st)
	}
	b, _ := Rules(o)
	if !strings.Contains(string(b), `{model=\"fast\"}`) {
		t.Errorf("rule file lacks the model filter:\n%s", b)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestCounterResetAndNewSeries: a counter that drops restarted from zero,
// and a series first seen after the start counted from zero, as
// Prometheus' rate assumes.
func TestCounterResetAndNewSeries(t *testing.T) {
	o := DefaultOptions()
	o.ErrorRate.For = 0
	start := time.Unix(0, 0)
	h := newHarness(t, o, start, time.Minute)
	h.eval(start, `aiassist_requests_total{model="m",code="200"} 1000`+"\n")
	h.eval(start.Add(time.Minute), `aiassist_requests_total{model="m",code="200"} 10`+"\n"+`aiassist_requests_total{model="m",code="500"} 10`+"\n")
	st := h.firing(HighErrorRate)
	if len(st) != 1 || st[0].Value != 0.5 {
		t.Fatalf("after a reset: %+v", h.e.Alerts())
	}
}

// TestWindowMemoryBounded: whatever the window, the ring holds at most
// ~720 slots, and evaluations more often than the step share a slot.
func TestWindowMemoryBounded(t *testing.T) {
	o := DefaultOptions()
	o.CPU.Window = 24 * time.Hour
	start := time.Unix(0, 0)
	h := newHarness(t, o, start, 5*time.Second)
	if n := len(h.e.ring.slots); n > 722 {
		t.Fatalf("ring of %d slots for a 24h window", n)
	}
	for i := 0; i < 3000; i++ {
		h.eval(start.Add(time.Duration(i)*time.Second), "process_cpu_seconds_total "+itoa(i)+"\naiassist_cpu_cores 1\n")
	}
	if h.e.ring.n > len(h.e.ring.slots) || h.e.ring.slot != 2*time.Minute || h.e.ring.n != 25 {
		t.Fatalf("ring: %d of %d slots of %s", h.e.ring.n, len(h.e.ring.slots), h.e.ring.slot)
	}
	// 2999 CPU seconds over 24h on one core.
	if st := h.e.Alerts(); len(st) != 0 {
		t.Fatalf("alerts: %+v", st)
	}
	sum := h.e.ring.sum(start.Add(2999*time.Second), 24*time.Hour)
	if got := sum.cpu[""]; got != 2999 {
		t.Fatalf("window sum %v, want 2999", got)
	}
}

// TestBadMetricsTextIsReported: malformed lines are logged once and do not
// stop the rest from being read.
func TestBadMetricsTextIsReported(t *testing.T) {
	o := DefaultOptions()
	start := time.Unix(0, 0)
	h := newHarness(t, o, start, time.Minute)
	text := "aiassist_config_last_reload_successful{ 1\naiassist_config_last_reload_successful 0\n"
	h.eval(start, text)
	h.eval(start.Add(time.Minute), text)
	if len(h.firing(ReloadFailed)) != 1 {
		t.Fatalf("good line not read: %+v", h.e.Alerts())
	}
	if n := strings.Count(h.logs.String(), "alert evaluator cannot read every metric"); n != 1 {
		t.Fatalf("%d warnings for the same bad line:\n%s", n, h.logs.String())
	}
	// Output past the cap is cut, not buffered without bound.
	h.e.gather = func(w io.Writer) {
		chunk := []byte(strings.Repeat("# padding\n", 100_000))
		for i := 0; i < 20; i++ {
			w.Write(chunk)
		}
	}
	h.e.Eval()
	if len(h.e.buf.Bytes()) > maxGather || !strings.Contains(h.logs.String(), "larger than 16 MiB") {
		t.Fatalf("buffer %d bytes; logs:\n%s", len(h.e.buf.Bytes()), h.logs.String())
	}
	// A line cut by the cap is not read: "... 60000" cut to "... 6" would
	// cross a threshold of 5.
	o.QueueDepth = QueueDepthOptions{Above: 5}
	if err := h.e.Update(o); err != nil {
		t.Fatal(err)
	}
	line := `aiassist_queue_depth{model="m"} 60000` + "\n"
	cut := len(`aiassist_queue_depth{model="m"} 6`)
	h.e.gather = func(w io.Writer) {
		pad := maxGather - cut
		w.Write([]byte(strings.Repeat("#", pad-1) + "\n"))
		w.Write([]byte(line))
	}
	h.e.Eval()
	if st := h.firing(QueueDepthHigh); len(st) != 0 {
		t.Fatalf("a cut line was read: %+v", st)
	}
}

func TestOptionsErrors(t *testing.T) {
	f := func(change func(*Options), want string) {
		t.Helper()
		o := DefaultOptions()
		change(&o)
		_, err := Rules(o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error with %q", err, want)
		}
		if _, err := NewEvaluator(o, EvaluatorOptions{Gather: func(io.Writer) {}, Metrics: metrics.NewSet(), Logger: discard()}); err == nil {
			t.Errorf("NewEvaluator took options Rules refuses (%s)", want)
		}
	}
	f(func(o *Options) { o.ErrorRate.Above = -0.1 }, "alerts.error_rate.above")
	f(func(o *Options) { o.ErrorRate.Window = 10 * time.Millisecond }, "alerts.error_rate.window: must be at least 1s")
	f(func(o *Options) { o.CPU.For = 1500 * time.Microsecond }, "alerts.cpu.for: must be a whole number of milliseconds")
	f(func(o *Options) { o.QueueDepth.Severity = "very bad" }, "alerts.queue_depth.severity")
	f(func(o *Options) { o.LatencyP95.Model = "a\nb" }, "alerts.latency_p95.model")
	f(func(o *Options) { o.LatencyP95.Window = 48 * time.Hour }, "longer than the 24h0m0s")
	f(func(o *Options) { o.Webhook.URL = "ftp://x" }, "alerts.webhook.url")
	f(func(o *Options) { o.Webhook.URL = "http://user:pw@[::1" }, "alerts.webhook.url: cannot parse")
	f(func(o *Options) { o.Webhook.URL = "http://h"; o.Webhook.MaxAttempts = -1 }, "must not be negative")

	_, err := Rules(Options{})
	if err != nil {
		t.Fatalf("zero Options: %v", err)
	}
	o := DefaultOptions()
	o.Webhook.URL = "http://user:pw@[::1"
	if _, err := Rules(o); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("error %v repeats the password", err)
	}
	if _, err := NewEvaluator(DefaultOptions(), EvaluatorOptions{}); err == nil {
		t.Error("NewEvaluator without Gather, Metrics and Logger")
	}
}

func TestHumanize(t *testing.T) {
	// Outputs of Prometheus' template functions for the same inputs.
	for _, c := range []struct {
		f    func(float64) string
		in   float64
		want string
	}{
		{humanizeDuration, 899.99, "14m 59s"},
		{humanizeDuration, 4.75, "4.75s"},
		{humanizeDuration, 0.25, "250ms"},
		{humanizeDuration, 0, "0s"},
		{humanizeDuration, 863940, "9d 23h 59m 0s"},
		{humanizeDuration, -90000, "-1d 1h 0m 0s"},
		{humanizeDuration, 3700, "1h 1m 40s"},
		{humanizePercentage, 0.1234567, "12.35%"},
		{humanizePercentage, 0.05, "5%"},
		{humanize, 1234567, "1.235M"},
		{humanize, 0.00123, "1.23m"},
		{humanize, 0, "0"},
	} {
		if got := c.f(c.in); got != c.want {
			t.Errorf("%v -> %q, want %q", c.in, got, c.want)
		}
	}
	if got, want := formatDuration(90*time.Minute+1500*time.Millisecond), "1h30m1s500ms"; got != want {
		t.Errorf("formatDuration = %q, want %q", got, want)
	}
	if got := formatDuration(240 * time.Hour); got != "10d" {
		t.Errorf("formatDuration(240h) = %q", got)
	}
}

// TestRunEvaluatesUntilCancelled: Run reads the metrics at once and stops
// with its context.
func TestRunEvaluatesUntilCancelled(t *testing.T) {
	called := make(chan struct{}, 1)
	e, err := NewEvaluator(DefaultOptions(), EvaluatorOptions{
		Gather: func(w io.Writer) {
			select {
			case called <- struct{}{}:
			default:
			}
		},
		Metrics: metrics.NewSet(), Logger: discard(), Step: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not evaluate")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestFiringGaugesExported: every alert has its 0/1 gauge from the start,
// and a second evaluator on the same set reuses them.
func TestFiringGaugesExported(t *testing.T) {
	set := metrics.NewSet()
	for i := 0; i < 2; i++ {
		e, err := NewEvaluator(DefaultOptions(), EvaluatorOptions{Gather: func(io.Writer) {}, Metrics: set, Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		e.Close()
	}
	for _, n := range Names {
		if v := metricValue(t, set, `aiassist_alert_firing{alert="`+n+`"}`); v != 0 {
			t.Errorf("%s = %v", n, v)
		}
	}
}

func TestLabelsKeyRoundTrip(t *testing.T) {
	ls := []label{{"model", "a\xff=b\"c"}, {"key", ""}, {"code", "500"}}
	back := labelsFromKey(labelsKey(ls))
	if !equalLabels(labelMap(back), labelMap(ls)) || len(back) != 3 {
		t.Fatalf("round trip: %v", back)
	}
	if labelsKey([]label{{"a", "1"}, {"b", "2"}}) != labelsKey([]label{{"b", "2"}, {"a", "1"}}) {
		t.Fatal("key depends on label order")
	}
}

// TestResolvedKeptAndResent: a resolved alert is re-sent as resolved for
// 15 minutes, then forgotten. As in Prometheus, a resend is due once more
// than the resend interval (1m) has passed, so with evaluations 1m apart
// it goes out every other one: 7 times in 15 minutes.
func TestResolvedKeptAndResent(t *testing.T) {
	srv, posts := receiver(t, func(int) int { return http.StatusOK })
	o := DefaultOptions()
	o.Webhook.URL = srv.URL
	start := time.Unix(1_900_000_000, 0).UTC()
	h := newHarness(t, o, start, 30*time.Second)
	h.eval(start, "aiassist_config_last_reload_successful 0\n")
	resolved := start.Add(30 * time.Second)
	h.eval(resolved, "aiassist_config_last_reload_successful 1\n")
	if as := decodeAlerts(t, next(t, posts)); len(as) != 1 || !as[0].EndsAt.After(start) {
		t.Fatalf("firing post: %+v", as)
	}
	if as := decodeAlerts(t, next(t, posts)); len(as) != 1 || !as[0].EndsAt.Equal(resolved) {
		t.Fatalf("resolved post: %+v", as)
	}
	resends := 0
	for m := time.Duration(1); m <= 20; m++ {
		at := resolved.Add(m * time.Minute)
		h.eval(at, "aiassist_config_last_reload_successful 1\n")
		kept := len(h.e.Alerts()) == 1
		if want := m*time.Minute <= resolvedRetention; kept != want {
			t.Fatalf("%dm after resolving: kept %v, want %v", m, kept, want)
		}
	}
	deadline := time.After(10 * time.Second)
	for resends < 7 {
		select {
		case r := <-posts:
			as := decodeAlerts(t, r)
			if len(as) != 1 || !as[0].EndsAt.Equal(resolved) {
				t.Fatalf("resent: %+v", as)
			}
			resends++
		case <-deadline:
			t.Fatalf("%d resolved resends, want 7", resends)
		}
	}
}
