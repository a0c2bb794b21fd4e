package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportKubernetes runs the subcommand: YAML on stdout, warnings on
// stderr, and the exit codes of a wrong use and an invalid config.
func TestExportKubernetes(t *testing.T) {
	code, out, errOut := runCmd("export", "kubernetes", "-config", "../../examples/config.cue", "-image", "aiassist:9.9", "-namespace", "ml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"kind: Deployment", "image: aiassist:9.9", "namespace: ml", "kind: ScaledObject", "timezone: Asia/Shanghai"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !strings.Contains(errOut, "warning: ") || strings.Contains(out, "warning:") {
		t.Errorf("warnings belong on stderr: stderr %q", errOut)
	}
	if code, _, _ := runCmd("export", "helm"); code != 2 {
		t.Errorf("export helm: exit %d, want 2", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.cue")
	if err := os.WriteFile(bad, []byte(`models: m: {kind: "tensor", path: "m.onnx", scaling: {min_instances: 3, max_instances: 2}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd("export", "kubernetes", "-config", bad)
	if code != 1 || !strings.Contains(errOut, "bad.cue:1:") || !strings.Contains(errOut, "max_instances 2 is below min_instances 3") {
		t.Errorf("invalid config: exit %d, stderr %q", code, errOut)
	}
}
