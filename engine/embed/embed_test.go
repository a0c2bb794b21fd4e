package embed

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/internal/testpaths"
	"github.com/aiassist/aiassist/engine/modelgen"
	"github.com/aiassist/aiassist/engine/onnxpb"
	"google.golang.org/protobuf/proto"
)

var (
	rtOnce sync.Once
	rt     *engine.Runtime
	rtErr  error
)

func ortRuntime(t testing.TB) *engine.Runtime {
	t.Helper()
	rtOnce.Do(func() { rt, rtErr = engine.Init(engine.RuntimeOptions{}) })
	if rtErr != nil {
		t.Fatalf("ONNX Runtime: %v", rtErr)
	}
	return rt
}

func tinyBertDir(t testing.TB) string {
	return filepath.Join(testpaths.RepoRoot(t), "examples", "models", "tiny-bert")
}

func load(t testing.TB, opts Options) *Model {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = tinyBertDir(t)
	}
	if opts.Name == "" {
		opts.Name = "tiny-bert"
	}
	m, err := Load(ortRuntime(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func embed(t testing.TB, m *Model, inputs ...Input) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := m.Embed(ctx, Request{Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func text(s string) Input { return Input{Text: s} }

func close32(t testing.TB, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > tol || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: value %d = %v, want %v (off by %g)", what, i, got[i], want[i], d)
		}
	}
}

const longText = "Retrieval over a team's documents splits each long text into overlapping windows of tokens, " +
	"embeds every window in one batch and combines them by a mean weighted with their tokens. " +
	"The house near the water had a little light, and the old man said that every word would find its place."

// TestChunkedIsWeightedMean is the first must-show: the chunked
// embedding of a long text equals the token-weighted mean of its windows'
// embeddings, each computed on its own, normalised (within 1e-5); and each
// window's embedding equals the pure-Go forward pass of the same weights
// mean-pooled by hand.
func TestChunkedIsWeightedMean(t *testing.T) {
	chunking := Chunking{Window: 16, Stride: 4}
	m := load(t, Options{Normalize: true, Chunking: chunking, Batching: engine.BatchOptions{Enabled: true, MaxBatchSize: 32}})
	raw := load(t, Options{Normalize: false, Chunking: chunking})
	ids := m.Encode(longText)
	windows := m.Windows(ids)
	if len(windows) < 4 {
		t.Fatalf("%d windows of %d tokens; the text must need several", len(windows), len(ids))
	}
	for i, w := range windows {
		if len(w) > 16 || w[0] != 2 || w[len(w)-1] != 3 {
			t.Fatalf("window %d is %v: want at most 16 ids, [CLS] ... [SEP]", i, w)
		}
		if i > 0 {
			prev := windows[i-1]
			if got, want := w[1:1+4], prev[len(prev)-1-4:len(prev)-1]; !equalInts(got, want) && i < len(windows)-1 {
				t.Fatalf("windows %d and %d do not share 4 tokens: %v, %v", i-1, i, prev, w)
			}
		}
	}
	got := embed(t, m, text(longText))
	if got.Chunks[0] != len(windows) {
		t.Fatalf("chunks %d, want %d", got.Chunks[0], len(windows))
	}
	if got.Tokens != len(ids)+2 {
		t.Fatalf("tokens %d, want %d", got.Tokens, len(ids)+2)
	}

	ref := modelgen.TinyBert()
	sum := make([]float64, 32)
	total := 0.0
	for i, w := range windows {
		one := embed(t, raw, Input{IDs: w[1 : len(w)-1], IsIDs: true})
		if one.Chunks[0] != 1 {
			t.Fatalf("window %d alone took %d chunks", i, one.Chunks[0])
		}
		// The Go forward pass, mean-pooled by hand.
		row := make([]int64, len(w))
		ones, zeros := make([]int64, len(w)), make([]int64, len(w))
		for k, id := range w {
			row[k], ones[k] = int64(id), 1
		}
		hidden := ref.Forward([][]int64{row}, [][]int64{ones}, [][]int64{zeros})
		mean := make([]float32, 32)
		for k := range w {
			for d := range 32 {
				mean[d] += hidden[k*32+d] / float32(len(w))
			}
		}
		close32(t, "window vs Go forward", one.Embeddings[0], mean, 1e-4)
		for d, x := range one.Embeddings[0] {
			sum[d] += float64(len(w)) * float64(x)
		}
		total += float64(len(w))
	}
	norm := 0.0
	for d := range sum {
		sum[d] /= total
		norm += sum[d] * sum[d]
	}
	want := make([]float32, 32)
	for d := range sum {
		want[d] = float32(sum[d] / math.Sqrt(norm))
	}
	close32(t, "chunked vs weighted mean", got.Embeddings[0], want, 1e-5)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBatchedEqualsUnbatched: inputs of different lengths embedded in one
// request (one run, padded to the longest), concurrently through the
// dynamic batcher, and each alone with batching off, agree within 1e-5.
func TestBatchedEqualsUnbatched(t *testing.T) {
	texts := []string{"hello", "the quick brown fox", longText, "water and light", "what is a token window", "i"}
	alone := load(t, Options{Normalize: true, Chunking: Chunking{Window: 24, Stride: 6}, Batching: engine.BatchOptions{Enabled: false, MaxBatchSize: 32}})
	batched := load(t, Options{Normalize: true, Chunking: Chunking{Window: 24, Stride: 6},
		Batching: engine.BatchOptions{Enabled: true, MaxBatchSize: 64, MaxQueueDelay: 5 * time.Millisecond}})
	want := make([][]float32, len(texts))
	for i, s := range texts {
		want[i] = embed(t, alone, text(s)).Embeddings[0]
	}
	var inputs []Input
	for _, s := range texts {
		inputs = append(inputs, text(s))
	}
	together := embed(t, batched, inputs...)
	for i := range texts {
		close32(t, "one request: "+texts[i], together.Embeddings[i], want[i], 1e-5)
	}
	var wg sync.WaitGroup
	got := make([][]float32, 4*len(texts))
	for k := range got {
		wg.Go(func() { got[k] = embed(t, batched, text(texts[k%len(texts)])).Embeddings[0] })
	}
	wg.Wait()
	for k := range got {
		close32(t, "concurrent: "+texts[k%len(texts)], got[k], want[k%len(texts)], 1e-5)
	}
}

// TestTooLongWithChunkingOff: the refusal carries the numbers and is an
// invalid input.
func TestTooLongWithChunkingOff(t *testing.T) {
	m := load(t, Options{Chunking: Chunking{Off: true}, MaxLength: 16})
	_, err := m.Embed(context.Background(), Request{Inputs: []Input{text("short"), text(longText)}})
	var tl *TooLongError
	if !errors.As(err, &tl) || !errors.Is(err, engine.ErrInvalidInput) {
		t.Fatalf("err %v, want a *TooLongError", err)
	}
	if tl.Input != 1 || tl.MaxLength != 16 || tl.Tokens != len(m.Encode(longText))+2 || !strings.Contains(err.Error(), "16") {
		t.Fatalf("error %+v: %v", tl, err)
	}
	if res := embed(t, m, text("short")); res.Chunks[0] != 1 {
		t.Fatalf("a short input took %d chunks", res.Chunks[0])
	}
}

// TestTokenInputs: ids give what their text gives; ids outside the
// vocabulary are refused.
func TestTokenInputs(t *testing.T) {
	m := load(t, Options{Normalize: true})
	ids := m.Encode("the water is near")
	res := embed(t, m, text("the water is near"), Input{IDs: ids, IsIDs: true})
	close32(t, "ids vs text", res.Embeddings[1], res.Embeddings[0], 1e-6)
	_, err := m.Embed(context.Background(), Request{Inputs: []Input{{IDs: []int{5, 99999}, IsIDs: true}}})
	if !errors.Is(err, engine.ErrInvalidInput) || !strings.Contains(err.Error(), "99999") {
		t.Fatalf("err %v", err)
	}
	if _, err := m.Embed(context.Background(), Request{}); !errors.Is(err, engine.ErrInvalidInput) {
		t.Fatalf("no inputs: %v", err)
	}
	// An empty input is its special tokens alone.
	if res := embed(t, m, text("")); res.Tokens != 2 || len(res.Embeddings[0]) != 32 {
		t.Fatalf("empty input: %+v", res)
	}
}

// TestDimensions: a matryoshka model cuts and renormalises; another
// refuses.
func TestDimensions(t *testing.T) {
	plain := load(t, Options{Normalize: true})
	if _, err := plain.Embed(context.Background(), Request{Inputs: []Input{text("a")}, Dimensions: 8}); !errors.Is(err, engine.ErrInvalidInput) {
		t.Fatalf("err %v, want a refusal", err)
	}
	if _, err := plain.Embed(context.Background(), Request{Inputs: []Input{text("a")}, Dimensions: 32}); err != nil {
		t.Fatalf("the full size is refused: %v", err)
	}
	raw := load(t, Options{Matryoshka: true})
	m := load(t, Options{Normalize: true, Matryoshka: true})
	full := embed(t, raw, text("the old man")).Embeddings[0]
	res, err := m.Embed(context.Background(), Request{Inputs: []Input{text("the old man")}, Dimensions: 8})
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, x := range full[:8] {
		n += float64(x) * float64(x)
	}
	want := make([]float32, 8)
	for d := range want {
		want[d] = float32(float64(full[d]) / math.Sqrt(n))
	}
	close32(t, "matryoshka", res.Embeddings[0], want, 1e-6)
	if _, err := m.Embed(context.Background(), Request{Inputs: []Input{text("a")}, Dimensions: 33}); !errors.Is(err, engine.ErrInvalidInput) {
		t.Fatalf("err %v, want a refusal of 33 > 32", err)
	}
}

// TestCLSPooling: cls takes the first token's output.
func TestCLSPooling(t *testing.T) {
	m := load(t, Options{Pooling: "cls"})
	w := m.Windows(m.Encode("hello world"))[0]
	row := make([]int64, len(w))
	ones, zeros := make([]int64, len(w)), make([]int64, len(w))
	for k, id := range w {
		row[k], ones[k] = int64(id), 1
	}
	hidden := modelgen.TinyBert().Forward([][]int64{row}, [][]int64{ones}, [][]int64{zeros})
	close32(t, "cls", embed(t, m, text("hello world")).Embeddings[0], hidden[:32], 1e-4)
}

// TestLoadErrors: bad settings fail to load with what to change.
func TestLoadErrors(t *testing.T) {
	f := func(o Options, want string) {
		t.Helper()
		o.Dir, o.Name = tinyBertDir(t), "tiny-bert"
		_, err := Load(ortRuntime(t), o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%+v: err %v, want %q", o, err, want)
		}
	}
	f(Options{MaxLength: 65}, "max_length 65 is more than the model's 64 positions")
	f(Options{Chunking: Chunking{Window: 80}}, "chunking.window 80")
	f(Options{Chunking: Chunking{Window: 10, Stride: 8}}, "chunking.stride 8")
	f(Options{Pooling: "max"}, `pooling "max"`)
	_, err := Load(ortRuntime(t), Options{Name: "x", Dir: filepath.Join(testpaths.RepoRoot(t), "examples", "models", "tiny-llama")})
	if err == nil || !strings.Contains(err.Error(), "input") {
		t.Fatalf("a decoder loaded as an encoder: %v", err)
	}
}

// miniLMEncoder writes, into a temporary folder, an encoder over the real
// all-MiniLM-L6-v2 tokenizer.json (vocab 30522, truncation 128, padding
// Fixed 128), small in every other way.
func miniLMEncoder(t testing.TB) string {
	t.Helper()
	tok := testpaths.SharedPath(t, "models/tokenizers/minilm-l6-v2-tokenizer.json")
	dir := t.TempDir()
	c := modelgen.EncoderConfig{VocabSize: 30522, HiddenSize: 16, NumLayers: 1, NumHeads: 2, IntermediateSize: 32,
		MaxPositions: 512, TypeVocabSize: 2, LayerNormEps: 1e-12}
	if err := modelgen.WriteFile(filepath.Join(dir, "model.onnx"), modelgen.NewEncoder(c, 5).Model("minilm-shaped")); err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(modelgen.EncoderConfigJSON(c))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tok)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"config.json": cfg, "tokenizer.json": data} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestMiniLMTokenizerSettings: the file's truncation (128) is the row
// length; its Fixed 128 padding, honoured with padding "tokenizer", gives
// the embeddings that padding to the longest row gives.
func TestMiniLMTokenizerSettings(t *testing.T) {
	dir := miniLMEncoder(t)
	longest := load(t, Options{Dir: dir, Normalize: true, Chunking: Chunking{Stride: -1}})
	fixed := load(t, Options{Dir: dir, Normalize: true, Padding: "tokenizer", Chunking: Chunking{Stride: -1}})
	if longest.MaxLength() != 128 || longest.Window() != 128 || longest.Stride() != 32 {
		t.Fatalf("max_length %d, window %d, stride %d; want 128, 128, 32 from the file's truncation", longest.MaxLength(), longest.Window(), longest.Stride())
	}
	long := strings.Repeat("Retrieval over a team's documents splits long texts into windows. ", 20)
	inputs := []Input{text("Hello world!"), text(long)}
	a, b := embed(t, longest, inputs...), embed(t, fixed, inputs...)
	if a.Chunks[0] != 1 || a.Chunks[1] < 2 {
		t.Fatalf("chunks %v", a.Chunks)
	}
	for i := range inputs {
		close32(t, "fixed vs longest padding", b.Embeddings[i], a.Embeddings[i], 1e-5)
	}
	over := load(t, Options{Dir: dir, MaxLength: 256, Chunking: Chunking{Window: 200, Stride: 50}})
	if over.MaxLength() != 256 || embed(t, over, text(long)).Chunks[0] >= a.Chunks[1] {
		t.Fatalf("max_length override not applied: %d", over.MaxLength())
	}
}

// TestPooledOutput: a model with a sentence_embedding output (here the
// plain mean of last_hidden_state, added to tiny-bert's graph) is taken as
// it is, not pooled again.
func TestPooledOutput(t *testing.T) {
	dir := t.TempDir()
	m := modelgen.TinyBert()
	model := m.Model()
	g := model.GetGraph()
	axes := modelgen.Tensor("pool_axes", []int64{1}, []int64{1})
	g.Initializer = append(g.Initializer, axes)
	g.Node = append(g.Node, &onnxpb.NodeProto{OpType: proto.String("ReduceMean"), Input: []string{"last_hidden_state"},
		Output: []string{"sentence_embedding"}, Attribute: []*onnxpb.AttributeProto{modelgen.AttrInts("axes", 1), modelgen.AttrInt("keepdims", 0)}})
	g.Output = append(g.Output, modelgen.ValueInfo("sentence_embedding", onnxpb.TensorProto_FLOAT, modelgen.Sym("batch_size"), modelgen.Fixed(32)))
	if err := modelgen.WriteFile(filepath.Join(dir, "model.onnx"), model); err != nil {
		t.Fatal(err)
	}
	for name, b := range m.Files() {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pooled := load(t, Options{Dir: dir, Pooling: "cls"})
	mean := load(t, Options{})
	got, want := embed(t, pooled, text("the water is near")), embed(t, mean, text("the water is near"))
	close32(t, "sentence_embedding", got.Embeddings[0], want.Embeddings[0], 1e-5)
}

// TestDeadline: a request whose context ends while it waits for the only
// session gets a *engine.DeadlineError, not a result; the session then
// serves the next request.
func TestDeadline(t *testing.T) {
	m := load(t, Options{Batching: engine.BatchOptions{Enabled: true, MaxBatchSize: 8}})
	s := <-m.sessions // hold the only session
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.Embed(ctx, Request{Inputs: []Input{text("the water")}})
		done <- err
	}()
	cancel()
	m.sessions <- s
	select {
	case err := <-done:
		var de *engine.DeadlineError
		if !errors.As(err, &de) || de.Model != "tiny-bert" {
			t.Fatalf("err %v, want a *engine.DeadlineError", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the request did not end within 30s")
	}
	if res := embed(t, m, text("the water")); len(res.Embeddings[0]) != 32 {
		t.Fatalf("the next request: %+v", res)
	}
	m.Close()
	if _, err := m.Embed(context.Background(), Request{Inputs: []Input{text("a")}}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// fakeClock advances by step at every reading, so that every run measures
// step.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// TestAdmission: once runs are measured (here, by a clock that makes each
// take a second), a request whose deadline is nearer than one run is
// refused at once with an *engine.AdmissionError; one with time enough
// runs.
func TestAdmission(t *testing.T) {
	clock := &fakeClock{step: time.Second}
	m := load(t, Options{Clock: clock.Now})
	for range engine.MinSamples {
		embed(t, m, text("a"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := m.Embed(ctx, Request{Inputs: []Input{text("the water")}})
	var ae *engine.AdmissionError
	if !errors.As(err, &ae) || ae.Model != "tiny-bert" {
		t.Fatalf("err %v, want an *engine.AdmissionError", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := m.Embed(ctx, Request{Inputs: []Input{text("the water")}}); err != nil {
		t.Fatalf("a request with a minute: %v", err)
	}
}

// TestNoTokenTypes: token_type_ids is optional; a model without it (here
// tiny-bert computing zeros itself) embeds as tiny-bert does.
func TestNoTokenTypes(t *testing.T) {
	dir := t.TempDir()
	m := modelgen.TinyBert()
	model := m.Model()
	g := model.GetGraph()
	var ins []*onnxpb.ValueInfoProto
	for _, in := range g.Input {
		if in.GetName() != "token_type_ids" {
			ins = append(ins, in)
		}
	}
	g.Input = ins
	zeros := &onnxpb.NodeProto{OpType: proto.String("Mul"), Input: []string{"input_ids", "zero"}, Output: []string{"token_type_ids"}}
	g.Node = append([]*onnxpb.NodeProto{zeros}, g.Node...)
	if err := modelgen.WriteFile(filepath.Join(dir, "model.onnx"), model); err != nil {
		t.Fatal(err)
	}
	for name, b := range m.Files() {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	without := load(t, Options{Dir: dir, Normalize: true})
	with := load(t, Options{Normalize: true})
	got, want := embed(t, without, text("the water is near")), embed(t, with, text("the water is near"))
	close32(t, "without token_type_ids", got.Embeddings[0], want.Embeddings[0], 1e-6)
}

// TestUnwantedBatchNotRun: a batch whose every request ended while it
// waited for a session is not run at all.
func TestUnwantedBatchNotRun(t *testing.T) {
	set := metrics.NewSet()
	m := load(t, Options{Metrics: set})
	count := func(name string) float64 {
		var b strings.Builder
		set.WritePrometheus(&b)
		for l := range strings.Lines(b.String()) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+`_count{model="tiny-bert"} `); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return 0
	}
	s := <-m.sessions // hold the only session
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.Embed(ctx, Request{Inputs: []Input{text("the water")}})
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for count("aiassist_model_queue_wait_seconds") < 1 {
		// The batch has been taken and waits for the session.
		if time.Now().After(deadline) {
			t.Fatal("the batch was not taken within 30s")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	m.sessions <- s
	select {
	case err := <-done:
		var de *engine.DeadlineError
		if !errors.As(err, &de) {
			t.Fatalf("err %v, want a *engine.DeadlineError", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the request did not end within 30s")
	}
	if n := count("aiassist_inference_duration_seconds"); n != 0 {
		t.Fatalf("%v runs; the unwanted batch ran", n)
	}
	embed(t, m, text("the water"))
	if n := count("aiassist_inference_duration_seconds"); n != 1 {
		t.Fatalf("%v runs after one request", n)
	}
}
