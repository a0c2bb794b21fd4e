package observe

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

var seriesName = regexp.MustCompile(`^aiassist_[a-zA-Z0-9_:]*`)

// registeredNames returns the aiassist_ names that string literals of the
// module's non-test Go files start with, and where each was seen. Only
// help.go, which holds the table itself, is left out.
func registeredNames(t *testing.T) map[string]string {
	t.Helper()
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	self, _ := filepath.Abs("help.go")
	names := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (n == "testdata" || n == "build" || strings.HasPrefix(n, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if abs, _ := filepath.Abs(path); abs == self {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if m := seriesName.FindString(s); m != "" {
				names[m] = fset.Position(lit.Pos()).String()
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 20 {
		t.Fatalf("found only %d aiassist_ names in the module; is the scan broken? %v", len(names), names)
	}
	return names
}

// family resolves a registered name, which may be a histogram's _bucket
// series (as alert rules name it), to its entry in Families.
func family(name string) (string, bool) {
	if _, ok := Families[name]; ok {
		return name, true
	}
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, s); ok {
			if f, ok := Families[base]; ok && (f.Type == "histogram" || f.Type == "summary" && s != "_bucket") {
				return base, true
			}
		}
	}
	return "", false
}

// TestFamiliesCoverRegisteredNames is the meta-test that keeps the help
// table from rotting: a new aiassist_ series without help text fails here,
// and so does an entry whose series no code registers any more.
func TestFamiliesCoverRegisteredNames(t *testing.T) {
	names := registeredNames(t)
	used := map[string]bool{}
	for name, where := range names {
		fam, ok := family(name)
		if !ok {
			t.Errorf("%s: %s has no help text; add it to observe.Families (help.go)", where, name)
			continue
		}
		used[fam] = true
	}
	for name := range Families {
		if strings.HasPrefix(name, "aiassist_") && !used[name] {
			t.Errorf("observe.Families describes %s, which no code registers; remove it", name)
		}
	}
}

func TestFamiliesWellFormed(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	for name, f := range Families {
		if !valid.MatchString(name) {
			t.Errorf("%q is not a metric name", name)
		}
		if !slices.Contains([]string{"counter", "gauge", "histogram", "summary"}, f.Type) {
			t.Errorf("%s: type %q is not counter, gauge, histogram or summary", name, f.Type)
		}
		if f.Help == "" || strings.ContainsAny(f.Help, "\n\\") || !strings.HasSuffix(f.Help, ".") {
			t.Errorf("%s: help %q must be one sentence-ending line", name, f.Help)
		}
	}
}

// subsystems are the <subsystem> part of aiassist_<subsystem>_<name>_<unit>.
var subsystems = []string{"abuse", "alert", "auth", "build", "cache", "config", "embedding", "generation", "http", "instances", "limit", "model", "request", "scaling"}

// legacyNames predate the naming rule. They are kept, not renamed: the
// exported alert rules, the Grafana dashboard and operators' queries use
// them. They were reported to the lead; a rename would need both names
// exported for a while.
var legacyNames = map[string]string{
	"aiassist_requests_total":              "no subsystem (http or request)",
	"aiassist_errors_total":                "no subsystem",
	"aiassist_queue_depth":                 "no subsystem (model); a count, no unit",
	"aiassist_batch_size":                  "no subsystem (model)",
	"aiassist_inference_duration_seconds":  "no subsystem (model)",
	"aiassist_sequences_active":            "no subsystem (generation)",
	"aiassist_generated_tokens_total":      "no subsystem (generation)",
	"aiassist_prompt_tokens_total":         "no subsystem (generation)",
	"aiassist_time_to_first_token_seconds": "no subsystem (generation)",
	"aiassist_inter_token_latency_seconds": "no subsystem (generation)",
	"aiassist_cpu_cores":                   "no subsystem (process)",
}

// TestSeriesNaming checks aiassist_<subsystem>_<name>_<unit>: a known
// subsystem, counters ending in _total and nothing else so, and times in
// seconds. Names that predate the rule are listed in legacyNames.
func TestSeriesNaming(t *testing.T) {
	for name, f := range Families {
		rest, ok := strings.CutPrefix(name, "aiassist_")
		if !ok {
			continue
		}
		var problems []string
		sub, _, _ := strings.Cut(rest, "_")
		if !slices.Contains(subsystems, sub) {
			problems = append(problems, "no known subsystem")
		}
		if f.Type == "counter" != strings.HasSuffix(name, "_total") {
			problems = append(problems, "counters and only counters end in _total")
		}
		if regexp.MustCompile(`duration|latency|time|timestamp|_load`).MatchString(rest) && !strings.HasSuffix(name, "_seconds") {
			problems = append(problems, "a time ends in _seconds")
		}
		_, legacy := legacyNames[name]
		switch {
		case len(problems) > 0 && !legacy:
			t.Errorf("%s: %s; name series aiassist_<subsystem>_<name>_<unit> with a subsystem of %v", name, strings.Join(problems, ", "), subsystems)
		case len(problems) == 0 && legacy:
			t.Errorf("%s is listed in legacyNames but follows the rule; remove it there", name)
		}
	}
	for name := range legacyNames {
		if _, ok := Families[name]; !ok {
			t.Errorf("legacyNames lists %s, which observe.Families does not describe", name)
		}
	}
}

func TestDescribe(t *testing.T) {
	families := map[string]Family{
		"a_total":     {"counter", `Counts a\b.`},
		"h_seconds":   {"histogram", "Times."},
		"s_seconds":   {"summary", "Pauses."},
		"x_count":     {"counter", "Ends in _count but is a counter."},
		"g":           {"gauge", "Level."},
		"h_seconds_x": {"gauge", "Shares a prefix."},
	}
	f := func(in, want string) {
		t.Helper()
		var b bytes.Buffer
		Describe(&b, []byte(in), families)
		if got := b.String(); got != want {
			t.Errorf("Describe(%q):\ngot:\n%s\nwant:\n%s", in, got, want)
		}
	}
	// One family from two sets is written once, its samples together;
	// comments of the input go.
	f("# HELP a_total\n# TYPE a_total counter\na_total{k=\"1\"} 1\ng 2\na_total{k=\"2\"} 3\n",
		"# HELP a_total Counts a\\\\b.\n# TYPE a_total counter\na_total{k=\"1\"} 1\na_total{k=\"2\"} 3\n# HELP g Level.\n# TYPE g gauge\ng 2\n")
	// A histogram's series are one family; a family named like one of its
	// series stays apart.
	f("h_seconds_bucket{le=\"1\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 3\nh_seconds_count 2\nh_seconds_x 5\n",
		"# HELP h_seconds Times.\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"1\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 3\nh_seconds_count 2\n# HELP h_seconds_x Shares a prefix.\n# TYPE h_seconds_x gauge\nh_seconds_x 5\n")
	// A summary: quantiles, _sum and _count.
	f("s_seconds{quantile=\"0.5\"} 1\ns_seconds_sum 2\ns_seconds_count 3\n",
		"# HELP s_seconds Pauses.\n# TYPE s_seconds summary\ns_seconds{quantile=\"0.5\"} 1\ns_seconds_sum 2\ns_seconds_count 3\n")
	// A name that is itself a family is not a _count series.
	f("x_count 4\n", "# HELP x_count Ends in _count but is a counter.\n# TYPE x_count counter\nx_count 4\n")
	// An unknown family is written without metadata, an unknown histogram
	// still as one family; a last line without newline gets one.
	f("u_bucket{le=\"1\"} 1\nu_sum 1\nu_count 1\nv 1\ng 7", "u_bucket{le=\"1\"} 1\nu_sum 1\nu_count 1\nv 1\n# HELP g Level.\n# TYPE g gauge\ng 7\n")
	// A line with no value (malformed) still joins its family.
	f("g 1\nv\ng", "# HELP g Level.\n# TYPE g gauge\ng 1\ng\nv\n")
	f("", "")
	f("\n# only a comment\n\n", "")
}

// TestWritePrometheusDescribesRuntime scrapes this process the way the
// metrics route does: every go_ and process_ family VictoriaMetrics/metrics
// writes here must have help text, and promtool must find nothing else to
// say but the names the library chose.
func TestWritePrometheusDescribesRuntime(t *testing.T) {
	s := metrics.NewSet()
	s.NewCounter(`aiassist_requests_total{route="/x",model="m",code="200"}`).Inc()
	s.NewPrometheusHistogramExt(`aiassist_request_duration_seconds{route="/x",model="m"}`, LatencyBuckets).Update(0.1)
	s.NewGauge(`aiassist_queue_depth{model="m"}`, func() float64 { return 0 })
	metrics.RegisterSet(s)
	defer metrics.UnregisterSet(s, true)
	// A second set with the same family, as a reload's next generation
	// has: its samples must join the first set's.
	s2 := metrics.NewSet()
	s2.NewGauge(`aiassist_queue_depth{model="n"}`, func() float64 { return 1 })
	metrics.RegisterSet(s2)
	defer metrics.UnregisterSet(s2, true)

	var b bytes.Buffer
	WritePrometheus(&b)
	out := b.String()
	seen := map[string]bool{}
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name := sampleName([]byte(line))
		fam, _ := familyOf(name, []byte(line), Families, func(string) string { return "" })
		if _, ok := Families[fam]; !ok {
			t.Errorf("%s has no help text; add it to observe.Families", fam)
		}
		seen[fam] = true
	}
	for _, want := range []string{"aiassist_queue_depth", "aiassist_request_duration_seconds", "process_cpu_seconds_total", "process_open_fds", "process_resident_memory_bytes", "go_goroutines"} {
		if !seen[want] {
			t.Errorf("the scrape lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "# TYPE aiassist_queue_depth gauge\n"); n != 1 {
		t.Errorf("aiassist_queue_depth has %d TYPE lines, want 1:\n%s", n, out)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing; install the Debian package prometheus")
		}
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	got, _ := cmd.CombinedOutput()
	if problems := lintProblems(string(got)); len(problems) > 0 {
		t.Errorf("promtool check metrics:\n%s", strings.Join(problems, "\n"))
	}
}

// lintProblems are the lines of promtool check metrics' output that are
// not accepted.
func lintProblems(out string) []string {
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line = strings.TrimSpace(line); line != "" && !slices.Contains(AcceptedLint, line) {
			problems = append(problems, line)
		}
	}
	return problems
}

// FuzzDescribe checks that Describe, whatever the exposition, keeps every
// sample line once, drops the comments, and writes each family's samples
// together under at most one # HELP and one # TYPE line.
func FuzzDescribe(f *testing.F) {
	f.Add("a_total{k=\"1\"} 1\ng 2\na_total{k=\"2\"} 3\n")
	f.Add("h_seconds_bucket{le=\"1\"} 1\nh_seconds_sum 3\nh_seconds_count 2\n# HELP x\nu_bucket{le=\"+Inf\"} 1\nu_count 1")
	f.Add("{} 1\n 2\n\t\n_bucket 1\n_count{le=\"1\"} 0\n")
	families := map[string]Family{"a_total": {"counter", "A."}, "h_seconds": {"histogram", "H."}, "s": {"summary", "S."}, "g": {"gauge", "G."}}
	f.Fuzz(func(t *testing.T, in string) {
		var b bytes.Buffer
		Describe(&b, []byte(in), families)
		var want []string
		for line := range strings.Lines(in) {
			if strings.TrimSpace(line) != "" && line[0] != '#' {
				want = append(want, strings.TrimSuffix(line, "\n"))
			}
		}
		var got []string
		helps := map[string]int{}
		seen := map[string]bool{}
		last := ""
		for line := range strings.Lines(b.String()) {
			line = strings.TrimSuffix(line, "\n")
			if name, ok := strings.CutPrefix(line, "# HELP "); ok {
				name, _, _ = strings.Cut(name, " ")
				if helps[name]++; helps[name] > 1 {
					t.Fatalf("two HELP lines for %s:\n%s", name, b.String())
				}
				continue
			}
			if strings.HasPrefix(line, "# TYPE ") {
				continue
			}
			got = append(got, line)
			fam, _ := familyOf(sampleName([]byte(line)), []byte(line), families, func(string) string { return "" })
			if fam != last && seen[fam] && families[fam].Type != "" {
				t.Fatalf("family %s is split:\n%s", fam, b.String())
			}
			seen[fam], last = true, fam
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("samples changed:\nin:\n%q\nout:\n%q", want, got)
		}
	})
}

// BenchmarkWritePrometheus is the cost of a scrape of this process with
// the help text, against the library's own writer.
func BenchmarkWritePrometheus(b *testing.B) {
	s := metrics.NewSet()
	for _, m := range []string{"a", "b", "c", "d"} {
		s.NewCounter(`aiassist_requests_total{route="/v2/models/{name}/infer",model="` + m + `",code="200"}`).Inc()
		s.NewPrometheusHistogramExt(`aiassist_request_duration_seconds{route="/v2/models/{name}/infer",model="`+m+`"}`, LatencyBuckets).Update(0.01)
	}
	metrics.RegisterSet(s)
	defer metrics.UnregisterSet(s, true)
	b.Run("described", func(b *testing.B) {
		for b.Loop() {
			WritePrometheus(io.Discard)
		}
	})
	b.Run("library", func(b *testing.B) {
		for b.Loop() {
			metrics.WritePrometheus(io.Discard, true)
			metrics.WriteFDMetrics(io.Discard)
		}
	})
}
