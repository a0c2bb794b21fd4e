package schema

import (
	"strings"
	"testing"
)

// TestPositions checks Config.Pos and Config.Issue on a file with several
// models whose paths are set in every way CUE allows: in the model's own
// struct, apart from it, twice, by a pattern, and through a hidden field.
func TestPositions(t *testing.T) {
	const file = "testdata/positions.good.cue"
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	pos := func(path, want string) {
		t.Helper()
		if want != "" {
			want = file + ":" + want
		}
		if got := cfg.Pos(path); got != want {
			t.Errorf("Pos(%q) = %q, want %q", path, got, want)
		}
	}
	model := func(name string) Model {
		t.Helper()
		m, ok := cfg.Models[name]
		if !ok {
			t.Fatalf("no model %q", name)
		}
		return m
	}
	pos(model("demo").FieldPath("path"), "10:12")
	pos(model("types.v2").FieldPath("path"), "12:37")
	pos(model("qwen").FieldPath("path"), "20:21")
	pos(model("qwen").FieldPath("kind"), "13:14")
	pos(model("twice").FieldPath("path"), "15:32")
	pos(model("shared").FieldPath("path"), "24:26")
	pos(model("base").FieldPath("path"), "5:32")
	pos("listeners.0.port", "2:20")
	pos("listeners.1.port", "3:8")
	pos("listeners.1.address", "2:37")
	// Defaults are not in the file.
	pos(model("demo").FieldPath("instances"), "")
	pos("server.request_timeout", "")
	pos("nothing.at.all", "")

	if got, want := model("types.v2").FieldPath("path"), `models."types.v2".path`; got != want {
		t.Errorf("FieldPath = %q, want %q", got, want)
	}

	issue := func(path, want string) {
		t.Helper()
		err := &Error{Issues: []Issue{cfg.Issue(path, "no such file")}}
		if got := err.Error(); got != file+":"+want {
			t.Errorf("Issue(%q) reads %q, want %q", path, got, file+":"+want)
		}
	}
	issue(model("qwen").FieldPath("path"), "20:21: models.qwen.path: no such file")
	issue(model("types.v2").FieldPath("path"), `12:37: models."types.v2".path: no such file`)
	// A default is placed at the closest value the file sets.
	issue(model("demo").FieldPath("instances"), "8:8: models.demo.instances: no such file")
	issue(model("types.v2").FieldPath("instances"), `12:14: models."types.v2".instances: no such file`)
	issue("server.request_timeout", "1:1: server.request_timeout: no such file")
}

// TestPositionsParse: positions name the file as Parse was given it, and
// a model set only by unification across the file is found.
func TestPositionsParse(t *testing.T) {
	src := "models: a: kind: \"tensor\"\n\n\nmodels: a: path: \"a.onnx\"\n"
	cfg, err := Parse("conf/config.cue", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Pos("models.a.path"), "conf/config.cue:4:18"; got != want {
		t.Errorf("Pos = %q, want %q", got, want)
	}
	// A Config built by hand has no positions, and says so without
	// failing.
	var c Config
	if got := c.Pos("models.a.path"); got != "" {
		t.Errorf("Pos of a zero Config = %q", got)
	}
	if is := c.Issue("models.a.path", "m"); is.String() != "models.a.path: m" {
		t.Errorf("Issue of a zero Config = %q", is.String())
	}
	if !strings.Contains(cfg.Issue("models.a.path", "gone").String(), "conf/config.cue:4:18: models.a.path: gone") {
		t.Errorf("Issue = %q", cfg.Issue("models.a.path", "gone").String())
	}
}
