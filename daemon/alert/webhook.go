package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// amAlert is one alert of Alertmanager's POST /api/v2/alerts body.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// post is one queued request body and how many alerts it carries.
type post struct {
	body []byte
	n    int
}

// notifier posts alerts to the webhook from one goroutine: the evaluator
// only appends to a bounded queue, so a slow or dead receiver never holds
// it up.
type notifier struct {
	opts    WebhookOptions
	url     string // with userinfo: net/http sends it as basic auth
	safeURL string // for logs
	client  *http.Client
	log     *slog.Logger
	sleep   func(ctx context.Context, d time.Duration) error

	sent, failed, dropped *metrics.Counter

	mu    sync.Mutex
	queue []post
	wake  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func (w WebhookOptions) withDefaults() WebhookOptions {
	if w.Timeout == 0 {
		w.Timeout = 10 * time.Second
	}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = 5
	}
	if w.Backoff == 0 {
		w.Backoff = time.Second
	}
	if w.MaxBackoff == 0 {
		w.MaxBackoff = 30 * time.Second
	}
	if w.MaxBackoff < w.Backoff {
		w.MaxBackoff = w.Backoff
	}
	if w.QueueSize == 0 {
		w.QueueSize = 64
	}
	if w.ResendEvery == 0 {
		w.ResendEvery = time.Minute
	}
	return w
}

// newNotifier starts the sender. opts must have passed check. sleep is the
// wait between attempts; nil waits on a timer (tests pass their own to see
// the backoff without waiting it out).
func newNotifier(opts WebhookOptions, set *metrics.Set, log *slog.Logger, sleep func(context.Context, time.Duration) error) *notifier {
	opts = opts.withDefaults()
	u, _ := url.Parse(opts.URL) // checked by WebhookOptions.check
	if sleep == nil {
		sleep = sleepCtx
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{
		opts: opts, url: opts.URL, safeURL: redactURL(u), log: log, sleep: sleep,
		client: &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirect is a misconfigured URL; following it could carry
			// the basic-auth credentials somewhere unexpected.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		sent:    set.GetOrCreateCounter(`aiassist_alert_notifications_total{result="sent"}`),
		failed:  set.GetOrCreateCounter(`aiassist_alert_notifications_total{result="failed"}`),
		dropped: set.GetOrCreateCounter(`aiassist_alert_notifications_total{result="dropped"}`),
		wake:    make(chan struct{}, 1),
		ctx:     ctx, cancel: cancel, done: make(chan struct{}),
	}
	go n.run()
	return n
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// enqueue adds one post of alerts; when the queue is full the oldest post
// goes, since a later resend repeats the current state anyway.
func (n *notifier) enqueue(as []amAlert) {
	body, err := json.Marshal(as)
	if err != nil {
		n.log.Error("cannot encode alerts for the webhook", "err", err)
		return
	}
	n.mu.Lock()
	if len(n.queue) >= n.opts.QueueSize {
		n.log.Warn("alert webhook queue is full; dropping the oldest post", "url", n.safeURL, "alerts", n.queue[0].n)
		n.dropped.Add(n.queue[0].n)
		n.queue = n.queue[1:]
	}
	n.queue = append(n.queue, post{body: body, n: len(as)})
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) close() {
	n.cancel()
	<-n.done
}

func (n *notifier) run() {
	defer close(n.done)
	for {
		n.mu.Lock()
		var p post
		ok := len(n.queue) > 0
		if ok {
			p, n.queue = n.queue[0], n.queue[1:]
		}
		n.mu.Unlock()
		if !ok {
			select {
			case <-n.ctx.Done():
				return
			case <-n.wake:
			}
			continue
		}
		n.deliver(p)
		if n.ctx.Err() != nil {
			return
		}
	}
}

// deliver tries p up to MaxAttempts times with exponential backoff. Only
// failures a retry can cure are retried: network errors, timeouts, 5xx,
// 408 and 429.
func (n *notifier) deliver(p post) {
	wait := n.opts.Backoff
	var err error
	attempt := 1
	for ; ; attempt++ {
		var retry bool
		retry, err = n.attempt(p.body)
		if err == nil {
			n.sent.Add(p.n)
			return
		}
		if n.ctx.Err() != nil {
			return
		}
		if !retry || attempt >= n.opts.MaxAttempts {
			break
		}
		n.log.Debug("alert webhook post failed; retrying", "url", n.safeURL, "attempt", attempt, "retry_in_seconds", wait.Seconds(), "err", err)
		if n.sleep(n.ctx, wait) != nil {
			return
		}
		wait = min(wait*2, n.opts.MaxBackoff)
	}
	n.log.Warn("alert webhook post failed; giving up", "url", n.safeURL, "attempts", attempt, "alerts", p.n, "err", err)
	n.failed.Add(p.n)
}

func (n *notifier) attempt(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("cannot build the request; check alerts.webhook.url")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "aiassistd")
	resp, err := n.client.Do(req)
	if err != nil {
		// url.Error repeats the URL with its user name and query; keep
		// only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c >= 500 || c == http.StatusTooManyRequests || c == http.StatusRequestTimeout:
		return true, fmt.Errorf("receiver answered %s", resp.Status)
	default:
		return false, fmt.Errorf("receiver answered %s; check alerts.webhook.url (an Alertmanager takes POST /api/v2/alerts)", resp.Status)
	}
}
