package limit

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustNew(t testing.TB, opts Options, prev *Limiter) *Limiter {
	t.Helper()
	l, err := New(opts, prev)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

var (
	gold      = Request{Authenticated: true, Class: "gold"}
	silver    = Request{Authenticated: true, Class: "silver"}
	bronze    = Request{Authenticated: true, Class: "bronze"}
	anonymous = Request{IP: netip.MustParseAddr("192.0.2.1")}
)

// headerMap collects what a Visit sets.
func headerMap(visit func(func(string, []byte))) map[string]string {
	m := map[string]string{}
	visit(func(name string, value []byte) { m[name] = string(value) })
	return m
}

func checkHeaders(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("headers = %v, want %v", got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("header %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

// TestBurstThenRate sends a burst of N requests at once and then a steady
// stream faster than the rate: B get through at once, then R per second.
func TestBurstThenRate(t *testing.T) {
	f := func(name string, opts func(Rate) Options, req Request, reason Reason) {
		t.Run(name, func(t *testing.T) {
			const R, B, N = 10.0, 20, 100
			clk := newClock()
			o := opts(Rate{PerSecond: R, Burst: B})
			o.Now = clk.Now
			l := mustNew(t, o, nil)

			admitted := 0
			var last *Refusal
			for range N {
				tk, ref := l.Admit(req)
				if ref != nil {
					last = ref
					continue
				}
				admitted++
				tk.Release()
			}
			if admitted != B {
				t.Fatalf("burst of %d: %d admitted, want %d", N, admitted, B)
			}
			if last == nil {
				t.Fatal("no request was refused")
			}
			if last.Status != 429 || last.Reason != reason || last.Type != "requests" || last.Code != "rate_limit_exceeded" {
				t.Errorf("refusal = %+v, want 429 %s requests rate_limit_exceeded", last, reason)
			}
			// The bucket is empty: the next token comes in 1/R s, which
			// Retry-After rounds up to 1 s; it is full again in B/R s.
			checkHeaders(t, headerMap(last.VisitHeaders), map[string]string{
				"Retry-After":                    "1",
				"x-ratelimit-limit-requests":     "20",
				"x-ratelimit-remaining-requests": "0",
				"x-ratelimit-reset-requests":     "2s",
			})

			// Then 25 requests a second for 10 s: R of them per second pass.
			const seconds = 10
			for range seconds * 25 {
				clk.Advance(time.Second / 25)
				if tk, ref := l.Admit(req); ref == nil {
					admitted++
					tk.Release()
				}
			}
			want := B + int(R)*seconds
			if admitted < want-1 || admitted > want+1 {
				t.Errorf("after %d s: %d admitted, want %d ± 1", seconds, admitted, want)
			}
		})
	}
	f("global", func(r Rate) Options { return Options{Global: r} }, anonymous, ReasonGlobal)
	f("class", func(r Rate) Options {
		return Options{Classes: map[string]Class{"gold": {Requests: r}}}
	}, gold, ReasonClass)
	f("ip", func(r Rate) Options { return Options{PerIP: r} }, anonymous, ReasonIP)
	// A class under a looser global limit is refused by its own.
	f("class under global", func(r Rate) Options {
		return Options{Global: Rate{PerSecond: 1000, Burst: 1000}, Classes: map[string]Class{"gold": {Requests: r}}}
	}, gold, ReasonClass)
	// A class under a tighter global limit is refused by the global one.
	f("global over class", func(r Rate) Options {
		return Options{Global: r, Classes: map[string]Class{"gold": {Requests: Rate{PerSecond: 1000, Burst: 1000}}}}
	}, gold, ReasonGlobal)
}

// TestRetryAfterSlowRate: Retry-After is the wait for the next token,
// rounded up, and the reset the wait for a full bucket.
func TestRetryAfterSlowRate(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Options{Global: Rate{PerSecond: 0.4, Burst: 3}, Now: clk.Now}, nil)
	for range 3 {
		if _, ref := l.Admit(anonymous); ref != nil {
			t.Fatalf("refused within the burst: %v", ref)
		}
	}
	_, ref := l.Admit(anonymous)
	if ref == nil {
		t.Fatal("fourth request admitted")
	}
	// One token takes 2.5 s, three take 7.5 s.
	checkHeaders(t, headerMap(ref.VisitHeaders), map[string]string{
		"Retry-After":                    "3",
		"x-ratelimit-limit-requests":     "3",
		"x-ratelimit-remaining-requests": "0",
		"x-ratelimit-reset-requests":     "7.5s",
	})
	clk.Advance(2 * time.Second)
	if _, ref := l.Admit(anonymous); ref == nil || ref.RetryAfter != 1 {
		t.Fatalf("after 2 s: refusal %+v, want Retry-After 1 (0.5 s left)", ref)
	}
	clk.Advance(500 * time.Millisecond)
	if _, ref := l.Admit(anonymous); ref != nil {
		t.Fatalf("after 2.5 s: refused: %v", ref)
	}
}

// TestTicketHeaders: an admitted request reports the principal's bucket,
// or the global one when it has none, and the class's tokens.
func TestTicketHeaders(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Options{
		Global: Rate{PerSecond: 100, Burst: 200},
		PerIP:  Rate{PerSecond: 20, Burst: 40},
		Classes: map[string]Class{
			"gold":   {Requests: Rate{PerSecond: 50, Burst: 100}, TokensPerMinute: 200000, MaxConcurrent: 8},
			"silver": {MaxConcurrent: 2},
		},
		Now: clk.Now,
	}, nil)
	f := func(req Request, want map[string]string) {
		t.Helper()
		tk, ref := l.Admit(req)
		if ref != nil {
			t.Fatalf("refused: %v", ref)
		}
		defer tk.Release()
		checkHeaders(t, headerMap(tk.VisitHeaders), want)
	}
	f(gold, map[string]string{
		"x-ratelimit-limit-requests":     "100",
		"x-ratelimit-remaining-requests": "99",
		"x-ratelimit-reset-requests":     "20ms",
		"x-ratelimit-limit-tokens":       "200000",
		"x-ratelimit-remaining-tokens":   "200000",
		"x-ratelimit-reset-tokens":       "0s",
	})
	f(anonymous, map[string]string{
		"x-ratelimit-limit-requests":     "40",
		"x-ratelimit-remaining-requests": "39",
		"x-ratelimit-reset-requests":     "50ms",
	})
	// silver has no request bucket: the global one is reported; it has
	// served three requests.
	f(silver, map[string]string{
		"x-ratelimit-limit-requests":     "200",
		"x-ratelimit-remaining-requests": "197",
		"x-ratelimit-reset-requests":     "30ms",
	})
	tk, _ := l.Admit(gold)
	tk.Charge(150000)
	h := tk.Headers()
	if !h.Tokens || h.RemainingTokens != 50000 || (h.ResetTokens-45*time.Second).Abs() > time.Microsecond {
		t.Errorf("after charging 150000 of 200000/min: %+v, want 50000 left, full in 45s", h)
	}
}

// TestNoLimits: without limits every request passes, costs no allocation
// and carries no headers.
func TestNoLimits(t *testing.T) {
	var nilLimiter *Limiter
	for _, l := range []*Limiter{mustNew(t, Options{}, nil), nilLimiter} {
		for _, req := range []Request{gold, anonymous, {}} {
			tk, ref := l.Admit(req)
			if ref != nil {
				t.Fatalf("refused without limits: %v", ref)
			}
			if h := headerMap(tk.VisitHeaders); len(h) != 0 {
				t.Errorf("headers without limits: %v", h)
			}
			tk.Charge(1000)
			tk.Release()
		}
	}
	l := mustNew(t, Options{}, nil)
	if n := testing.AllocsPerRun(100, func() {
		tk, _ := l.Admit(gold)
		tk.Release()
	}); n != 0 {
		t.Errorf("Admit without limits allocates %v times", n)
	}
	// Limits that do not apply to a request cost it nothing either.
	l = mustNew(t, Options{Classes: map[string]Class{"gold": {MaxConcurrent: 1}}}, nil)
	for range 10 {
		if _, ref := l.Admit(anonymous); ref != nil {
			t.Fatalf("an unauthenticated request was refused by a class limit: %v", ref)
		}
		if _, ref := l.Admit(Request{Authenticated: true}); ref != nil {
			t.Fatalf("a request without class was refused by a class limit: %v", ref)
		}
	}
}

// TestClassesIndependent: one class spending its bucket, its tokens or its
// slots leaves the others, and unauthenticated clients, untouched.
func TestClassesIndependent(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Options{
		PerIP: Rate{PerSecond: 1, Burst: 5},
		Classes: map[string]Class{
			"gold":   {Requests: Rate{PerSecond: 1, Burst: 5}, TokensPerMinute: 60, MaxConcurrent: 5},
			"silver": {Requests: Rate{PerSecond: 1, Burst: 5}, TokensPerMinute: 60, MaxConcurrent: 5},
		},
		Now: clk.Now,
	}, nil)
	count := func(req Request, n int) (admitted int, reasons map[Reason]int) {
		reasons = map[Reason]int{}
		for range n {
			if _, ref := l.Admit(req); ref != nil {
				reasons[ref.Reason]++
			} else {
				admitted++
			}
		}
		return admitted, reasons
	}
	// gold takes its 5 slots and holds them.
	if n, r := count(gold, 8); n != 5 || r[ReasonConcurrency] != 3 {
		t.Fatalf("gold: %d admitted, refusals %v; want 5 and 3 for concurrency", n, r)
	}
	if n, _ := count(silver, 3); n != 3 {
		t.Fatalf("silver after gold filled its slots: %d of 3 admitted", n)
	}
	// silver spends its tokens.
	tk, ref := l.Admit(silver)
	if ref != nil {
		t.Fatalf("silver: %v", ref)
	}
	tk.Charge(1000)
	if _, ref := l.Admit(silver); ref == nil || ref.Reason != ReasonTokens {
		t.Fatalf("silver after charging 1000 of 60/min: %+v, want a tokens refusal", ref)
	}
	if n, _ := count(anonymous, 5); n != 5 {
		t.Fatalf("unauthenticated client after both classes were spent: %d of 5 admitted", n)
	}
	if n, r := count(Request{IP: netip.MustParseAddr("198.51.100.7")}, 6); n != 5 || r[ReasonIP] != 1 {
		t.Fatalf("a second client address: %d admitted, refusals %v; want 5 and 1 for ip", n, r)
	}
	if l.InUse("gold") != 5 || l.InUse("silver") != 4 {
		t.Errorf("in use: gold %d, silver %d; want 5 and 4", l.InUse("gold"), l.InUse("silver"))
	}
}

// TestTokensPerMinute: a class that generated more than its budget is
// refused until the bucket has refilled past the debt.
func TestTokensPerMinute(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Options{
		Classes: map[string]Class{"gold": {TokensPerMinute: 600}}, // 10 a second
		Now:     clk.Now,
	}, nil)
	tk, ref := l.Admit(gold)
	if ref != nil {
		t.Fatalf("first request refused: %v", ref)
	}
	// Two requests admitted while the bucket was full, both charged after.
	tk2, ref := l.Admit(gold)
	if ref != nil {
		t.Fatalf("second request refused: %v", ref)
	}
	tk.Charge(100) // the prompt
	tk.Charge(500) // the generation
	tk2.Charge(400)
	tk.Release()
	tk2.Release()

	_, ref = l.Admit(gold)
	if ref == nil {
		t.Fatal("admitted with 400 tokens of debt")
	}
	if ref.Reason != ReasonTokens || ref.Type != "tokens" {
		t.Errorf("refusal %+v, want reason tokens", ref)
	}
	// 401 tokens at 10/s: 40.1 s; full again after 1000 tokens: 100 s.
	checkHeaders(t, headerMap(ref.VisitHeaders), map[string]string{
		"Retry-After":                  "41",
		"x-ratelimit-limit-tokens":     "600",
		"x-ratelimit-remaining-tokens": "0",
		"x-ratelimit-reset-tokens":     "1m40s",
	})
	clk.Advance(40 * time.Second)
	if _, ref := l.Admit(gold); ref == nil || ref.RetryAfter != 1 {
		t.Fatalf("after 40 s (0 tokens): %+v, want a refusal with Retry-After 1", ref)
	}
	clk.Advance(time.Second)
	if _, ref := l.Admit(gold); ref != nil {
		t.Fatalf("after 41 s (10 tokens): refused: %v", ref)
	}

	// A huge charge stops the class for at most maxDebtMinutes.
	tk, _ = l.Admit(gold)
	tk.Charge(math.MaxInt)
	_, ref = l.Admit(gold)
	if ref == nil || ref.RetryAfter > maxDebtMinutes*60+1 || ref.RetryAfter < maxDebtMinutes*60-1 {
		t.Fatalf("after an absurd charge: %+v, want Retry-After about %d s", ref, maxDebtMinutes*60)
	}
}

// TestConcurrency: a slot is freed by Release, once, and a refused
// request takes none.
func TestConcurrency(t *testing.T) {
	l := mustNew(t, Options{Classes: map[string]Class{"gold": {MaxConcurrent: 2}}}, nil)
	a, ref := l.Admit(gold)
	if ref != nil {
		t.Fatal(ref)
	}
	b, ref := l.Admit(gold)
	if ref != nil {
		t.Fatal(ref)
	}
	_, ref = l.Admit(gold)
	if ref == nil || ref.Reason != ReasonConcurrency || ref.RetryAfter != 1 {
		t.Fatalf("third of 2: %+v, want a concurrency refusal with Retry-After 1", ref)
	}
	if !strings.Contains(ref.Message, "concurrent") {
		t.Errorf("message %q does not say why", ref.Message)
	}
	a.Release()
	a.Release()
	copyOfA := a
	copyOfA.Release()
	if got := l.InUse("gold"); got != 1 {
		t.Fatalf("after releasing one ticket three times: %d in use, want 1", got)
	}
	c, ref := l.Admit(gold)
	if ref != nil {
		t.Fatalf("after a release: %v", ref)
	}
	if _, ref := l.Admit(gold); ref == nil {
		t.Fatal("a double release freed two slots")
	}
	b.Release()
	c.Release()
	if got := l.InUse("gold"); got != 0 {
		t.Fatalf("all released: %d in use", got)
	}
}

// TestRefusalReturnsSlot: a request refused after it took its slot (by its
// request bucket or the global one) gives the slot back.
func TestRefusalReturnsSlot(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Options{
		Global:  Rate{PerSecond: 1, Burst: 2},
		Classes: map[string]Class{"gold": {Requests: Rate{PerSecond: 1, Burst: 1}, MaxConcurrent: 100}},
		Now:     clk.Now,
	}, nil)
	l.Admit(gold)
	if _, ref := l.Admit(gold); ref == nil || ref.Reason != ReasonClass {
		t.Fatalf("want a class refusal, got %+v", ref)
	}
	l.Admit(silver) // not a class here: global only, which it empties
	clk.Advance(time.Second)
	l.Admit(silver)
	if _, ref := l.Admit(gold); ref == nil || ref.Reason != ReasonGlobal {
		t.Fatalf("want a global refusal, got %+v", ref)
	}
	if got := l.InUse("gold"); got != 1 {
		t.Errorf("%d in use, want 1 (the first request)", got)
	}
	// The global refusal was seen before gold's token was spent.
	if tok := l.classes["gold"].requests.lim.TokensAt(clk.Now()); tok != 1 {
		t.Errorf("gold holds %v tokens after a global refusal, want 1", tok)
	}
}

// TestReload: an unchanged bucket keeps its state, a changed one applies
// at once, a removed class is gone, and the old limiter is untouched.
func TestReload(t *testing.T) {
	clk := newClock()
	opts := Options{
		Global: Rate{PerSecond: 1, Burst: 100},
		PerIP:  Rate{PerSecond: 1, Burst: 2},
		Classes: map[string]Class{
			"gold":   {Requests: Rate{PerSecond: 1, Burst: 2}, MaxConcurrent: 3},
			"silver": {Requests: Rate{PerSecond: 1, Burst: 2}},
			"bronze": {Requests: Rate{PerSecond: 1, Burst: 2}},
		},
		Now: clk.Now,
	}
	old := mustNew(t, opts, nil)
	spend := func(l *Limiter, req Request) {
		t.Helper()
		for range 2 {
			if _, ref := l.Admit(req); ref != nil {
				t.Fatalf("refused within the burst: %v", ref)
			}
		}
	}
	spend(old, silver)
	spend(old, bronze)
	spend(old, anonymous)
	held, ref := old.Admit(gold) // in flight across the reload
	if ref != nil {
		t.Fatal(ref)
	}

	opts.Classes = map[string]Class{
		"gold":   {Requests: Rate{PerSecond: 1, Burst: 2}, MaxConcurrent: 1},
		"silver": {Requests: Rate{PerSecond: 1, Burst: 2}},  // unchanged
		"bronze": {Requests: Rate{PerSecond: 10, Burst: 5}}, // changed
	}
	opts.Global = Rate{PerSecond: 2, Burst: 100}
	l := mustNew(t, opts, old)

	if _, ref := l.Admit(silver); ref == nil || ref.Reason != ReasonClass {
		t.Errorf("unchanged silver forgot it had spent its burst: %+v", ref)
	}
	// It is the same bucket: a request still arriving on the old limiter
	// counts in the new one, to the fraction of a token.
	clk.Advance(1500 * time.Millisecond)
	if _, ref := old.Admit(silver); ref != nil {
		t.Fatalf("old silver after 1.5 s: %v", ref)
	}
	if _, ref := l.Admit(silver); ref == nil {
		t.Errorf("new silver did not see the old limiter's request")
	}
	clk.Advance(500 * time.Millisecond)
	if _, ref := l.Admit(silver); ref != nil {
		t.Errorf("silver lost the half token it had across the reload: %v", ref)
	}
	clk.Advance(-2 * time.Second)
	if _, ref := l.Admit(anonymous); ref == nil || ref.Reason != ReasonIP {
		t.Errorf("unchanged per-IP limit forgot the client had spent its burst: %+v", ref)
	}
	// bronze had 0 tokens: it keeps 0 but refills at its new rate.
	if _, ref := l.Admit(bronze); ref == nil {
		t.Errorf("changed bronze was refilled by the reload")
	}
	clk.Advance(time.Second)
	n := 0
	for range 10 {
		if _, ref := l.Admit(bronze); ref == nil {
			n++
		}
	}
	if n != 5 {
		t.Errorf("bronze at 10/s burst 5, one second after the reload: %d admitted, want 5", n)
	}
	// gold's cap went from 3 to 1 and one request from before the reload
	// holds a slot.
	if _, ref := l.Admit(gold); ref == nil || ref.Reason != ReasonConcurrency {
		t.Errorf("gold with its one slot held since before the reload: %+v", ref)
	}
	held.Release()
	gt, ref := l.Admit(gold)
	if ref != nil {
		t.Errorf("gold after the old request released its slot: %v", ref)
	}
	gt.Release()
	// gold's headers describe its own bucket.
	if h := gt.Headers(); h.LimitRequests != 2 {
		t.Errorf("gold headers %+v", h)
	}

	// The old limiter still has its own bronze, empty and at the old rate.
	if _, ref := old.Admit(bronze); ref != nil {
		t.Errorf("old bronze after 1 s at 1/s: %v", ref)
	}
	if _, ref := old.Admit(bronze); ref == nil {
		t.Errorf("the reload changed the old limiter's bronze")
	}

	// Removing a class removes its limits; removing per-IP and global
	// limits lifts them.
	l2 := mustNew(t, Options{Classes: map[string]Class{"gold": {MaxConcurrent: 1}}, Now: clk.Now}, l)
	for range 5 {
		if _, ref := l2.Admit(silver); ref != nil {
			t.Fatalf("removed class silver still limits: %v", ref)
		}
		if _, ref := l2.Admit(anonymous); ref != nil {
			t.Fatalf("removed per-IP limit still limits: %v", ref)
		}
	}
	// Re-adding a class with the same name finds its requests in flight.
	g1, _ := l2.Admit(gold)
	l3 := mustNew(t, Options{Classes: map[string]Class{"silver": {}}, Now: clk.Now}, l2)
	l4 := mustNew(t, Options{Classes: map[string]Class{"gold": {MaxConcurrent: 1}}, Now: clk.Now}, l3)
	if _, ref := l4.Admit(gold); ref == nil {
		t.Errorf("gold removed and re-added forgot its request in flight")
	}
	g1.Release()
	if l4.InUse("gold") != 0 {
		t.Errorf("in use after release: %d", l4.InUse("gold"))
	}
}

// TestReloadCarriesDebt: a changed tokens-per-minute limit keeps the
// class's debt.
func TestReloadCarriesDebt(t *testing.T) {
	clk := newClock()
	old := mustNew(t, Options{Classes: map[string]Class{"gold": {TokensPerMinute: 600}}, Now: clk.Now}, nil)
	tk, _ := old.Admit(gold)
	tk.Charge(1200) // 600 in debt
	l := mustNew(t, Options{Classes: map[string]Class{"gold": {TokensPerMinute: 1200}}, Now: clk.Now}, old)
	_, ref := l.Admit(gold)
	if ref == nil || ref.Reason != ReasonTokens {
		t.Fatalf("reload forgave the debt: %+v", ref)
	}
	// 601 tokens at the new 20/s: 30.05 s.
	if ref.RetryAfter != 31 {
		t.Errorf("Retry-After %d, want 31", ref.RetryAfter)
	}
}

// TestChargeLate: a charge counts at the time it is made, not when its
// request was admitted; an older time would make the bucket count the
// refill in between twice.
func TestChargeLate(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Options{Classes: map[string]Class{"gold": {TokensPerMinute: 600}}, Now: clk.Now}, nil)
	a, _ := l.Admit(gold)
	b, _ := l.Admit(gold)
	clk.Advance(30 * time.Second)
	b.Charge(300)
	a.Charge(300)
	if _, ref := l.Admit(gold); ref == nil || ref.Reason != ReasonTokens {
		t.Errorf("after 600 of 600 tokens: %+v, want a tokens refusal", ref)
	}
}

func TestNewErrors(t *testing.T) {
	f := func(opts Options, want string) {
		t.Helper()
		_, err := New(opts, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", opts, err, want)
		}
	}
	f(Options{Global: Rate{PerSecond: 10}}, "global limit: burst is 0")
	f(Options{Global: Rate{Burst: 10}}, "global limit: requests_per_second is 0")
	f(Options{PerIP: Rate{PerSecond: math.NaN(), Burst: 1}}, "per-IP limit: requests_per_second is NaN")
	f(Options{PerIP: Rate{PerSecond: math.Inf(1), Burst: 1}}, "per-IP limit: requests_per_second is +Inf")
	f(Options{Global: Rate{PerSecond: -1, Burst: 1}}, "must be a positive number")
	f(Options{MaxTrackedIPs: -1}, "tracked client addresses is -1")
	f(Options{Classes: map[string]Class{"": {}}}, "empty name")
	f(Options{Classes: map[string]Class{"gold": {Requests: Rate{PerSecond: 1}}}}, `limit class "gold": burst is 0`)
	f(Options{Classes: map[string]Class{"gold": {TokensPerMinute: -5}}}, `tokens_per_minute is -5`)
	f(Options{Classes: map[string]Class{"gold": {TokensPerMinute: 1 << 40}}}, `tokens_per_minute is 1099511627776`)
	f(Options{Classes: map[string]Class{"gold": {MaxConcurrent: -1}}}, `max_concurrent is -1`)
}

func TestMetrics(t *testing.T) {
	set := metrics.NewSet()
	opts := Options{
		Global:  Rate{PerSecond: 1, Burst: 1},
		Classes: map[string]Class{"gold": {MaxConcurrent: 1}, `we"ird\name`: {}},
		Metrics: set,
		Now:     newClock().Now,
	}
	l := mustNew(t, opts, nil)
	tk, _ := l.Admit(gold)
	l.Admit(gold) // concurrency
	l.Admit(anonymous)
	// The same set across a reload: the counters continue.
	l = mustNew(t, opts, l)
	l.Admit(anonymous) // global
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	out := buf.String()
	for _, want := range []string{
		`aiassist_limit_refused_total{reason="concurrency"} 1`,
		`aiassist_limit_refused_total{reason="global"} 2`,
		`aiassist_limit_refused_total{reason="class"} 0`,
		`aiassist_limit_concurrent_requests{class="gold"} 1`,
		`aiassist_limit_concurrent_requests{class="we\"ird\\name"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, out)
		}
	}
	tk.Release()
	buf.Reset()
	set.WritePrometheus(&buf)
	if !strings.Contains(buf.String(), `aiassist_limit_concurrent_requests{class="gold"} 0`) {
		t.Errorf("gauge after release:\n%s", buf.String())
	}
}

// TestRefusalMessages: messages are fixed texts, which can carry no
// secret, class name or address.
func TestRefusalMessages(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Options{
		Global:  Rate{PerSecond: 1, Burst: 2},
		PerIP:   Rate{PerSecond: 0.5, Burst: 1},
		Classes: map[string]Class{"sk-secret-class": {Requests: Rate{PerSecond: 1, Burst: 1}, TokensPerMinute: 60, MaxConcurrent: 1}},
		Now:     clk.Now,
	}, nil)
	req := Request{Authenticated: true, Class: "sk-secret-class", IP: netip.MustParseAddr("203.0.113.9")}
	seen := map[Reason]bool{}
	check := func(ref *Refusal) {
		t.Helper()
		if ref == nil {
			t.Fatal("not refused")
		}
		seen[ref.Reason] = true
		if ref.Message != messages[ref.Reason] || ref.Error() != ref.Message {
			t.Errorf("message %q", ref.Message)
		}
		for _, secret := range []string{"sk-secret", "203.0.113"} {
			if strings.Contains(ref.Message, secret) {
				t.Errorf("message %q contains %q", ref.Message, secret)
			}
		}
	}
	tk, _ := l.Admit(req)
	_, ref := l.Admit(req)
	check(ref) // concurrency
	tk.Release()
	_, ref = l.Admit(req)
	check(ref) // class
	l.Admit(Request{IP: req.IP})
	_, ref = l.Admit(Request{IP: req.IP})
	check(ref) // global
	clk.Advance(time.Second)
	_, ref = l.Admit(Request{IP: req.IP})
	check(ref) // ip: the global bucket has one token again, the IP's half
	tk, _ = l.Admit(req)
	tk.Charge(100)
	_, ref = l.Admit(req)
	check(ref) // tokens
	if len(seen) != len(reasons) {
		t.Errorf("reasons seen: %v", seen)
	}
}

// TestConcurrentAdmit runs Admit, Release and Charge from many goroutines
// while limiters are rebuilt; the global bucket lets exactly its burst
// through as the clock stands still, and every slot is returned.
func TestConcurrentAdmit(t *testing.T) {
	clk := newClock()
	opts := Options{
		Global:        Rate{PerSecond: 1, Burst: 500},
		PerIP:         Rate{PerSecond: 1, Burst: 20},
		MaxTrackedIPs: 64,
		Classes: map[string]Class{
			"gold":   {Requests: Rate{PerSecond: 1, Burst: 1000}, TokensPerMinute: 1 << 30, MaxConcurrent: 4},
			"silver": {MaxConcurrent: 2},
		},
		Metrics: metrics.NewSet(),
		Now:     clk.Now,
	}
	l := mustNew(t, opts, nil)
	var cur atomic.Pointer[Limiter]
	cur.Store(l)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	const workers, each = 16, 250
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				var req Request
				switch i % 3 {
				case 0:
					req = gold
				case 1:
					req = silver
				default:
					req = Request{IP: netip.AddrFrom4([4]byte{10, byte(w), byte(i), 1})}
				}
				tk, ref := cur.Load().Admit(req)
				if ref != nil {
					continue
				}
				admitted.Add(1)
				tk.Charge(10)
				tk.VisitHeaders(func(string, []byte) {})
				tk.Release()
				tk.Release()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			cur.Store(mustNew(t, opts, cur.Load()))
		}
	})
	wg.Wait()
	if got := admitted.Load(); got != 500 {
		t.Errorf("%d admitted by a global burst of 500 with the clock standing still", got)
	}
	for _, c := range []string{"gold", "silver"} {
		if n := cur.Load().InUse(c); n != 0 {
			t.Errorf("class %s: %d slots still in use", c, n)
		}
	}
	if n := cur.Load().ips.tracked(); n > 64 {
		t.Errorf("%d client addresses tracked, cap 64", n)
	}
}

func TestAppendDuration(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := string(AppendDuration(nil, d)); got != want {
			t.Errorf("AppendDuration(%v) = %q, want %q", d, got, want)
		}
	}
	f(0, "0s")
	f(-time.Second, "0s")
	f(1, "1ms")
	f(12*time.Millisecond, "12ms")
	f(999*time.Millisecond+1, "1s")
	f(time.Second, "1s")
	f(1500*time.Millisecond, "1.5s")
	f(17280*time.Millisecond, "17.28s")
	f(6*time.Minute, "6m0s")
	f(time.Hour+5*time.Millisecond, "1h0m0.005s")
	f(math.MaxInt64, "2562047h47m16.855s")
	// It is Go's own form of the duration rounded up to the millisecond.
	for d := time.Duration(1); d < 5*time.Hour; d = d*3 + 7777777 {
		want := ((d + time.Millisecond - 1) / time.Millisecond * time.Millisecond).String()
		f(d, want)
	}
}

func TestHeadersVisit(t *testing.T) {
	h := Headers{Requests: true, LimitRequests: 60, RemainingRequests: 59, ResetRequests: time.Second,
		Tokens: true, LimitTokens: 150000, RemainingTokens: 149984, ResetTokens: 6 * time.Minute}
	checkHeaders(t, headerMap(h.Visit), map[string]string{
		"x-ratelimit-limit-requests":     "60",
		"x-ratelimit-remaining-requests": "59",
		"x-ratelimit-reset-requests":     "1s",
		"x-ratelimit-limit-tokens":       "150000",
		"x-ratelimit-remaining-tokens":   "149984",
		"x-ratelimit-reset-tokens":       "6m0s",
	})
	if m := headerMap((&Headers{}).Visit); len(m) != 0 {
		t.Errorf("empty headers visit %v", m)
	}
}

func ExampleLimiter_Admit() {
	l, err := New(Options{Global: Rate{PerSecond: 100, Burst: 200}}, nil)
	if err != nil {
		panic(err)
	}
	tk, ref := l.Admit(Request{IP: netip.MustParseAddr("192.0.2.1")})
	if ref != nil {
		fmt.Println(ref.Status, ref.Reason, ref.RetryAfter)
		return
	}
	defer tk.Release()
	fmt.Println(tk.Headers().LimitRequests)
	// Output: 200
}
