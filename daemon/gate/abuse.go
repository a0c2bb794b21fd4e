package gate

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Threshold is "Count events within Window". A zero Count turns the check
// off.
type Threshold struct {
	Count  int
	Window time.Duration
}

// AbuseOptions configures abuse detection (the seed's Falco rule, inside
// the gateway): failed authentications and request bursts, counted per
// client IP and per key, over sliding windows.
type AbuseOptions struct {
	// AuthFailures is the number of failed authentications (401, or a
	// key used from an address it does not allow) that marks abuse.
	AuthFailures Threshold
	// Requests is the number of inference requests that marks a burst.
	Requests Threshold
	// BlockFor, when positive, refuses an IP or key that crossed a
	// threshold for this long; zero only logs and counts.
	BlockFor time.Duration
	// BlockStatus is the refusal's status: 429 (default) or 403.
	BlockStatus int
	// MaxTracked bounds the IPs and the keys tracked, each; the least
	// recently seen is dropped first. Default DefaultMaxTracked.
	MaxTracked int
}

// DefaultMaxTracked is AbuseOptions.MaxTracked's default: about 1 MiB
// per table.
const DefaultMaxTracked = 10000

// Abuse reasons, the values of aiassist_abuse_events_total's label.
const (
	ReasonAuthFailures = "auth_failures"
	ReasonRequestBurst = "request_burst"
)

// slidingWindow estimates the events in the last window from the count
// of the current fixed window and a share of the previous one: two
// counters instead of a timestamp per event.
type slidingWindow struct {
	start     int64 // current window's start, unix nanoseconds
	prev, cur uint32
	lastEvent int64 // when the threshold last fired; 0: never
}

func (w *slidingWindow) add(now int64, size int64) float64 {
	switch elapsed := now - w.start; {
	case elapsed >= 2*size || elapsed < 0:
		w.start, w.prev, w.cur = now, 0, 0
	case elapsed >= size:
		w.start, w.prev, w.cur = w.start+size, w.cur, 0
	}
	if w.cur < math.MaxUint32 {
		w.cur++
	}
	share := 1 - float64(now-w.start)/float64(size)
	return float64(w.prev)*share + float64(w.cur)
}

// fire tells whether the threshold is crossed and not yet reported in
// this window.
func (w *slidingWindow) fire(now int64, count float64, t Threshold) bool {
	if count < float64(t.Count) {
		return false
	}
	if w.lastEvent != 0 && now-w.lastEvent < int64(t.Window) {
		return false
	}
	w.lastEvent = now
	return true
}

type abuseEntry[K comparable] struct {
	key          K
	auth, burst  slidingWindow
	blockedUntil int64
	prev, next   *abuseEntry[K] // most recently seen first
}

// table tracks subjects of one kind with bounded memory.
type table[K comparable] struct {
	mu         sync.Mutex
	m          map[K]*abuseEntry[K]
	head, tail *abuseEntry[K]
	max        int
}

func newTable[K comparable](max int) *table[K] {
	return &table[K]{m: map[K]*abuseEntry[K]{}, max: max}
}

func (t *table[K]) unlink(e *abuseEntry[K]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		t.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		t.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (t *table[K]) pushFront(e *abuseEntry[K]) {
	e.next = t.head
	if t.head != nil {
		t.head.prev = e
	}
	t.head = e
	if t.tail == nil {
		t.tail = e
	}
}

// get returns k's entry, made (evicting the least recently seen) if
// needed. The caller holds t.mu.
func (t *table[K]) get(k K) *abuseEntry[K] {
	if e, ok := t.m[k]; ok {
		if t.head != e {
			t.unlink(e)
			t.pushFront(e)
		}
		return e
	}
	for len(t.m) >= t.max && t.tail != nil {
		old := t.tail
		t.unlink(old)
		delete(t.m, old.key)
	}
	e := &abuseEntry[K]{key: k}
	t.m[k] = e
	t.pushFront(e)
	return e
}

// blockedFor returns how long k is still blocked, without tracking it.
func (t *table[K]) blockedFor(now int64, k K) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.m[k]; ok && e.blockedUntil > now {
		return time.Duration(e.blockedUntil - now)
	}
	return 0
}

func (t *table[K]) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// event is a crossed threshold to report.
type event struct {
	reason string
	count  float64
	fired  bool
	block  time.Duration // still blocked for; 0: not blocked
}

// note counts one event of a kind for k and reports whether it crossed the
// threshold now or k is blocked.
func (t *table[K]) note(now int64, k K, burst bool, th Threshold, blockFor time.Duration) event {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.get(k)
	w, reason := &e.auth, ReasonAuthFailures
	if burst {
		w, reason = &e.burst, ReasonRequestBurst
	}
	ev := event{reason: reason}
	ev.count = w.add(now, int64(th.Window))
	if w.fire(now, ev.count, th) {
		ev.fired = true
		if blockFor > 0 {
			e.blockedUntil = max(e.blockedUntil, now+int64(blockFor))
		}
	}
	if e.blockedUntil > now {
		ev.block = time.Duration(e.blockedUntil - now)
	}
	return ev
}

// abuse is the detector's state; it outlives a Gate when New is given
// Options.Carry, so a reload does not lift blocks.
type abuse struct {
	ips  *table[netip.Addr]
	keys *table[string]
}

// abuseCheck is a Gate's view of the detector: its thresholds, logger
// and counters over possibly shared tables.
type abuseCheck struct {
	*abuse
	opts   AbuseOptions
	log    *slog.Logger
	events map[string]*metrics.Counter
}

func newAbuseCheck(o AbuseOptions, log *slog.Logger, set *metrics.Set, carry *abuse) (*abuseCheck, error) {
	if o.MaxTracked <= 0 {
		o.MaxTracked = DefaultMaxTracked
	}
	switch o.BlockStatus {
	case 0:
		o.BlockStatus = 429
	case 429, 403:
	default:
		return nil, fmt.Errorf("abuse: block status %d must be 429 or 403", o.BlockStatus)
	}
	for _, th := range []struct {
		name string
		t    Threshold
	}{{"auth_failures", o.AuthFailures}, {"requests", o.Requests}} {
		if th.t.Count < 0 || th.t.Count > 0 && th.t.Window <= 0 {
			return nil, fmt.Errorf("abuse: %s needs a positive count and window", th.name)
		}
	}
	a := carry
	if a == nil {
		a = &abuse{ips: newTable[netip.Addr](o.MaxTracked), keys: newTable[string](o.MaxTracked)}
	} else {
		a.ips.mu.Lock()
		a.ips.max = o.MaxTracked
		a.ips.mu.Unlock()
		a.keys.mu.Lock()
		a.keys.max = o.MaxTracked
		a.keys.mu.Unlock()
	}
	c := &abuseCheck{abuse: a, opts: o, log: log, events: map[string]*metrics.Counter{}}
	for _, r := range []string{ReasonAuthFailures, ReasonRequestBurst} {
		c.events[r] = set.GetOrCreateCounter(`aiassist_abuse_events_total{reason="` + r + `"}`)
	}
	return c, nil
}

// ipSubject is what an address is tracked under: IPv6 clients by their
// /64, since one host usually holds a whole /64.
func ipSubject(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func (c *abuseCheck) report(ev event, th Threshold, keyID string, ip netip.Addr) {
	if !ev.fired {
		return
	}
	c.events[ev.reason].Inc()
	c.log.Warn("abuse",
		"reason", ev.reason,
		"key_id", keyID,
		"ip", ip.String(),
		"window", th.Window.String(),
		"count", int(math.Round(ev.count)),
		"threshold", th.Count,
		"blocked_seconds", int(c.opts.BlockFor/time.Second))
}

func (c *abuseCheck) blockedRefusal(d time.Duration, what string) *Refusal {
	secs := int((d + time.Second - 1) / time.Second)
	typ := typeRateLimit
	if c.opts.BlockStatus == 403 {
		typ = typePermission
	}
	r := refuse(c.opts.BlockStatus, typ, "blocked", what+" is blocked for abuse; retry after "+strconv.Itoa(secs)+" seconds")
	r.RetryAfter = secs
	return r
}

// ipRequest says whether ip is blocked and, for an inference request
// (count), counts it towards a burst.
func (c *abuseCheck) ipRequest(now int64, ip netip.Addr, count bool) *Refusal {
	return countRequest(c, c.ips, now, ipSubject(ip), "", ip, count, "this address")
}

// keyRequest says whether an authenticated principal is blocked and,
// for an inference request (count), counts it towards a burst.
func (c *abuseCheck) keyRequest(now int64, subject, keyID string, ip netip.Addr, count bool) *Refusal {
	return countRequest(c, c.keys, now, subject, keyID, ip, count, "this credential")
}

// countRequest is ipRequest and keyRequest over their own table; who names the
// blocked party in the refusal.
func countRequest[K comparable](c *abuseCheck, t *table[K], now int64, subject K, keyID string, ip netip.Addr, count bool, who string) *Refusal {
	if count && c.opts.Requests.Count > 0 {
		ev := t.note(now, subject, true, c.opts.Requests, c.opts.BlockFor)
		c.report(ev, c.opts.Requests, keyID, ip)
		if ev.block > 0 {
			return c.blockedRefusal(ev.block, who)
		}
		return nil
	}
	if d := t.blockedFor(now, subject); d > 0 {
		return c.blockedRefusal(d, who)
	}
	return nil
}

// authFailure counts a failed authentication from ip and, when a real
// key was presented, against that key. A key that did not match is not
// counted by its id: anyone could send a victim's id to get it blocked.
func (c *abuseCheck) authFailure(now int64, ip netip.Addr, subject, keyID string) {
	if c.opts.AuthFailures.Count == 0 {
		return
	}
	ev := c.ips.note(now, ipSubject(ip), false, c.opts.AuthFailures, c.opts.BlockFor)
	c.report(ev, c.opts.AuthFailures, keyID, ip)
	if subject != "" {
		ev := c.keys.note(now, subject, false, c.opts.AuthFailures, c.opts.BlockFor)
		c.report(ev, c.opts.AuthFailures, keyID, ip)
	}
}
