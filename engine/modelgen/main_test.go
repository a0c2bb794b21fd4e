package modelgen

import (
	"fmt"
	"os"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// defaultORTLib is where packaging/fetch-onnxruntime.sh puts the runtime,
// relative to this package.
const defaultORTLib = "../../build/onnxruntime/libonnxruntime.so.1.24.1"

// ortSkip is why the ONNX Runtime tests cannot run, or empty if they can.
var ortSkip string

// TestMain initializes ONNX Runtime once: its environment is process-global,
// so per-test setup would race between parallel tests.
func TestMain(m *testing.M) {
	var lib string
	for _, c := range []string{os.Getenv("ONNXRUNTIME_LIB"), defaultORTLib} {
		if _, err := os.Stat(c); c != "" && err == nil {
			lib = c
			break
		}
	}
	if lib == "" {
		ortSkip = fmt.Sprintf("ONNX Runtime not found in $ONNXRUNTIME_LIB (%q) or at %s; run packaging/fetch-onnxruntime.sh",
			os.Getenv("ONNXRUNTIME_LIB"), defaultORTLib)
		os.Exit(m.Run())
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot initialize ONNX Runtime from %s: %v\n", lib, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := ort.DestroyEnvironment(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot destroy ONNX Runtime environment: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// requireORT skips a test that needs ONNX Runtime when it is missing,
// except with CI=true, where the runtime is always fetched first.
func requireORT(t *testing.T) {
	t.Helper()
	if ortSkip == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(ortSkip)
	}
	t.Skip(ortSkip)
}
