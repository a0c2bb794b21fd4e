package schema

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// day is the unit "d" of the config's durations. Rotation policies are
// written in days ("90d"), which time.ParseDuration does not take.
const day = 24 * time.Hour

var errDurationRange = errors.New("duration out of range")

// parseDuration parses a duration as #Duration writes it: "0", or numbers
// each followed by a unit of time.ParseDuration or "d" (24h), such as
// "1d12h" or "1.5d". Unlike time.ParseDuration it takes no sign, which the
// schema does not allow either.
func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var total time.Duration
	for rest := s; rest != ""; {
		// A number, then its unit: everything up to the next digit.
		i := strings.IndexFunc(rest, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i <= 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		j := strings.IndexFunc(rest[i:], func(r rune) bool { return r >= '0' && r <= '9' })
		if j < 0 {
			j = len(rest) - i
		}
		num, unit := rest[:i], rest[i:i+j]
		rest = rest[i+j:]
		// ParseDuration also takes ".5s" and "1.s", which the schema
		// does not.
		whole, frac, dot := strings.Cut(num, ".")
		if !digits(whole) || (dot && !digits(frac)) {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		var d time.Duration
		if unit == "d" {
			// Whole days are exact; a fraction goes through hours, which
			// ParseDuration takes to the nanosecond.
			n, err := strconv.ParseInt(whole, 10, 64)
			if err != nil || n > math.MaxInt64/int64(day) {
				return 0, errDurationRange
			}
			d = time.Duration(n) * day
			if dot {
				h, err := time.ParseDuration("0." + frac + "h")
				if err != nil {
					return 0, fmt.Errorf("invalid duration %q", s)
				}
				if d > math.MaxInt64-24*h {
					return 0, errDurationRange
				}
				d += 24 * h
			}
		} else {
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				return 0, err
			}
		}
		if d < 0 || total > math.MaxInt64-d {
			return 0, errDurationRange
		}
		total += d
	}
	return total, nil
}

// digits reports whether s is one or more ASCII digits.
func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// formatDuration writes d for a message the way an operator writes it in
// the config, in its largest whole unit: "5m" rather than "5m0s", "10d"
// rather than "240h0m0s".
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return d.String()
}
