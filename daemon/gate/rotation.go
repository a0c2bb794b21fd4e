package gate

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// RotationOptions is auth.rotation.
type RotationOptions struct {
	// WarnBefore: a key this close to its not_after is reported.
	// Default DefaultWarnBefore.
	WarnBefore time.Duration
	// MaxAge: a key older than this is reported. Its age counts from
	// created, else from not_before; a key with neither is reported as
	// of unknown age instead. Default DefaultMaxAge.
	MaxAge time.Duration
}

// Rotation defaults: the seed's 90-day policy, warned 10 days ahead.
const (
	DefaultWarnBefore = 10 * 24 * time.Hour
	DefaultMaxAge     = 90 * 24 * time.Hour
)

// Notice reasons.
const (
	NoticeExpired    = "expired"
	NoticeExpiring   = "expiring"
	NoticeTooOld     = "too_old"
	NoticeAgeUnknown = "age_unknown"
)

// Notice is one key that needs rotating, for the log at each reload.
type Notice struct {
	Key     string // the key's config name
	Reason  string // one of the Notice* constants
	At      time.Time
	Message string
}

// LogValue renders a notice as log attributes.
func (n Notice) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("key", n.Key), slog.String("reason", n.Reason)}
	if !n.At.IsZero() {
		attrs = append(attrs, slog.Time("at", n.At))
	}
	return slog.GroupValue(attrs...)
}

func (o RotationOptions) withDefaults() RotationOptions {
	if o.WarnBefore <= 0 {
		o.WarnBefore = DefaultWarnBefore
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	return o
}

// RotationNotices lists the keys that have expired, expire within
// WarnBefore, or are older than MaxAge at now.
func RotationNotices(keys []Key, o RotationOptions, now time.Time) []Notice {
	o = o.withDefaults()
	var out []Notice
	rotate := "; make a new key with aiassistd keygen -name NAME, give it to the client, then remove this one"
	for _, k := range keys {
		if !k.NotAfter.IsZero() {
			switch left := k.NotAfter.Sub(now); {
			case left <= 0:
				out = append(out, Notice{Key: k.Name, Reason: NoticeExpired, At: k.NotAfter,
					Message: fmt.Sprintf("api key %q expired at %s%s", k.Name, k.NotAfter.UTC().Format(time.RFC3339), rotate)})
				continue
			case left <= o.WarnBefore:
				out = append(out, Notice{Key: k.Name, Reason: NoticeExpiring, At: k.NotAfter,
					Message: fmt.Sprintf("api key %q expires at %s, in %s%s", k.Name, k.NotAfter.UTC().Format(time.RFC3339), roundDays(left), rotate)})
				continue
			}
		}
		born := k.Created
		if born.IsZero() {
			born = k.NotBefore
		}
		if born.IsZero() {
			out = append(out, Notice{Key: k.Name, Reason: NoticeAgeUnknown,
				Message: fmt.Sprintf("api key %q has neither created nor not_before, so rotation.max_age cannot be checked; add created (aiassistd keygen writes it)", k.Name)})
			continue
		}
		if age := now.Sub(born); age > o.MaxAge {
			out = append(out, Notice{Key: k.Name, Reason: NoticeTooOld, At: born.Add(o.MaxAge),
				Message: fmt.Sprintf("api key %q is %s old, over rotation.max_age %s%s", k.Name, roundDays(age), roundDays(o.MaxAge), rotate)})
		}
	}
	return out
}

func roundDays(d time.Duration) string {
	if d < 24*time.Hour {
		return d.Round(time.Minute).String()
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days"
}

// keyExpirySet exports aiassist_auth_key_expiry_timestamp_seconds{key}
// for each key with a not_after, so that an alert can fire before a key
// expires. Keys without not_after have no series.
func keyExpirySet(keys []Key) *metrics.Set {
	s := metrics.NewSet()
	for _, k := range keys {
		if k.NotAfter.IsZero() {
			continue
		}
		s.NewGauge(`aiassist_auth_key_expiry_timestamp_seconds{key=`+strconv.Quote(k.Name)+`}`, nil).Set(float64(k.NotAfter.Unix()))
	}
	return s
}
