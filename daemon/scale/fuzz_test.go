package scale

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// FuzzParseStat: any stat line parses or fails, never panics, and a
// parsed CPU time is not negative.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (aiassistd) S 0 1 1 0 -1 4194560 1 0 0 0 250 130 0 0 20 0 8 0 100 0 0\n"))
	f.Add([]byte("1 ((x) y) R 0 1 1 0 -1 0 0 0 0 0 18446744073709551615 1 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseStat(b)
		if err == nil && v < 0 {
			t.Fatalf("parseStat(%q) = %v", b, v)
		}
	})
}

// FuzzScheduleActive: a window of any two expressions the parser takes
// is judged without panicking, and one that is open has opened.
func FuzzScheduleActive(f *testing.F) {
	f.Add("0 9 * * 1-5", "0 18 * * 1-5", int64(1796000000))
	f.Add("@every 1s", "@daily", int64(0))
	f.Add("0 0 30 2 *", "* * * * *", int64(1700000000))
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	f.Fuzz(func(t *testing.T, start, until string, unix int64) {
		s, err1 := parser.Parse(start)
		u, err2 := parser.Parse(until)
		if err1 != nil || err2 != nil {
			return
		}
		now := time.Unix(unix%(1<<34), 0)
		sc := Schedule{Start: s, Until: u, Instances: 2, Location: time.UTC}
		sc.Active(now)
	})
}
