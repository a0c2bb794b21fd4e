package alert

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

// TestParseMetricsSetOutput reads what VictoriaMetrics/metrics really
// writes, with the label quoting the daemon uses (strconv.Quote).
func TestParseMetricsSetOutput(t *testing.T) {
	set := metrics.NewSet()
	odd := "q\"w\\e\nn\u00e9"
	set.NewCounter(`aiassist_requests_total{route="/v1/generate",model=` + strconv.Quote(odd) + `,code="500"}`).Add(7)
	h := set.NewPrometheusHistogramExt(`aiassist_request_duration_seconds{route="/v1/generate",model="qwen"}`, []float64{0.5, 1})
	h.Update(0.2)
	h.Update(3)
	set.NewGauge(`aiassist_queue_depth{model="qwen"}`, func() float64 { return 3 })
	set.NewGauge(`aiassist_config_last_reload_successful`, func() float64 { return 1 })
	set.NewCounter(`other_total`).Inc()
	var b bytes.Buffer
	metrics.ExposeMetadata(true)
	set.WritePrometheus(&b)
	metrics.ExposeMetadata(false)
	metrics.WriteProcessMetrics(&b)

	got, err := parseExposition(b.Bytes(), func(n string) bool { return needed[n] })
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	find := func(name string, want map[string]string) (float64, bool) {
		for _, s := range got {
			if s.name == name && (want == nil || equalLabels(labelMap(s.labels), want)) {
				return s.value, true
			}
		}
		return 0, false
	}
	if v, ok := find(RequestsSeries, map[string]string{"route": "/v1/generate", "model": odd, "code": "500"}); !ok || v != 7 {
		t.Errorf("requests: %v %v\n%s", v, ok, b.String())
	}
	for le, want := range map[string]float64{"0.5": 1, "1": 1, "+Inf": 2} {
		if v, ok := find(DurationBucketSeries, map[string]string{"route": "/v1/generate", "model": "qwen", "le": le}); !ok || v != want {
			t.Errorf("bucket le=%s: %v %v, want %v", le, v, ok, want)
		}
	}
	if v, ok := find(QueueDepthSeries, map[string]string{"model": "qwen"}); !ok || v != 3 {
		t.Errorf("queue depth: %v %v", v, ok)
	}
	if _, ok := find(CPUSecondsSeries, nil); !ok {
		t.Errorf("process_cpu_seconds_total not read:\n%s", b.String())
	}
	if _, ok := find("other_total", nil); ok {
		t.Error("a series the rules do not read was kept")
	}
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestParseExpositionLines(t *testing.T) {
	all := func(string) bool { return true }
	f := func(in string, wantName string, wantLabels map[string]string, wantValue float64) {
		t.Helper()
		got, err := parseExposition([]byte(in), all)
		if err != nil || len(got) != 1 {
			t.Fatalf("%q: %v %v", in, got, err)
		}
		s := got[0]
		if s.name != wantName || !equalLabels(labelMap(s.labels), wantLabels) || !sameFloat(s.value, wantValue) {
			t.Fatalf("%q: got %s %v %v", in, s.name, labelMap(s.labels), s.value)
		}
	}
	f("a 1", "a", map[string]string{}, 1)
	f("a{} 1.5e3", "a", map[string]string{}, 1500)
	f(`a{x="1", y = "2",} 2 1700000000000`, "a", map[string]string{"x": "1", "y": "2"}, 2)
	f(`a{x="}{,\" "} +Inf`, "a", map[string]string{"x": `}{," `}, math.Inf(1))
	f("  a:b_c 3\r", "a:b_c", map[string]string{}, 3)
	f("a NaN", "a", map[string]string{}, math.NaN())

	bad := []string{
		"1a 1", "a", "a{x=1} 1", `a{x="1" 1`, `a{x="1"} one`, `a{x="\q"} 1`, `a{="1"} 1`, "{} 1",
		"a{" + strings.Repeat(`x="1",`, maxLabels+1) + "} 1",
	}
	for _, in := range bad {
		got, err := parseExposition([]byte("# HELP a x\ngood 1\n"+in+"\nlater 2\n"), all)
		if err == nil {
			t.Errorf("%q: no error", in)
		} else if !strings.Contains(err.Error(), "line 3") {
			t.Errorf("%q: error %q does not name line 3", in, err)
		}
		// The lines around the bad one are still read.
		if len(got) != 2 || got[0].name != "good" || got[1].name != "later" {
			t.Errorf("%q: got %v", in, got)
		}
	}
}

func FuzzParseExposition(f *testing.F) {
	f.Add([]byte("aiassist_requests_total{route=\"/v1/generate\",model=\"qwen\",code=\"200\"} 10\n"))
	f.Add([]byte("# TYPE x counter\nx{le=\"+Inf\"} 1 123\nprocess_cpu_seconds_total 0.5\n"))
	f.Add([]byte("a{x=\"\\\"\\n\\\\\"} NaN\n{} 1\na{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, _ := parseExposition(b, func(string) bool { return true })
		if len(got) > bytes.Count(b, []byte("\n"))+1 {
			t.Fatalf("%d samples from %d lines", len(got), bytes.Count(b, []byte("\n"))+1)
		}
		for _, s := range got {
			if s.name == "" || !isNameStart(s.name[0]) || len(s.labels) > maxLabels {
				t.Fatalf("bad sample %+v", s)
			}
			for _, l := range s.labels {
				if l.name == "" || !isNameStart(l.name[0]) {
					t.Fatalf("bad label %+v", l)
				}
			}
		}
	})
}
