package limit

import (
	"strconv"
	"time"
)

// The names of the headers a response carries, as OpenAI sends them.
const (
	HeaderRetryAfter        = "Retry-After"
	HeaderLimitRequests     = "x-ratelimit-limit-requests"
	HeaderRemainingRequests = "x-ratelimit-remaining-requests"
	HeaderResetRequests     = "x-ratelimit-reset-requests"
	HeaderLimitTokens       = "x-ratelimit-limit-tokens"
	HeaderRemainingTokens   = "x-ratelimit-remaining-tokens"
	HeaderResetTokens       = "x-ratelimit-reset-tokens"
)

// Headers is the state of the buckets a request was counted against, in
// the terms of OpenAI's rate-limit headers. The requests trio describes one
// request bucket (see Ticket.Headers for which); the tokens trio the
// class's tokens-per-minute bucket. Limit is the bucket's capacity (its
// burst, or tokens_per_minute), Remaining the whole tokens left (0 while
// in debt), Reset the time until the bucket is full again, which is what
// OpenAI's "time until the rate limit resets to its initial state" means.
type Headers struct {
	Requests          bool // the requests trio is set
	LimitRequests     int64
	RemainingRequests int64
	ResetRequests     time.Duration

	Tokens          bool // the tokens trio is set
	LimitTokens     int64
	RemainingTokens int64
	ResetTokens     time.Duration
}

// Visit calls set for each header h holds, with its value formatted. The
// value is only valid during the call (fasthttp's SetBytesV copies it).
func (h *Headers) Visit(set func(name string, value []byte)) {
	var buf [32]byte
	if h.Requests {
		set(HeaderLimitRequests, strconv.AppendInt(buf[:0], h.LimitRequests, 10))
		set(HeaderRemainingRequests, strconv.AppendInt(buf[:0], h.RemainingRequests, 10))
		set(HeaderResetRequests, AppendDuration(buf[:0], h.ResetRequests))
	}
	if h.Tokens {
		set(HeaderLimitTokens, strconv.AppendInt(buf[:0], h.LimitTokens, 10))
		set(HeaderRemainingTokens, strconv.AppendInt(buf[:0], h.RemainingTokens, 10))
		set(HeaderResetTokens, AppendDuration(buf[:0], h.ResetTokens))
	}
}

// AppendDuration appends d in the form OpenAI's reset headers use, which
// is Go's time.Duration.String of d rounded up to the millisecond: "0s",
// "12ms", "1s", "1.5s", "6m0s", "1h0m0s". Rounding up keeps a bucket that
// is not yet full from claiming "0s"; a negative d is "0s".
func AppendDuration(dst []byte, d time.Duration) []byte {
	if d <= 0 {
		return append(dst, "0s"...)
	}
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	if ms < 1000 {
		return append(strconv.AppendInt(dst, ms, 10), "ms"...)
	}
	h := ms / 3_600_000
	m := ms / 60_000 % 60
	s := ms / 1000 % 60
	frac := ms % 1000
	if h > 0 {
		dst = append(strconv.AppendInt(dst, h, 10), 'h')
	}
	if h > 0 || m > 0 {
		dst = append(strconv.AppendInt(dst, m, 10), 'm')
	}
	dst = strconv.AppendInt(dst, s, 10)
	if frac > 0 {
		digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
		n := 3
		for digits[n-1] == '0' {
			n--
		}
		dst = append(append(dst, '.'), digits[:n]...)
	}
	return append(dst, 's')
}
