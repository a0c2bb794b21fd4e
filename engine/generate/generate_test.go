package generate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine"
)

// TestKVCacheMatchesRecompute decodes greedily with the cache, and with the
// prompt prefilled in chunks, and without the cache (recomputeGreedy: the
// whole sequence fed at every step): the tokens must be the same.
func TestKVCacheMatchesRecompute(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, dir string
		prompts   [][]int
	}{
		{"tiny-llama", tinyLlamaDir(t), [][]int{{40, 71, 82, 82, 85, 283}, {306, 308, 71}, {5}}},
		{"tiny-random-gpt2-fp32", sharedModel(t, "tiny-random-gpt2-fp32"), [][]int{{464, 318, 257, 922, 530}, {11, 995}, {1}}},
		{"dummy-decoder-optimum", withTokenizer(t, sharedModel(t, "dummy-decoder-optimum")), [][]int{{1, 2, 3}, {7}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cached := load(t, Options{Name: c.name, Dir: c.dir})
			chunked := load(t, Options{Name: c.name, Dir: c.dir})
			chunked.prefillChunk = 2
			for _, p := range c.prompts {
				got, _ := greedyIDs(t, cached, p, 24)
				want := recomputeGreedy(t, cached, p, 24)
				t.Logf("prompt %v -> %v", p, got)
				if !slices.Equal(got, want) {
					t.Errorf("prompt %v: with the cache %v, recomputed %v", p, got, want)
				}
				if len(got) != 24 {
					t.Errorf("prompt %v: %d tokens, want 24", p, len(got))
				}
				if got, _ := greedyIDs(t, chunked, p, 24); !slices.Equal(got, want) {
					t.Errorf("prompt %v: prefilled in chunks of 2 %v, recomputed %v", p, got, want)
				}
			}
		})
	}
}

// generate runs req and checks the invariants every generation keeps:
// chunks are valid UTF-8 and join to the text.
func generate(t *testing.T, m *Model, req Request) (Result, []string) {
	t.Helper()
	var chunks []string
	res, err := m.Generate(t.Context(), req, func(c Chunk) error {
		if c.Text == "" {
			t.Error("empty chunk")
		}
		if !utf8.ValidString(c.Text) {
			t.Errorf("chunk %q is not valid UTF-8", c.Text)
		}
		chunks = append(chunks, c.Text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(chunks, ""); got != res.Text {
		t.Errorf("chunks join to %q, text is %q", got, res.Text)
	}
	return res, chunks
}

func TestGreedyLength(t *testing.T) {
	t.Parallel()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t)})
	res, _ := generate(t, m, Request{Prompt: "Hello world", MaxTokens: 20})
	if res.FinishReason != "length" || res.CompletionTokens != 20 || res.PromptTokens != 6 {
		t.Errorf("got %+v, want finish length, 6 prompt and 20 completion tokens", res)
	}
	if res.TimeToFirstToken <= 0 {
		t.Errorf("time to first token %v", res.TimeToFirstToken)
	}
	again, _ := generate(t, m, Request{Prompt: "Hello world", MaxTokens: 20})
	if again.Text != res.Text {
		t.Errorf("greedy text changed: %q then %q", res.Text, again.Text)
	}
	bos, _ := generate(t, m, Request{Prompt: "Hello world", MaxTokens: 1, AddSpecialTokens: false})
	if bos.PromptTokens != 6 {
		t.Errorf("prompt tokens %d", bos.PromptTokens)
	}
}

// TestEOS makes one of the greedy tokens an end-of-sequence token: the
// generation stops there with finish reason stop, without its text.
func TestEOS(t *testing.T) {
	t.Parallel()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t)})
	ids, _ := greedyIDs(t, m, m.Tokenizer().Encode("Hello world", false), 20)
	full, _ := generate(t, m, Request{Prompt: "Hello world", MaxTokens: 20})
	stop := slices.Index(ids, ids[6]) // its first occurrence
	m.eos[ids[6]] = true
	res, _ := generate(t, m, Request{Prompt: "Hello world", MaxTokens: 20})
	want := m.Tokenizer().Decode(ids[:stop], true)
	if res.FinishReason != "stop" || res.CompletionTokens != stop+1 || res.Text != want || !strings.HasPrefix(full.Text, want) {
		t.Errorf("got %+v, want %q after %d tokens, finish stop", res, want, stop+1)
	}
}

func TestSeed(t *testing.T) {
	t.Parallel()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t)})
	seed := func(s uint64) *uint64 { return &s }
	for _, req := range []Request{
		{Temperature: 1},
		{Temperature: 0.8, TopP: 0.9},
		{Temperature: 1.2, TopK: 20, MinP: 0.05, RepetitionPenalty: 1.3},
	} {
		req.Prompt, req.MaxTokens = "Hello", 30
		texts := map[string]bool{}
		for s := range uint64(4) {
			req.Seed = seed(s)
			a, _ := generate(t, m, req)
			b, _ := generate(t, m, req)
			if a.Text != b.Text {
				t.Errorf("%+v: seed %d gave %q, then %q", req, s, a.Text, b.Text)
			}
			texts[a.Text] = true
		}
		if len(texts) < 2 {
			t.Errorf("%+v: four seeds gave the same text %v", req, texts)
		}
	}
}

// TestStopAcrossTokens cuts the greedy output at a stop sequence made of
// the end of one chunk and the start of the next.
func TestStopAcrossTokens(t *testing.T) {
	t.Parallel()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t)})
	full, chunks := generate(t, m, Request{Prompt: "Hello world", MaxTokens: 40})
	tried := 0
	off := 0
	for i := 0; i+1 < len(chunks); i++ {
		off += len(chunks[i])
		a, b := chunks[i], chunks[i+1]
		if len(a) < 2 || len(b) < 1 {
			continue
		}
		stop := a[len(a)-2:] + b[:1]
		want := full.Text[:strings.Index(full.Text, stop)]
		res, got := generate(t, m, Request{Prompt: "Hello world", MaxTokens: 40, Stop: []string{"never there", stop}})
		if res.Text != want || res.FinishReason != "stop" {
			t.Errorf("stop %q: got %q (%s), want %q (stop)", stop, res.Text, res.FinishReason, want)
		}
		for _, c := range got {
			if strings.Contains(c, stop) {
				t.Errorf("stop %q: chunk %q holds it", stop, c)
			}
		}
		if tried++; tried == 4 {
			break
		}
	}
	if tried == 0 {
		t.Fatalf("no chunk boundary to test in %q", chunks)
	}
	// A stop that is only ever a prefix is released at the end.
	res, _ := generate(t, m, Request{Prompt: "Hello world", MaxTokens: 40, Stop: []string{full.Text[len(full.Text)-2:] + "\x00"}})
	if res.Text != full.Text || res.FinishReason != "length" {
		t.Errorf("a stop never completed: got %q (%s), want %q", res.Text, res.FinishReason, full.Text)
	}
}

func TestStopper(t *testing.T) {
	f := func(stops []string, pieces []string, want string, hit bool) {
		t.Helper()
		s := newStopper(stops)
		var out strings.Builder
		found := false
		for _, p := range pieces {
			o, h := s.add(p)
			out.WriteString(o)
			if h {
				found = true
				break
			}
		}
		if !found {
			out.WriteString(s.flush())
		}
		if out.String() != want || found != hit {
			t.Errorf("stops %q pieces %q: got %q %v, want %q %v", stops, pieces, out.String(), found, want, hit)
		}
	}
	f(nil, []string{"ab", "cd"}, "abcd", false)
	f([]string{"cd"}, []string{"ab", "cd"}, "ab", true)
	f([]string{"bc"}, []string{"ab", "cd"}, "a", true)
	f([]string{"abc"}, []string{"xab", "d"}, "xabd", false)
	f([]string{"abc"}, []string{"xa", "b", "c", "d"}, "x", true)
	f([]string{"zz", "b"}, []string{"azzb"}, "a", true)
	f([]string{"é!"}, []string{"caf", "é", "!"}, "caf", true)
	f([]string{""}, []string{"a"}, "a", false)
}

// TestUTF8Chunks samples the GPT-2 model hot, so it emits byte tokens
// that spell characters across several tokens: chunks must never split one.
func TestUTF8Chunks(t *testing.T) {
	t.Parallel()
	m := load(t, Options{Name: "gpt2", Dir: sharedModel(t, "tiny-random-gpt2-fp32")})
	seed := uint64(0)
	for range 6 {
		seed++
		res, _ := generate(t, m, Request{Prompt: "a", MaxTokens: 60, Temperature: 3, Seed: &seed})
		if !utf8.ValidString(res.Text) {
			t.Errorf("text %q is not valid UTF-8", res.Text)
		}
	}
}

func TestContextLength(t *testing.T) {
	t.Parallel()
	dir := tinyLlamaDir(t)
	m := load(t, Options{Name: "tiny-llama", Dir: dir, ContextLength: 32})
	long := strings.Repeat("x ", 40)
	_, err := m.Generate(t.Context(), Request{Prompt: long, MaxTokens: 5}, nil)
	if !errors.Is(err, engine.ErrInvalidInput) || !strings.Contains(err.Error(), "80 tokens") || !strings.Contains(err.Error(), "32") {
		t.Errorf("too long prompt: %v", err)
	}
	res, _ := generate(t, m, Request{Prompt: "Hello world", MaxTokens: 100})
	if res.CompletionTokens != 32-6 || res.FinishReason != "length" {
		t.Errorf("capped generation: %+v", res)
	}

	left := load(t, Options{Name: "tiny-llama", Dir: dir, ContextLength: 32, Truncate: "left"})
	res, _ = generate(t, left, Request{Prompt: long, MaxTokens: 5})
	if res.PromptTokens != 27 || res.CompletionTokens != 5 {
		t.Errorf("left truncation: %+v", res)
	}
	res, _ = generate(t, left, Request{Prompt: long, MaxTokens: 100})
	if res.PromptTokens != 16 || res.CompletionTokens != 16 || res.FinishReason != "length" {
		t.Errorf("left truncation, long max_tokens: %+v", res)
	}
	// A max_tokens near the int limit must not overflow the room check and
	// skip the truncation.
	res, _ = generate(t, left, Request{Prompt: long, MaxTokens: math.MaxInt})
	if res.PromptTokens != 16 || res.CompletionTokens != 16 || res.FinishReason != "length" {
		t.Errorf("left truncation, max_tokens MaxInt: %+v", res)
	}
	if _, err := Load(ortRuntime(t), Options{Dir: dir, Truncate: "right"}); err == nil {
		t.Error("truncate right loaded")
	}
}

func TestInvalidInput(t *testing.T) {
	t.Parallel()
	gpt2 := load(t, Options{Name: "gpt2", Dir: sharedModel(t, "tiny-random-gpt2-fp32")})
	_, err := gpt2.Generate(t.Context(), Request{Prompt: "Hello world", MaxTokens: 5}, nil)
	if !errors.Is(err, engine.ErrInvalidInput) || !strings.Contains(err.Error(), "15496") || !strings.Contains(err.Error(), "1000") {
		t.Errorf("id outside the model's vocabulary: %v", err)
	}
	_, err = gpt2.GenerateIDs(t.Context(), []int{5, 1000}, Request{MaxTokens: 5}, nil)
	if !errors.Is(err, engine.ErrInvalidInput) {
		t.Errorf("id 1000: %v", err)
	}
	llama := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t)})
	for _, req := range []Request{
		{MaxTokens: 0},
		{MaxTokens: 1, Temperature: -1},
		{MaxTokens: 1, TopP: 1.5},
		{MaxTokens: 1, TopK: -1},
		{MaxTokens: 1, MinP: 2},
		{MaxTokens: 1, RepetitionPenalty: -1},
	} {
		req.Prompt = "Hi"
		if _, err := llama.Generate(t.Context(), req, nil); !errors.Is(err, engine.ErrInvalidInput) {
			t.Errorf("%+v: %v", req, err)
		}
	}
}

func TestEmitErrorAndCancel(t *testing.T) {
	t.Parallel()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t)})
	boom := errors.New("client gone")
	n := 0
	res, err := m.Generate(t.Context(), Request{Prompt: "Hi", MaxTokens: 200}, func(Chunk) error {
		if n++; n == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || res.CompletionTokens > 10 {
		t.Errorf("emit error: %v after %d tokens", err, res.CompletionTokens)
	}

	ctx, cancel := context.WithCancel(t.Context())
	n = 0
	res, err = m.Generate(ctx, Request{Prompt: "Hi", MaxTokens: 200}, func(Chunk) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || res.CompletionTokens > 10 {
		t.Errorf("cancelled: %v after %d tokens", err, res.CompletionTokens)
	}
	// The model still works, and the cancelled sequence gave back its slot.
	generate(t, m, Request{Prompt: "Hi", MaxTokens: 3})
}

// TestConcurrent runs sequences together, joining and leaving the batch at
// different steps, and checks each gives what it gives alone. Greedy ids
// are not guaranteed to match in general: a padded row's logits can differ
// in the last bits (see TestSeedUnderBatching); these models' top logits
// are far enough apart that the ids do, so a packing bug shows here.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, dir string
		instances int
		prompts   [][]int
	}{
		{"tiny-llama", tinyLlamaDir(t), 1, [][]int{{40, 71, 82, 82, 85, 283}, {306, 308, 71}, {5}, {72, 258, 1, 300}, {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22}, {99}, {100, 101}, {262, 263, 264}}},
		{"tiny-llama-2", tinyLlamaDir(t), 2, [][]int{{40, 71, 82}, {306, 308, 71}, {5}, {72, 258, 1, 300}, {12, 13, 14, 15}, {99}}},
		{"gpt2", sharedModel(t, "tiny-random-gpt2-fp32"), 1, [][]int{{464, 318, 257, 922, 530}, {11, 995}, {1}, {300, 301, 302, 303, 304, 305, 306, 307}, {42}, {500, 600}, {7, 8, 9}, {999}}},
		{"dummy", withTokenizer(t, sharedModel(t, "dummy-decoder-optimum")), 1, [][]int{{1, 2, 3}, {7}, {4, 5}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			set := metrics.NewSet()
			m := load(t, Options{Name: c.name, Dir: c.dir, Instances: c.instances, Metrics: set})
			n := func(i int) int { return 10 + 3*i } // leave at different steps
			want := make([][]int, len(c.prompts))
			for i, p := range c.prompts {
				want[i], _ = greedyIDs(t, m, p, n(i))
			}
			stepsAlone, _, sumAlone := batchSizes(t, set, c.name)
			// Hold the first step until half the sequences are queued; the
			// others join once the first has its first token.
			half := len(c.prompts) / 2
			gate := make(chan struct{})
			var gateOnce sync.Once
			open := func() { gateOnce.Do(func() { close(gate) }) }
			t.Cleanup(open) // before m.Close, which waits for the generations
			m.beforeStep = func() { <-gate }
			started := make(chan struct{})
			var startOnce sync.Once
			got := make([][]int, len(c.prompts))
			var wg sync.WaitGroup
			run := func(i int) {
				defer wg.Done()
				res, err := m.GenerateIDs(t.Context(), c.prompts[i], Request{MaxTokens: n(i)}, func(id int) error {
					got[i] = append(got[i], id)
					startOnce.Do(func() { close(started) })
					return nil
				})
				if err != nil {
					t.Error(err)
				}
				if res.CompletionTokens != n(i) {
					t.Errorf("sequence %d: %d tokens", i, res.CompletionTokens)
				}
			}
			for i := range half {
				wg.Add(1)
				go run(i)
			}
			waitFor(t, "half the sequences to reach a lane", func() bool {
				queued := 0
				for _, l := range m.lanes {
					l.mu.Lock()
					queued += l.load
					l.mu.Unlock()
				}
				return queued == half
			})
			open()
			await(t, "the first token", started)
			for i := half; i < len(c.prompts); i++ {
				wg.Add(1)
				go run(i)
			}
			finished := make(chan struct{})
			go func() {
				wg.Wait()
				close(finished)
			}()
			await(t, "the generations", finished)
			for i := range c.prompts {
				if !slices.Equal(got[i], want[i]) {
					t.Errorf("prompt %v: together %v, alone %v", c.prompts[i], got[i], want[i])
				}
			}
			steps, alone, sum := batchSizes(t, set, c.name)
			if alone-stepsAlone == steps-stepsAlone && m.io.batchable {
				t.Errorf("every decode step ran one sequence (%v steps)", steps-stepsAlone)
			}
			if steps > stepsAlone {
				t.Logf("%v decode steps together, %.2f sequences each on average", steps-stepsAlone, (sum-sumAlone)/(steps-stepsAlone))
			}
		})
	}
}

// TestQueueFullAndClose fills the one sequence slot and the one queue
// place: the next generation gets a *engine.LimitError naming the model
// and max_queue; Close then refuses new ones and waits for the running.
func TestQueueFullAndClose(t *testing.T) {
	t.Parallel()
	m, err := Load(ortRuntime(t), Options{Name: "tiny-llama", Dir: tinyLlamaDir(t), MaxSequences: 1, MaxQueue: 1})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var gateOnce sync.Once
	open := func() { gateOnce.Do(func() { close(gate) }) }
	t.Cleanup(m.Close)
	t.Cleanup(open)
	m.beforeStep = func() { <-gate }
	type outcome struct {
		res Result
		err error
	}
	results := make(chan outcome, 2)
	for range 2 {
		go func() {
			res, err := m.Generate(context.Background(), Request{Prompt: "Hi", MaxTokens: 5}, nil)
			results <- outcome{res, err}
		}()
	}
	waitFor(t, "one generation running and one waiting", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.waiting == 1 && len(m.slots) == 1
	})
	_, err = m.Generate(t.Context(), Request{Prompt: "Hi", MaxTokens: 5}, nil)
	var limit *engine.LimitError
	if !errors.As(err, &limit) || limit.Model != "tiny-llama" || limit.Setting != "max_queue" || limit.Limit != 1 || !errors.Is(err, engine.ErrQueueFull) {
		t.Errorf("third generation: %v (%#v), want a LimitError for tiny-llama's max_queue 1", err, limit)
	}
	closed := make(chan struct{})
	go func() {
		m.Close()
		close(closed)
	}()
	waitFor(t, "Close to start", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.closed
	})
	if _, err := m.Generate(t.Context(), Request{Prompt: "Hi", MaxTokens: 5}, nil); !errors.Is(err, engine.ErrClosed) || !strings.Contains(err.Error(), "tiny-llama") {
		t.Errorf("after Close: %v, want ErrClosed naming the model", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while generations were running")
	default:
	}
	open()
	for range 2 {
		o := await(t, "a generation", results)
		if o.err != nil || o.res.CompletionTokens != 5 {
			t.Errorf("generation during Close: %+v %v", o.res, o.err)
		}
	}
	await(t, "Close", closed)
}

// TestQueuedDeadline gives a generation that must wait for a slot a
// deadline that passes while it waits: it gets a *engine.DeadlineError
// naming the model, which still matches context.DeadlineExceeded.
func TestQueuedDeadline(t *testing.T) {
	t.Parallel()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t), MaxSequences: 1})
	gate := make(chan struct{})
	var gateOnce sync.Once
	open := func() { gateOnce.Do(func() { close(gate) }) }
	t.Cleanup(open)
	m.beforeStep = func() { <-gate }
	done := make(chan error, 1)
	go func() {
		_, err := m.Generate(context.Background(), Request{Prompt: "Hi", MaxTokens: 2}, nil)
		done <- err
	}()
	waitFor(t, "the first generation to take the slot", func() bool { return len(m.slots) == 1 })
	ctx, cancel := context.WithDeadline(t.Context(), time.Now()) // already passed
	defer cancel()
	_, err := m.Generate(ctx, Request{Prompt: "Hi", MaxTokens: 2}, nil)
	var dl *engine.DeadlineError
	if !errors.As(err, &dl) || dl.Model != "tiny-llama" || !errors.Is(err, engine.ErrExpired) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("queued past its deadline: %v, want a DeadlineError for tiny-llama", err)
	}
	open()
	if err := await(t, "the first generation", done); err != nil {
		t.Error(err)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	set := metrics.NewSet()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t), Metrics: set})
	generate(t, m, Request{Prompt: "Hello world", MaxTokens: 7})
	var b bytes.Buffer
	set.WritePrometheus(&b)
	out := b.String()
	for _, want := range []string{
		`aiassist_generated_tokens_total{model="tiny-llama"} 7`,
		`aiassist_prompt_tokens_total{model="tiny-llama"} 6`,
		`aiassist_time_to_first_token_seconds_bucket{model="tiny-llama",le="+Inf"} 1`,
		`aiassist_inter_token_latency_seconds_count{model="tiny-llama"} 6`,
		`aiassist_sequences_active{model="tiny-llama"} `,
		`aiassist_generation_queue_depth{model="tiny-llama"} 0`,
		`aiassist_generation_batch_size_count{model="tiny-llama"} `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
}

func TestChatTemplate(t *testing.T) {
	t.Parallel()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t)})
	got, err := m.ApplyChatTemplate([]Message{{"system", "Be brief."}, {"user", "Hello"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|system|>\nBe brief.<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := m.ApplyChatTemplate([]Message{{"end|>", "x"}}, true); !errors.Is(err, engine.ErrInvalidInput) {
		t.Errorf("bad role: %v", err)
	}
	if ids := m.Tokenizer().Encode(got, false); !slices.Contains(ids, 308) || ids[len(ids)-2] != 309 {
		t.Errorf("the chat prompt encodes to %v, without <|user|> (308) and <|assistant|> (309)", ids)
	}

	custom := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t), ChatTemplate: "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system') }}{% endif %}{{ m.content }}{% endfor %}"})
	if got, err := custom.ApplyChatTemplate([]Message{{"user", "Hi"}}, false); err != nil || got != "<|begin_of_text|>Hi" {
		t.Errorf("custom template: %q %v", got, err)
	}
	if _, err := custom.ApplyChatTemplate([]Message{{"system", "Hi"}}, false); !errors.Is(err, engine.ErrInvalidInput) || !strings.Contains(err.Error(), "no system") {
		t.Errorf("raise_exception: %v", err)
	}
	gpt2 := load(t, Options{Name: "gpt2", Dir: sharedModel(t, "tiny-random-gpt2-fp32")})
	if _, err := gpt2.ApplyChatTemplate([]Message{{"user", "Hi"}}, true); !errors.Is(err, engine.ErrInvalidInput) {
		t.Errorf("no template: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := func(dir, want string) {
		t.Helper()
		_, err := Load(ortRuntime(t), Options{Name: "x", Dir: dir})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s): %v, want an error with %q", dir, err, want)
		}
	}
	f(dir, "neither genai_config.json")
	f(sharedModel(t, "tokenizers"), "neither")
	_ = fmt.Sprint()
}

// TestNoQueue checks that a negative MaxQueue (the config's max_queue: 0)
// refuses a generation at once when every slot is taken, instead of
// falling back to the default queue.
func TestNoQueue(t *testing.T) {
	t.Parallel()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t), MaxSequences: 1, MaxQueue: -1})
	gate := make(chan struct{})
	var gateOnce sync.Once
	open := func() { gateOnce.Do(func() { close(gate) }) }
	t.Cleanup(open)
	m.beforeStep = func() { <-gate }
	done := make(chan error, 1)
	go func() {
		_, err := m.Generate(context.Background(), Request{Prompt: "Hi", MaxTokens: 2}, nil)
		done <- err
	}()
	waitFor(t, "the first generation to take the slot", func() bool { return len(m.slots) == 1 })
	_, err := m.Generate(t.Context(), Request{Prompt: "Hi", MaxTokens: 2}, nil)
	var limit *engine.LimitError
	if !errors.As(err, &limit) || limit.Setting != "max_queue" || limit.Limit != 0 {
		t.Errorf("second generation: %v, want a LimitError for max_queue 0", err)
	}
	open()
	if err := await(t, "the first generation", done); err != nil {
		t.Error(err)
	}
}

// TestSeedUnderBatching is the README's "same seed, same text" under
// load. A sequence's logits in a decode batch are not bit for bit those it
// gets alone: its cache row is left-padded to the longest in the batch,
// and ONNX Runtime's attention sums over the longer row in another order
// (the last bits of a padded row's logits differ; the longest row's do
// not). A sampled token can flip on such a difference, so a request with a
// seed is decoded on its own. Here seeded sampled requests run while four
// unseeded ones of other lengths fill the lane, joining at the first step
// and later: each seeded text is the one it gives alone, and no decode
// step ran more than the four unseeded sequences.
func TestSeedUnderBatching(t *testing.T) {
	t.Parallel()
	set := metrics.NewSet()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t), Metrics: set})
	seed := func(s uint64) *uint64 { return &s }
	seeded := []Request{
		{Prompt: "Hello", Temperature: 1, Seed: seed(1)},
		{Prompt: "Hello world, hello", Temperature: 0.8, TopP: 0.9, Seed: seed(2)},
		{Prompt: "x", Temperature: 1.2, TopK: 20, RepetitionPenalty: 1.2, Seed: seed(3)},
		{Prompt: "Hello world", Seed: seed(4)}, // greedy, seeded: alone too
	}
	background := [][]int{{40, 71, 82, 82, 85, 283, 12, 13, 14, 15, 16}, {306, 308, 71}, {5}, {72, 258, 1, 300, 301, 302}}
	for i := range seeded {
		seeded[i].MaxTokens = 30 + 5*i
	}
	alone := make([]string, len(seeded))
	for i, req := range seeded {
		res, _ := generate(t, m, req)
		alone[i] = res.Text
	}

	gate := make(chan struct{})
	var gateOnce sync.Once
	open := func() { gateOnce.Do(func() { close(gate) }) }
	t.Cleanup(open)
	m.beforeStep = func() { <-gate }
	var wg sync.WaitGroup
	together := make([]string, len(seeded))
	for i, req := range seeded {
		wg.Go(func() {
			res, err := m.Generate(t.Context(), req, nil)
			if err != nil {
				t.Error(err)
			}
			together[i] = res.Text
		})
	}
	// Two unseeded sequences join at the first step, two once the lane
	// has run a few steps.
	started := make(chan struct{})
	var startOnce sync.Once
	runBackground := func(p []int) {
		wg.Go(func() {
			n := 0
			if _, err := m.GenerateIDs(t.Context(), p, Request{MaxTokens: 40}, func(int) error {
				if n++; n == 3 {
					startOnce.Do(func() { close(started) })
				}
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	runBackground(background[0])
	runBackground(background[1])
	waitFor(t, "every sequence to reach the lane", func() bool {
		m.lanes[0].mu.Lock()
		defer m.lanes[0].mu.Unlock()
		return m.lanes[0].load == len(seeded)+2
	})
	stepsBefore, upTo4Before, _ := batchSizes(t, set, "tiny-llama", 4)
	_, oneBefore, _ := batchSizes(t, set, "tiny-llama")
	open()
	await(t, "the third token of a background sequence", started)
	runBackground(background[2])
	runBackground(background[3])
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	await(t, "the generations", finished)
	for i := range seeded {
		if together[i] != alone[i] {
			t.Errorf("seed %d: alone %q, with others %q", *seeded[i].Seed, alone[i], together[i])
		}
	}
	steps, upTo4, _ := batchSizes(t, set, "tiny-llama", 4)
	_, one, _ := batchSizes(t, set, "tiny-llama")
	if steps-stepsBefore != upTo4-upTo4Before {
		t.Errorf("%v decode steps ran, %v of them with at most the 4 unseeded sequences; seeded ones must not join a batch", steps-stepsBefore, upTo4-upTo4Before)
	}
	if steps-stepsBefore == one-oneBefore {
		t.Errorf("no decode step batched the unseeded sequences together")
	}
}
