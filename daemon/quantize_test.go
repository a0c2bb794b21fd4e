package daemon

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/generate"
	"github.com/aiassist/aiassist/engine/modelgen"
	"github.com/aiassist/aiassist/schema"
)

var (
	rtOnce sync.Once
	rt     *engine.Runtime
	rtErr  error
)

// ortRuntime loads ONNX Runtime where the daemon would find it.
func ortRuntime(t testing.TB) *engine.Runtime {
	t.Helper()
	rtOnce.Do(func() { rt, rtErr = engine.Init(engine.RuntimeOptions{}) })
	if rtErr != nil {
		t.Fatalf("these tests load models into ONNX Runtime: %v", rtErr)
	}
	return rt
}

// logBuffer is a log sink safe for the loaders' goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// quantTest builds states from config sources in one folder, as the
// daemon's loads and reloads do, logging into log.
type quantTest struct {
	t      *testing.T
	dir    string
	log    *logBuffer
	logger *slog.Logger
	opened map[*loadedModel]bool
}

func newQuantTest(t *testing.T) *quantTest {
	q := &quantTest{t: t, dir: t.TempDir(), log: &logBuffer{}, opened: map[*loadedModel]bool{}}
	q.logger = slog.New(slog.NewTextHandler(q.log, nil))
	t.Cleanup(func() {
		for lm := range q.opened {
			lm.close()
		}
	})
	return q
}

// build loads src (a config file's text) over old, like a reload.
func (q *quantTest) build(src string, old *state) (*state, error) {
	q.t.Helper()
	path := filepath.Join(q.dir, "config.cue")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		q.t.Fatal(err)
	}
	cfg, err := schema.Load(path)
	if err != nil {
		q.t.Fatal(err)
	}
	st, err := buildState(q.logger, ortRuntime(q.t), metrics.NewSet(), cfg, old, 1)
	if err == nil {
		for _, lm := range st.models {
			q.opened[lm] = true
		}
	}
	return st, err
}

func (q *quantTest) mustBuild(src string, old *state) *state {
	q.t.Helper()
	st, err := q.build(src, old)
	if err != nil {
		q.t.Fatal(err)
	}
	return st
}

// writeMLP writes a tensor MLP whose weights (64x256, 256x4) are large
// enough for the default min_elements.
func writeMLP(t *testing.T, path string, seed uint64) *modelgen.MLP {
	t.Helper()
	m := modelgen.NewMLP([]int{64, 256, 4}, seed)
	if err := modelgen.WriteFile(path, m.Model(modelgen.MLPOptions{})); err != nil {
		t.Fatal(err)
	}
	return m
}

// inferRows runs 8 rows through the tensor model and checks each
// against the MLP's FP32 Forward: cosine >= 0.99.
func inferRows(t *testing.T, m *engine.TensorModel, mlp *modelgen.MLP) {
	t.Helper()
	x := make([]float32, 8*64)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	data := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	out, err := m.Infer(context.Background(), []engine.Tensor{{Name: "input", DataType: engine.FP32, Shape: []int64{8, 64}, Data: data}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := mlp.Forward(x, 8)
	for r := range 8 {
		var dot, na, nb float64
		for j := range 4 {
			a := float64(want[r*4+j])
			b := float64(math.Float32frombits(binary.LittleEndian.Uint32(out[0].Data[4*(r*4+j):])))
			dot, na, nb = dot+a*b, na+a*a, nb+b*b
		}
		if c := dot / math.Sqrt(na*nb); c < 0.99 {
			t.Errorf("row %d: cosine %.4f to FP32", r, c)
		}
	}
}

func tensorConfig(cacheDir, quantization string) string {
	return fmt.Sprintf("runtime: cache_dir: %q\nmodels: {\n a: {kind: \"tensor\", path: \"a.onnx\", quantization: %q}\n b: {kind: \"tensor\", path: \"b.onnx\"}\n}\n", cacheDir, quantization)
}

// TestQuantizedCache: the first load quantizes, a second (a restart) takes
// the cache entry, a changed source file is quantized again, and a
// corrupt entry is rebuilt; quantizations counts the rewrites.
func TestQuantizedCache(t *testing.T) {
	q := newQuantTest(t)
	mlp := writeMLP(t, filepath.Join(q.dir, "a.onnx"), 1)
	writeMLP(t, filepath.Join(q.dir, "b.onnx"), 2)
	cache := filepath.Join(q.dir, "state", "cache") // created by the load
	src := tensorConfig(cache, "int8")
	count := func(want int64, what string) {
		t.Helper()
		if got := quantizations.Load(); got != want {
			t.Fatalf("%s: %d quantizations, want %d\nlog:\n%s", what, got, want, q.log)
		}
	}
	base := quantizations.Load()
	st := q.mustBuild(src, nil)
	count(base+1, "first load")
	inferRows(t, st.api.Models["a"], mlp)
	entries, _ := filepath.Glob(filepath.Join(cache, "*", "a.onnx"))
	if len(entries) != 1 {
		t.Fatalf("cache entries %v, want one a.onnx", entries)
	}
	if !strings.Contains(q.log.String(), "msg=\"quantized model\" model=a") {
		t.Errorf("no log line for the quantization:\n%s", q.log)
	}
	fp32, _ := os.Stat(filepath.Join(q.dir, "a.onnx"))
	int8, _ := os.Stat(entries[0])
	// 4x smaller but for the 256x4 weight, under min_elements, and the
	// biases, which stay FP32.
	if r := float64(int8.Size()) / float64(fp32.Size()); r > 0.35 {
		t.Errorf("INT8 file %d bytes, FP32 %d: want about 3x smaller", int8.Size(), fp32.Size())
	}

	// A restart: a fresh state from the same files uses the cache.
	q.mustBuild(src, nil)
	count(base+1, "second load")
	if !strings.Contains(q.log.String(), "msg=\"using the cached quantized model\" model=a") {
		t.Errorf("no log line for the cache hit:\n%s", q.log)
	}

	// The source changes: a new key, a new quantization.
	mlp = writeMLP(t, filepath.Join(q.dir, "a.onnx"), 3)
	st = q.mustBuild(src, nil)
	count(base+2, "changed source")
	inferRows(t, st.api.Models["a"], mlp)

	// The entry is damaged: detected by its sha256 and rebuilt.
	entries, _ = filepath.Glob(filepath.Join(cache, "*", "a.onnx"))
	if len(entries) != 2 {
		t.Fatalf("cache entries %v, want two", entries)
	}
	for _, e := range entries {
		b, _ := os.ReadFile(e)
		b[len(b)/2] ^= 0xff
		os.WriteFile(e, b, 0o640)
	}
	st = q.mustBuild(src, nil)
	count(base+3, "corrupt entry")
	if !strings.Contains(q.log.String(), "the cached quantized model is corrupt") || !strings.Contains(q.log.String(), "but SHA256SUMS says") {
		t.Errorf("the corrupt entry is not logged:\n%s", q.log)
	}
	inferRows(t, st.api.Models["a"], mlp)
	// An entry without its manifest (a crash, a hand edit) is rebuilt too.
	entries, _ = filepath.Glob(filepath.Join(cache, "*", sumsFile))
	for _, e := range entries {
		os.Remove(e)
	}
	q.mustBuild(src, nil)
	count(base+4, "missing SHA256SUMS")
	q.mustBuild(src, nil)
	count(base+4, "after the rebuild")
}

// TestQuantizationReload: a reload that only turns quantization on (or
// off) for one model reopens that model and reuses the other.
func TestQuantizationReload(t *testing.T) {
	q := newQuantTest(t)
	writeMLP(t, filepath.Join(q.dir, "a.onnx"), 1)
	writeMLP(t, filepath.Join(q.dir, "b.onnx"), 2)
	cache := filepath.Join(q.dir, "cache")
	st1 := q.mustBuild(tensorConfig(cache, "none"), nil)
	base := quantizations.Load()
	st2 := q.mustBuild(tensorConfig(cache, "int8"), st1)
	if st2.models["b"] != st1.models["b"] {
		t.Error("model b was reopened by a reload that changed only a's quantization")
	}
	if st2.models["a"] == st1.models["a"] {
		t.Error("model a was not reopened when its quantization turned on")
	}
	if quantizations.Load() != base+1 {
		t.Errorf("%d quantizations, want 1", quantizations.Load()-base)
	}
	st3 := q.mustBuild(tensorConfig(cache, "none"), st2)
	if st3.models["b"] != st1.models["b"] || st3.models["a"] == st2.models["a"] {
		t.Error("turning quantization off: want a reopened and b kept")
	}
	if quantizations.Load() != base+1 {
		t.Error("turning quantization off quantized")
	}
}

// TestQuantizedCausalLM serves tiny-llama quantized: the cache entry holds
// the INT8 model beside copies of the tokenizer and config files, and the
// loader generates from it.
func TestQuantizedCausalLM(t *testing.T) {
	q := newQuantTest(t)
	src := filepath.Join("..", "examples", "models", "tiny-llama")
	abs, _ := filepath.Abs(src)
	cache := filepath.Join(q.dir, "cache")
	st := q.mustBuild(fmt.Sprintf("runtime: cache_dir: %q\nmodels: lm: {kind: \"causal-lm\", path: %q, quantization: \"int8\"}\n", cache, abs), nil)
	entries, _ := filepath.Glob(filepath.Join(cache, "*"))
	if len(entries) != 1 {
		t.Fatalf("cache %v, want one entry", entries)
	}
	for _, f := range []string{"model.onnx", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "SUMMARY.txt", sumsFile} {
		if _, err := os.Stat(filepath.Join(entries[0], f)); err != nil {
			t.Errorf("cache entry: %v", err)
		}
	}
	summary, _ := os.ReadFile(filepath.Join(entries[0], "SUMMARY.txt"))
	if !strings.Contains(string(summary), "lm_head") {
		t.Errorf("SUMMARY.txt does not name lm_head (the one weight of tiny-llama of 4096 elements or more):\n%s", summary)
	}
	res, err := st.api.Generators["lm"].Generate(context.Background(), generate.Request{Prompt: "Hello", MaxTokens: 8}, nil)
	if err != nil || res.CompletionTokens != 8 {
		t.Fatalf("generate: %+v, %v", res, err)
	}
}

// TestCacheDirNotWritable: a cache_dir that cannot be created fails the
// load of the quantized model with the reason and what to change.
func TestCacheDirNotWritable(t *testing.T) {
	q := newQuantTest(t)
	writeMLP(t, filepath.Join(q.dir, "a.onnx"), 1)
	writeMLP(t, filepath.Join(q.dir, "b.onnx"), 2)
	file := filepath.Join(q.dir, "not-a-folder")
	os.WriteFile(file, nil, 0o644)
	_, err := q.build(tensorConfig(filepath.Join(file, "cache"), "int8"), nil)
	if err == nil || !strings.Contains(err.Error(), "models.a: runtime.cache_dir: cannot create") || !strings.Contains(err.Error(), "set runtime.cache_dir to a folder") {
		t.Fatalf("err = %v", err)
	}
	// A folder the daemon may not write (root may write any).
	if os.Geteuid() != 0 {
		ro := filepath.Join(q.dir, "read-only")
		os.Mkdir(ro, 0o500)
		_, err := q.build(tensorConfig(ro, "int8"), nil)
		if err == nil || !strings.Contains(err.Error(), "runtime.cache_dir: "+ro+" is not writable") {
			t.Errorf("read-only cache_dir: %v", err)
		}
	}
	// A quantization "none" model does not need the cache.
	if _, err := q.build(tensorConfig(filepath.Join(file, "cache"), "none"), nil); err != nil {
		t.Fatal(err)
	}
}
