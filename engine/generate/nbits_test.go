package generate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// TestNBitsGenerates loads an int4 export (projections as com.microsoft
// MatMulNBits, as ONNX Runtime's 4-bit quantizer writes them) and its
// fp32 twin: both load, and their greedy tokens agree on at least 90 % of
// the positions over a fixed prompt set.
func TestNBitsGenerates(t *testing.T) {
	t.Parallel()
	tiny := modelgen.TinyLlama()
	q := modelgen.QuantizeNBits(tiny.Llama, modelgen.NBitsOptions{BlockSize: 32, ZeroPoints: true})
	folder := func(name string, write func(path string) error) string {
		dir := filepath.Join(t.TempDir(), name)
		if err := write(filepath.Join(dir, "model.onnx")); err != nil {
			t.Fatal(err)
		}
		for f, b := range tiny.Files() {
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	int4 := load(t, Options{Name: "int4", Dir: folder("int4", func(p string) error { return modelgen.WriteFile(p, q.Model("tiny-llama-int4")) })})
	twin := load(t, Options{Name: "twin", Dir: folder("twin", func(p string) error { return modelgen.WriteFile(p, q.Twin.Model("tiny-llama-twin")) })})
	prompts := [][]int{{40, 71, 82, 82, 85, 283}, {306, 308, 71}, {5}, {72, 73, 74, 75}, {300, 12, 90, 44, 44}, {100, 101}}
	var same, total int
	for _, p := range prompts {
		a, _ := greedyIDs(t, int4, p, 16)
		b, _ := greedyIDs(t, twin, p, 16)
		if len(a) != 16 || len(b) != 16 {
			t.Fatalf("prompt %v: %d and %d tokens, want 16 each", p, len(a), len(b))
		}
		t.Logf("prompt %v: int4 %v, twin %v", p, a, b)
		for i := range a {
			total++
			if a[i] == b[i] {
				same++
			}
		}
	}
	if same*10 < total*9 {
		t.Errorf("int4 and fp32 twin agree on %d of %d positions, want at least 90 %%", same, total)
	}
}
