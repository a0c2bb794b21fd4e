package scale

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule keeps at least Instances from each time Start matches to the
// next time Until matches after it, both read in Location.
type Schedule struct {
	Start, Until cron.Schedule
	Instances    int
	Location     *time.Location
}

// lookbacks are how far back Active looks for the latest start, shortest
// first: the latest start found in a shorter look is later than any in a
// longer one, so the first look that finds one is done. A window that
// opened more than a year ago and is still open is not seen.
var lookbacks = []time.Duration{time.Hour, 25 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour}

// maxSteps bounds the matches one look walks through.
const maxSteps = 20000

// Active reports whether now is inside one of the schedule's windows.
func (s Schedule) Active(now time.Time) bool {
	now = now.In(s.Location)
	for _, back := range lookbacks {
		var last time.Time
		t := now.Add(-back)
		for range maxSteps {
			next := s.Start.Next(t)
			if next.IsZero() || next.After(now) {
				break
			}
			last, t = next, next
		}
		if !last.IsZero() {
			end := s.Until.Next(last)
			return !end.IsZero() && end.After(now)
		}
	}
	return false
}
