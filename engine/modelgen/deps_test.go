package modelgen

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the generator pure Go: it may link onnxpb, protobuf and the
// standard library, but never ONNX Runtime (only the tests do), so the
// generator builds without cgo on any machine.
func TestDeps(t *testing.T) {
	for _, pkg := range []string{".", "./cmd/genmodels"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for dep := range strings.FieldsSeq(string(out)) {
			switch {
			case dep == "github.com/aiassist/aiassist/engine/modelgen",
				dep == "github.com/aiassist/aiassist/engine/modelgen/cmd/genmodels",
				dep == "github.com/aiassist/aiassist/engine/onnxpb",
				strings.HasPrefix(dep, "google.golang.org/protobuf/"):
			default:
				t.Errorf("%s depends on %s; modelgen may import only onnxpb and protobuf", pkg, dep)
			}
		}
	}
}
