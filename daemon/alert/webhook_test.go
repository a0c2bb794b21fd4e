package alert

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// recordSleep stands in for the wait between attempts: it records the
// backoff asked for and returns at once, so the test sees the schedule
// without waiting it out.
type recordSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *recordSleep) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (r *recordSleep) got() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

func testAlert(name string) []amAlert {
	return []amAlert{{Labels: map[string]string{"alertname": name}, Annotations: map[string]string{}, StartsAt: time.Unix(1, 0).UTC()}}
}

func counterValue(t *testing.T, set *metrics.Set, result string) float64 {
	return metricValue(t, set, `aiassist_alert_notifications_total{result="`+result+`"}`)
}

// waitFor polls cond with a deadline; the notifier works on its own
// goroutine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWebhookRetriesWithBackoff(t *testing.T) {
	f := func(name string, statuses []int, attempts int, wantPosts int, wantWaits []time.Duration, wantResult string) {
		t.Run(name, func(t *testing.T) {
			srv, posts := receiver(t, func(n int) int {
				if n <= len(statuses) {
					return statuses[n-1]
				}
				return http.StatusOK
			})
			u, _ := url.Parse(srv.URL + "/api/v2/alerts?token=tok3n")
			u.User = url.UserPassword("ops", "pa55")
			set := metrics.NewSet()
			logs := &syncBuffer{}
			rec := &recordSleep{}
			n := newNotifier(WebhookOptions{URL: u.String(), MaxAttempts: attempts, Backoff: time.Second, MaxBackoff: 3 * time.Second},
				set, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), rec.sleep)
			defer n.close()
			n.enqueue(append(testAlert("A"), testAlert("B")...))
			for i := 0; i < wantPosts; i++ {
				if as := decodeAlerts(t, next(t, posts)); len(as) != 2 {
					t.Fatalf("post %d has %d alerts", i, len(as))
				}
			}
			waitFor(t, wantResult+" counter", func() bool { return counterValue(t, set, wantResult) == 2 })
			select {
			case <-posts:
				t.Fatalf("more than %d attempts", wantPosts)
			default:
			}
			if got := rec.got(); !equalDurations(got, wantWaits) {
				t.Errorf("waits %v, want %v", got, wantWaits)
			}
			l := logs.String()
			if strings.Contains(l, "pa55") || strings.Contains(l, "tok3n") || strings.Contains(l, "ops@") {
				t.Errorf("credentials in the log:\n%s", l)
			}
			if wantResult == "failed" && !strings.Contains(l, `"url":"`+srv.URL+`/api/v2/alerts"`) {
				t.Errorf("the give-up line lacks the redacted URL:\n%s", l)
			}
		})
	}
	f("fails 3 times then OK", []int{503, 500, 429}, 5, 4, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, "sent")
	f("gives up after max attempts", []int{500, 500, 500, 500}, 3, 3, []time.Duration{time.Second, 2 * time.Second}, "failed")
	f("a 400 is not retried", []int{400}, 5, 1, nil, "failed")
	f("OK at once", nil, 5, 1, nil, "sent")
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestWebhookAttemptTimeout: a receiver that never answers costs one
// timeout per attempt, then the post is given up.
func TestWebhookAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	set := metrics.NewSet()
	rec := &recordSleep{}
	n := newNotifier(WebhookOptions{URL: srv.URL, Timeout: 20 * time.Millisecond, MaxAttempts: 2}, set, discard(), rec.sleep)
	defer n.close()
	n.enqueue(testAlert("A"))
	waitFor(t, "give up", func() bool { return counterValue(t, set, "failed") == 1 })
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Fatalf("%d attempts, want 2", calls)
	}
}

// TestWebhookQueueBounded: while the receiver hangs, enqueue never blocks
// and the queue keeps only the newest posts.
func TestWebhookQueueBounded(t *testing.T) {
	release := make(chan struct{})
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		<-release
		got <- b.String()
	}))
	defer srv.Close()
	set := metrics.NewSet()
	n := newNotifier(WebhookOptions{URL: srv.URL, QueueSize: 2}, set, discard(), nil)
	defer n.close()
	n.enqueue(testAlert("P1"))
	// Wait until the sender holds P1, so the queue is empty.
	waitFor(t, "P1 taken", func() bool { n.mu.Lock(); defer n.mu.Unlock(); return len(n.queue) == 0 })
	for _, name := range []string{"P2", "P3", "P4", "P5"} {
		n.enqueue(testAlert(name))
	}
	if v := counterValue(t, set, "dropped"); v != 2 {
		t.Fatalf("dropped %v, want 2", v)
	}
	close(release)
	var names []string
	for i := 0; i < 3; i++ {
		select {
		case b := <-got:
			for _, p := range []string{"P1", "P2", "P3", "P4", "P5"} {
				if strings.Contains(b, `"alertname":"`+p+`"`) {
					names = append(names, p)
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatal("receiver got fewer than 3 posts")
		}
	}
	if strings.Join(names, ",") != "P1,P4,P5" {
		t.Fatalf("delivered %v, want P1,P4,P5", names)
	}
}

// TestWebhookCloseDuringBackoff: closing while a retry waits returns at
// once instead of waiting out the backoff.
func TestWebhookCloseDuringBackoff(t *testing.T) {
	srv, posts := receiver(t, func(int) int { return 500 })
	n := newNotifier(WebhookOptions{URL: srv.URL, Backoff: time.Hour}, metrics.NewSet(), discard(), nil)
	n.enqueue(testAlert("A"))
	next(t, posts)
	done := make(chan struct{})
	go func() { n.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("close waited for the backoff")
	}
}

func TestRedactURL(t *testing.T) {
	u, _ := url.Parse("https://user:secret@am.example:9093/api/v2/alerts?token=x#frag")
	if got := redactURL(u); got != "https://am.example:9093/api/v2/alerts" {
		t.Fatalf("redactURL = %q", got)
	}
}
