package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// TestQuantizedServe runs the daemon with a model of quantization "int8":
// it serves the INT8 form over HTTP with FP32's answer up to quantization
// error, a reload that turns quantization off and on again takes the
// cache entry instead of quantizing a second time, and the other model
// keeps serving throughout.
func TestQuantizedServe(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	mlp := modelgen.NewMLP([]int{64, 256, 4}, 7)
	if err := modelgen.WriteFile(filepath.Join(dir, "mlp.onnx"), mlp.Model(modelgen.MLPOptions{})); err != nil {
		t.Fatal(err)
	}
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	render := func(q string) string {
		return fmt.Sprintf("listeners: [{port: %d}]\nreload: watch: false\nruntime: cache_dir: \"cache\"\nmodels: {\n mlp: {kind: \"tensor\", path: \"mlp.onnx\", quantization: %q}\n demo: {kind: \"tensor\", path: \"demo.onnx\"}\n}\n", port, q)
	}
	writeConfig(t, cfg, render("int8"))
	p := start(t, cfg)
	gen := func(n float64) func() bool {
		return func() bool { return p.metrics(port)["aiassist_config_generation"] == n }
	}
	p.until("generation 1", gen(1))

	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(math.Cos(float64(i)))
	}
	check := func() {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "input", "shape": []int{1, 64}, "datatype": "FP32", "data": x}}})
		resp, err := p.client.Post(fmt.Sprintf("http://127.0.0.1:%d/v2/models/mlp/infer", port), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Outputs []struct{ Data []float32 } `json:"outputs"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || len(out.Outputs) != 1 {
			t.Fatalf("status %d, %v, %+v", resp.StatusCode, err, out)
		}
		want := mlp.Forward(x, 1)
		var dot, na, nb float64
		for i, w := range want {
			g := float64(out.Outputs[0].Data[i])
			dot, na, nb = dot+float64(w)*g, na+float64(w)*float64(w), nb+g*g
		}
		if c := dot / math.Sqrt(na*nb); c < 0.99 {
			t.Errorf("cosine %.4f to FP32: %v, want %v", c, out.Outputs[0].Data, want)
		}
		if err := infer(t.Context(), p.client, port, "demo"); err != nil {
			t.Errorf("demo: %v", err)
		}
	}
	check()
	quantized := func() int { return strings.Count(p.log.String(), `"msg":"quantized model"`) }
	if quantized() != 1 {
		t.Fatalf("%d quantizations logged, want 1", quantized())
	}

	writeConfig(t, cfg, render("none"))
	p.signal(syscall.SIGHUP)
	p.until("generation 2", gen(2))
	check()
	writeConfig(t, cfg, render("int8"))
	p.signal(syscall.SIGHUP)
	p.until("generation 3", gen(3))
	check()
	if n := quantized(); n != 1 || !strings.Contains(p.log.String(), `"msg":"using the cached quantized model"`) {
		t.Errorf("%d quantizations logged after the reloads, want 1 and the cache used", n)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "cache", "*", "mlp.onnx"))
	if len(matches) != 1 {
		t.Errorf("cache entries %v, want one mlp.onnx under cache_dir, relative to the config", matches)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}
