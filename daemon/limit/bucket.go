package limit

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// maxDebtMinutes bounds how far a token bucket can go into debt, in
// minutes of refill, so that one absurd charge (a bug upstream, or a
// counter gone wrong) cannot stop a class for longer than an hour.
const maxDebtMinutes = 60

// bucket is one token bucket and the rate it was built for, so that a
// reload can tell whether its limit changed.
type bucket struct {
	rate Rate
	lim  *rate.Limiter
}

func newBucket(r Rate) *bucket {
	return &bucket{rate: r, lim: rate.NewLimiter(rate.Limit(r.PerSecond), r.Burst)}
}

// successor returns the bucket a reloaded limiter uses for rate r: b
// itself when r is b's rate, so its state carries over untouched; nil when
// r is no limit; otherwise a new bucket holding as many tokens as b holds
// now (its debt included), capped at the new burst, so a reload neither
// refills a bucket nor forgives a debt. b itself is never changed, as the
// reload may still fail and b's limiter keep serving.
func (b *bucket) successor(r Rate, now time.Time) *bucket {
	if r.off() {
		return nil
	}
	if b != nil && b.rate == r {
		return b
	}
	nb := newBucket(r)
	if b != nil {
		if deficit := float64(r.Burst) - b.lim.TokensAt(now); deficit > 0 {
			nb.consume(now, int64(math.Ceil(deficit)))
		}
	}
	return nb
}

// consume takes n tokens at now, going into debt if it must. A charge of
// more than a full bucket is cut so the debt stays above maxDebtMinutes of
// refill, and taken in pieces, as rate.Limiter takes at most burst tokens
// per call. A smaller one is taken whole without a look at the bucket
// first: the debt it makes is usage that really happened.
func (b *bucket) consume(now time.Time, n int64) {
	burst := int64(b.rate.Burst)
	if n > burst {
		floor := -b.rate.PerSecond * 60 * maxDebtMinutes
		if room := b.lim.TokensAt(now) - floor; float64(n) > room {
			n = int64(max(room, 0))
		}
	}
	for n > 0 {
		c := min(n, burst)
		// The reservation is never cancelled: the tokens were spent.
		b.lim.ReserveN(now, int(c))
		n -= c
	}
}

// wait returns how long until the bucket holds one whole token again,
// given that it holds tokens now.
func (b *bucket) wait(tokens float64) time.Duration {
	if tokens >= 1 {
		return 0
	}
	return secondsToDuration((1 - tokens) / b.rate.PerSecond)
}

// report returns the bucket's state in the form of OpenAI's rate-limit
// headers: its capacity, the whole tokens left, and the time until it is
// full again.
func (b *bucket) report(now time.Time) (limit, remaining int64, reset time.Duration) {
	tokens := b.lim.TokensAt(now)
	limit = int64(b.rate.Burst)
	if tokens > 0 {
		remaining = int64(tokens)
	}
	if missing := float64(b.rate.Burst) - tokens; missing > 0 {
		reset = secondsToDuration(missing / b.rate.PerSecond)
	}
	return limit, remaining, reset
}

func secondsToDuration(s float64) time.Duration {
	d := s * float64(time.Second)
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	// Rounded, not rounded up, so that float noise on an exact quotient
	// (1/50 s) does not add a nanosecond that shows as a millisecond.
	return time.Duration(math.Round(d))
}

// retryAfter converts a wait into Retry-After seconds: rounded up, and at
// least 1, as a client told 0 would retry at once.
func retryAfter(d time.Duration) int {
	s := d / time.Second
	if d%time.Second != 0 {
		s++
	}
	return int(max(s, 1))
}
