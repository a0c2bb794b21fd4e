// Package limit decides whether a request may run now: token buckets for
// the whole server, per limit class and per client address, a token
// budget per minute and a cap on concurrent requests per class.
//
// A request is counted once, after authentication, by Limiter.Admit. An
// authenticated request is counted against the global bucket and the
// buckets of its principal's limit class; an unauthenticated one against
// the global bucket and its client address's bucket.
//
// Tokens per minute are counted after the fact, as the cost of a
// generation is not known when it starts: a request is admitted while its
// class's token bucket is not in debt (holds at least one token), and
// Ticket.Charge takes the prompt and generated tokens when they are known,
// going into debt if they are more than the bucket holds. A class that
// generated too much is then refused until its bucket has refilled past
// the debt. Nothing is reserved up front, so the overshoot of a class is
// bounded by what its requests in flight generate: max_concurrent times
// the largest generation.
//
// Limits are reloaded by building a new Limiter from the old one (New with
// prev): a bucket whose limit did not change is the same bucket, so its
// state carries over exactly; a changed one starts with as many tokens as
// the old one held, capped at its new burst; a removed class is gone. The
// old Limiter is never changed, so a reload that fails later on leaves it
// serving as it was.
package limit

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Rate is a token bucket: PerSecond tokens are added each second, up to
// Burst. The zero Rate is no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

func (r Rate) off() bool { return r == Rate{} }

func (r Rate) check() error {
	if r.off() {
		return nil
	}
	if math.IsNaN(r.PerSecond) || math.IsInf(r.PerSecond, 0) || r.PerSecond <= 0 {
		return fmt.Errorf("requests_per_second is %v; it must be a positive number (to lift the limit, remove the block)", r.PerSecond)
	}
	if r.Burst < 1 {
		return fmt.Errorf("burst is %d; it must be at least 1, and at least requests_per_second for the rate to be reachable", r.Burst)
	}
	return nil
}

// Class is the limits of one limit class, which API keys name. A zero
// field is no limit of that kind.
type Class struct {
	Requests        Rate
	TokensPerMinute int64 // prompt and generated tokens; also the bucket's capacity
	MaxConcurrent   int
}

// Options configures a Limiter. The zero Options limits nothing.
type Options struct {
	Global Rate // every request
	PerIP  Rate // unauthenticated requests, per client key (see ClientKey)
	// MaxTrackedIPs caps the client keys PerIP tracks; 0 is
	// DefaultMaxTrackedIPs.
	MaxTrackedIPs int
	Classes       map[string]Class
	// Metrics receives aiassist_limit_refused_total{reason} and
	// aiassist_limit_concurrent_requests{class}. Pass the same long-lived
	// Set to each New of a line of limiters, so the counters continue
	// across reloads; a class removed by a reload keeps its gauge (at the
	// number of its requests still in flight, then 0) in such a Set. Nil
	// keeps the metrics private.
	Metrics *metrics.Set
	// Now is the clock; nil is time.Now. Tests pass a fake one.
	Now func() time.Time
}

// Request is who is asking, as authentication found out.
type Request struct {
	Authenticated bool
	// Class is the authenticated principal's limit class, "" for none. A
	// class the Limiter does not know is no class: only the global limit
	// applies (the config check rejects keys naming unknown classes).
	Class string
	// IP is the client's address; it is used only for an unauthenticated
	// request. The zero Addr (no address known) is one client.
	IP netip.Addr
}

// Reason says which limit refused a request. It is a bounded metric label.
type Reason string

// The reasons, which are also the values of the metric's reason label.
const (
	ReasonGlobal      Reason = "global"
	ReasonClass       Reason = "class"
	ReasonIP          Reason = "ip"
	ReasonTokens      Reason = "tokens"
	ReasonConcurrency Reason = "concurrency"
)

var reasons = [...]Reason{ReasonGlobal, ReasonClass, ReasonIP, ReasonTokens, ReasonConcurrency}

// messages are constant so that no message can carry a key, a class name
// or an address.
var messages = map[Reason]string{
	ReasonGlobal:      "rate limit reached: the server is receiving more requests than it is configured to serve; retry after the number of seconds in the Retry-After header",
	ReasonClass:       "rate limit reached for requests of this API key's limit class; retry after the number of seconds in the Retry-After header",
	ReasonIP:          "rate limit reached for unauthenticated requests from this client address; retry after the number of seconds in the Retry-After header, or authenticate with an API key",
	ReasonTokens:      "rate limit reached for tokens per minute of this API key's limit class; retry after the number of seconds in the Retry-After header",
	ReasonConcurrency: "too many concurrent requests for this API key's limit class; retry when one of them has finished",
}

// Refusal is a request that may not run now. Status is always 429. Type
// and Code are OpenAI's error type ("requests" or "tokens") and code.
type Refusal struct {
	Status     int
	Reason     Reason
	Type       string
	Code       string
	Message    string
	RetryAfter int // seconds, at least 1
	Headers    Headers
}

func (r *Refusal) Error() string { return r.Message }

// VisitHeaders calls set for Retry-After and each rate-limit header.
func (r *Refusal) VisitHeaders(set func(name string, value []byte)) {
	var buf [20]byte
	set(HeaderRetryAfter, strconv.AppendInt(buf[:0], int64(r.RetryAfter), 10))
	r.Headers.Visit(set)
}

// Ticket is an admitted request. Call Release when the request has ended
// (for a stream: when its last byte is written), and Charge with its
// tokens. A Ticket may be copied; its copies are the same ticket. The
// zero Ticket, which Admit returns when nothing limits the request, does
// nothing.
type Ticket struct {
	at       time.Time
	now      func() time.Time
	requests *bucket // the request bucket its headers describe
	tokens   *bucket
	hold     *hold
}

// hold is a taken concurrency slot; the pointer is swapped out on release
// so that a second Release frees nothing.
type hold struct{ s atomic.Pointer[slots] }

// Release frees the request's concurrency slot. Calling it again does
// nothing.
func (t Ticket) Release() {
	if t.hold == nil {
		return
	}
	if s := t.hold.s.Swap(nil); s != nil {
		s.inUse.Add(-1)
	}
}

// Charge counts tokens (prompt or generated) against the class's tokens
// per minute. It may be called several times, before or after Release.
func (t Ticket) Charge(tokens int) {
	if t.tokens == nil || tokens <= 0 {
		return
	}
	// Charged at the time of the charge, not of the admission: an older
	// time would make rate.Limiter count the refill since then twice.
	t.tokens.consume(t.now(), int64(tokens))
}

// Headers returns the rate-limit headers for the response. The requests
// trio describes the principal's request bucket (the class's, or the
// client address's for an unauthenticated request) if it has one, else
// the global bucket; the tokens trio the class's tokens bucket. Each call
// reads the buckets (a lock each) and allocates nothing, so call it once
// per response.
func (t Ticket) Headers() Headers {
	var h Headers
	if t.requests != nil {
		h.Requests = true
		h.LimitRequests, h.RemainingRequests, h.ResetRequests = t.requests.report(t.at)
	}
	if t.tokens != nil {
		h.Tokens = true
		h.LimitTokens, h.RemainingTokens, h.ResetTokens = t.tokens.report(t.at)
	}
	return h
}

// VisitHeaders calls set for each rate-limit header of t.
func (t Ticket) VisitHeaders(set func(name string, value []byte)) {
	h := t.Headers()
	h.Visit(set)
}

// slots counts a class's requests in flight. One slots lives as long as
// the class name in a line of limiters, across reloads, so a reload sees
// the requests admitted before it.
type slots struct{ inUse atomic.Int64 }

func (s *slots) acquire(max int64) bool {
	for {
		n := s.inUse.Load()
		if max > 0 && n >= max {
			return false
		}
		if s.inUse.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

type class struct {
	requests *bucket
	tokens   *bucket
	max      int64
	slots    *slots
}

// Limiter admits or refuses requests. It is safe for concurrent use. A
// nil *Limiter limits nothing.
type Limiter struct {
	now     func() time.Time
	off     bool
	global  *bucket
	ips     *ipTable
	classes map[string]*class
	// slots has every class name this line of limiters has had, removed
	// ones too, so a gauge registered for a name keeps reading the count
	// that a class of that name, re-added later, uses.
	slots   map[string]*slots
	refused [len(reasons)]*metrics.Counter
}

// New builds a Limiter from opts. If prev is not nil, buckets whose limit
// did not change are taken over from it, state and all, and the requests
// prev admitted keep counting against the classes' concurrency; prev
// itself is not changed.
func New(opts Options, prev *Limiter) (*Limiter, error) {
	if err := opts.Global.check(); err != nil {
		return nil, fmt.Errorf("global limit: %w", err)
	}
	if err := opts.PerIP.check(); err != nil {
		return nil, fmt.Errorf("per-IP limit: %w", err)
	}
	if opts.MaxTrackedIPs < 0 {
		return nil, fmt.Errorf("the number of tracked client addresses is %d; it must be positive, or 0 for the default of %d", opts.MaxTrackedIPs, DefaultMaxTrackedIPs)
	}
	names := make([]string, 0, len(opts.Classes))
	for name, c := range opts.Classes {
		if name == "" {
			return nil, errors.New("a limit class has an empty name; name it")
		}
		if err := c.Requests.check(); err != nil {
			return nil, fmt.Errorf("limit class %q: %w", name, err)
		}
		if c.TokensPerMinute < 0 || c.TokensPerMinute > math.MaxInt32 {
			return nil, fmt.Errorf("limit class %q: tokens_per_minute is %d; it must be between 1 and %d, or 0 for no limit", name, c.TokensPerMinute, math.MaxInt32)
		}
		if c.MaxConcurrent < 0 {
			return nil, fmt.Errorf("limit class %q: max_concurrent is %d; it must be positive, or 0 for no limit", name, c.MaxConcurrent)
		}
		names = append(names, name)
	}
	sort.Strings(names)

	l := &Limiter{now: opts.Now, classes: make(map[string]*class, len(names)), slots: map[string]*slots{}}
	if l.now == nil {
		l.now = time.Now
	}
	now := l.now()
	if prev == nil {
		prev = &Limiter{}
	}
	l.global = prev.global.successor(opts.Global, now)
	if !opts.PerIP.off() {
		max := opts.MaxTrackedIPs
		if max == 0 {
			max = DefaultMaxTrackedIPs
		}
		if p := prev.ips; p != nil && p.rate == opts.PerIP && p.max == max {
			l.ips = p
		} else {
			// A changed per-IP limit starts every client afresh: carrying
			// thousands of buckets over is not worth it for unauthenticated
			// traffic, which the global limit holds in any case.
			l.ips = newIPTable(opts.PerIP, max)
		}
	}
	for name, s := range prev.slots {
		l.slots[name] = s
	}
	for _, name := range names {
		c := opts.Classes[name]
		pc := prev.classes[name]
		if pc == nil {
			pc = &class{}
		}
		nc := &class{
			requests: pc.requests.successor(c.Requests, now),
			max:      int64(c.MaxConcurrent),
		}
		if c.TokensPerMinute > 0 {
			tr := Rate{PerSecond: float64(c.TokensPerMinute) / 60, Burst: int(c.TokensPerMinute)}
			nc.tokens = pc.tokens.successor(tr, now)
		}
		if l.slots[name] == nil {
			l.slots[name] = &slots{}
		}
		nc.slots = l.slots[name]
		l.classes[name] = nc
	}
	l.off = l.global == nil && l.ips == nil && len(l.classes) == 0

	set := opts.Metrics
	if set == nil {
		set = metrics.NewSet()
	}
	for i, r := range reasons {
		l.refused[i] = set.GetOrCreateCounter(`aiassist_limit_refused_total{reason="` + string(r) + `"}`)
	}
	for _, name := range names {
		s := l.slots[name]
		set.GetOrCreateGauge(`aiassist_limit_concurrent_requests{class="`+labelValue(name)+`"}`, func() float64 {
			return float64(s.inUse.Load())
		})
	}
	return l, nil
}

// labelValue escapes a class name for a Prometheus label value.
func labelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// Admit counts req against the limits and returns its ticket, or why it
// may not run now. The checks that cost nothing to undo come first (the
// class's token debt, its concurrency), then the principal's request
// bucket, then the global one, so that a client over its own limit does
// not spend the global bucket.
func (l *Limiter) Admit(req Request) (Ticket, *Refusal) {
	if l == nil || l.off {
		return Ticket{}, nil
	}
	var t Ticket
	var principal Reason
	var c *class
	if req.Authenticated {
		if req.Class != "" {
			c = l.classes[req.Class]
		}
		if c != nil {
			t.requests, t.tokens = c.requests, c.tokens
			principal = ReasonClass
		}
	} else if l.ips != nil {
		t.requests = l.ips.bucket(req.IP)
		principal = ReasonIP
	}
	if c == nil && t.requests == nil && l.global == nil {
		return Ticket{}, nil // no limit applies to this request
	}
	t.at, t.now = l.now(), l.now

	if c != nil {
		if t.tokens != nil {
			if tok := t.tokens.lim.TokensAt(t.at); tok < 1 {
				return Ticket{}, l.refuse(ReasonTokens, t.withRequests(l.global), t.tokens.wait(tok))
			}
		}
		if !c.slots.acquire(c.max) {
			return Ticket{}, l.refuse(ReasonConcurrency, t.withRequests(l.global), 0)
		}
		t.hold = &hold{}
		t.hold.s.Store(c.slots)
	}
	if t.requests != nil {
		// Look at the global bucket first, so that a request the global
		// limit would refuse does not spend the principal's token. Between
		// this look and the global take below another request may take the
		// last global token; then the principal's token is spent anyway,
		// which is rare and errs on the strict side.
		if l.global != nil {
			if tok := l.global.lim.TokensAt(t.at); tok < 1 {
				return l.refuseAfter(t, ReasonGlobal, l.global, tok)
			}
		}
		if !t.requests.lim.AllowN(t.at, 1) {
			return l.refuseAfter(t, principal, t.requests, t.requests.lim.TokensAt(t.at))
		}
	}
	if l.global != nil {
		if !l.global.lim.AllowN(t.at, 1) {
			return l.refuseAfter(t, ReasonGlobal, l.global, l.global.lim.TokensAt(t.at))
		}
		if t.requests == nil {
			t.requests = l.global
		}
	}
	return t, nil
}

// withRequests returns t reporting b's requests if t has no request bucket
// of its own.
func (t Ticket) withRequests(b *bucket) Ticket {
	if t.requests == nil {
		t.requests = b
	}
	return t
}

// refuseAfter releases what t took and refuses it for reason, b being the
// bucket that refused, holding tokens.
func (l *Limiter) refuseAfter(t Ticket, reason Reason, b *bucket, tokens float64) (Ticket, *Refusal) {
	t.Release()
	t.requests = b
	return Ticket{}, l.refuse(reason, t, b.wait(tokens))
}

func (l *Limiter) refuse(reason Reason, t Ticket, wait time.Duration) *Refusal {
	i := 0
	for reasons[i] != reason {
		i++
	}
	l.refused[i].Inc()
	typ := "requests"
	if reason == ReasonTokens {
		typ = "tokens"
	}
	return &Refusal{
		Status:     429,
		Reason:     reason,
		Type:       typ,
		Code:       "rate_limit_exceeded",
		Message:    messages[reason],
		RetryAfter: retryAfter(wait),
		Headers:    t.Headers(),
	}
}

// InUse returns how many requests of class are in flight.
func (l *Limiter) InUse(class string) int {
	if l == nil || l.slots[class] == nil {
		return 0
	}
	return int(l.slots[class].inUse.Load())
}
