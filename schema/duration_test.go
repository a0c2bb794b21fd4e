package schema

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	f := func(s string, want time.Duration) {
		t.Helper()
		got, err := parseDuration(s)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	f("0", 0)
	f("0s", 0)
	f("0d", 0)
	f("1d", 24*time.Hour)
	f("10d", 240*time.Hour)
	f("90d", 90*24*time.Hour)
	f("1.5d", 36*time.Hour)
	f("0.25d", 6*time.Hour)
	f("1d12h", 36*time.Hour)
	f("12h1d", 36*time.Hour)
	f("1d1d", 48*time.Hour)
	f("2d3h4m5s6ms7us8ns", 2*24*time.Hour+3*time.Hour+4*time.Minute+5*time.Second+6*time.Millisecond+7*time.Microsecond+8)
	f("1µs", time.Microsecond)
	f("1μs", time.Microsecond)
	f("250ms", 250*time.Millisecond)
	f("1h30m", 90*time.Minute)
	f("1.5s", 1500*time.Millisecond)
	// The largest whole number of days, and a fraction that stays in range.
	f("106751d", 106751*24*time.Hour)
	f("106751.9d", 106751*24*time.Hour+time.Duration(0.9*float64(24*time.Hour)))

	bad := func(s string) {
		t.Helper()
		if got, err := parseDuration(s); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", s, got)
		}
	}
	bad("")
	bad("d")
	bad("1")
	bad("1x")
	bad("1dd")
	bad(".5d")
	bad("1.d")
	bad("1.2.3d")
	bad("-1d")
	bad("+1d")
	bad("1 d")
	bad("106752d")
	bad("106751d1d")
	bad("99999999999999999999d")
	bad("106751d23h59m59s")
	bad("9999999999h")
}

// TestParseDurationLikeGo: without days, parseDuration reads what the
// schema admits exactly as time.ParseDuration does.
func TestParseDurationLikeGo(t *testing.T) {
	for _, s := range []string{"0", "1ns", "1.5h", "1h2m3.5s", "100000h", "2562047h", "2562048h", "0.000000001s", "1.0000000001s", "3us4ms"} {
		want, werr := time.ParseDuration(s)
		got, err := parseDuration(s)
		if got != want || (err == nil) != (werr == nil) {
			t.Errorf("parseDuration(%q) = %v, %v; time.ParseDuration = %v, %v", s, got, err, want, werr)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                       "0",
		10 * 24 * time.Hour:     "10d",
		36 * time.Hour:          "36h",
		5 * time.Minute:         "5m",
		time.Second:             "1s",
		90 * time.Second:        "90s",
		1500 * time.Millisecond: "1.5s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// durationSyntax is #Duration's pattern, as Go reads it.
var durationSyntax = regexp.MustCompile(`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h|d))+)$`)

// TestDurationSyntax keeps durationSyntax, which FuzzParseDuration relies
// on, the pattern of config.cue.
func TestDurationSyntax(t *testing.T) {
	want := "#Duration: =~\"" + strings.ReplaceAll(durationSyntax.String(), `\`, `\\`) + "\""
	if !strings.Contains(string(schemaSrc), want) {
		t.Errorf("config.cue does not define %s", want)
	}
}

// FuzzParseDuration checks that parseDuration never panics, reads what the
// schema's pattern admits as the sum of its parts (refusing it only when
// that is out of range), refuses everything else, and agrees with
// time.ParseDuration on strings without days. Seeds are in
// testdata/fuzz/FuzzParseDuration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "10d", "1.5d", "1d12h30m", "250ms", "106751d", "106752d", "1.d", ".5d", "-1s", "1e3s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		admitted := durationSyntax.MatchString(s)
		switch {
		case err != nil && d != 0:
			t.Fatalf("parseDuration(%q) = %v with error %v", s, d, err)
		case err == nil && !admitted:
			t.Fatalf("parseDuration(%q) = %v, but the schema does not admit it", s, d)
		case !admitted:
			return
		}
		// Within a part in a billion of the sum, or out of range.
		want := approxDuration(s)
		switch {
		case err != nil && want < 0.999*math.MaxInt64:
			t.Fatalf("parseDuration(%q) refuses what the schema admits (about %g ns): %v", s, want, err)
		case err == nil && want > 1.001*math.MaxInt64:
			t.Fatalf("parseDuration(%q) = %v, but it is about %g ns, out of range", s, d, want)
		case err == nil && math.Abs(float64(d)-want) > 1e-9*want+float64(len(s)):
			t.Fatalf("parseDuration(%q) = %v, want about %g ns", s, d, want)
		}
		if err == nil && !strings.Contains(s, "d") {
			if g, gerr := time.ParseDuration(s); gerr != nil || g != d {
				t.Fatalf("parseDuration(%q) = %v; time.ParseDuration = %v, %v", s, d, g, gerr)
			}
		}
	})
}

// approxDuration is the value in nanoseconds of a duration the schema
// admits, summed in floating point: a reference that knows nothing of
// parseDuration's way.
func approxDuration(s string) float64 {
	units := map[string]float64{"ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9, "d": 86400e9}
	var sum float64
	for _, m := range durationPart.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.ParseFloat(m[1], 64)
		sum += n * units[m[2]]
	}
	return sum
}

var durationPart = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?)(ns|us|µs|μs|ms|s|m|h|d)`)
