package schema

import "testing"

func TestSameSettings(t *testing.T) {
	parse := func(src string) *Config {
		t.Helper()
		c, err := Parse("config.cue", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := parse("models: demo: {kind: \"tensor\", path: \"/m/demo.onnx\"}\n")
	moved := parse("// a comment moves everything down\n\nmodels: demo: {\n\tkind: \"tensor\"\n\tpath: \"/m/demo.onnx\"\n}\n")
	other := parse("models: demo: {kind: \"tensor\", path: \"/m/other.onnx\"}\n")
	if !a.SameSettings(moved) {
		t.Error("a layout and comment edit changes the settings")
	}
	if a.Pos("models.demo.path") == moved.Pos("models.demo.path") {
		t.Error("the positions did not move; the test shows nothing")
	}
	if a.SameSettings(other) {
		t.Error("another model path is the same settings")
	}
}
