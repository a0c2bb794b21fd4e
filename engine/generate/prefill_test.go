package generate

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// eventLog collects a model's Events in the order its lane runs them.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) snapshot() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// longPrompt is n token ids of tiny-llama's vocabulary.
func longPrompt(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = 5 + (i*7)%250
	}
	return p
}

// TestLongPromptInterleaves: a 1,500-token prompt arriving while 8 streams
// decode is fed in chunks of prefill_chunk tokens, and between two chunks
// every running stream gets its next token: the lane's events go decode
// (all 8), prefill chunk, decode (all 8), prefill chunk, ... until the
// prompt is in, and then it generates too.
func TestLongPromptInterleaves(t *testing.T) {
	t.Parallel()
	const chunk, long, streams = 128, 1500, 8
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t), ContextLength: 4096, PrefillChunk: chunk, MaxSequences: streams + 1})
	var log eventLog
	m.onEvent = log.add
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range streams {
		wg.Go(func() {
			// They run until cancelled: far more tokens than the test needs.
			m.GenerateIDs(ctx, []int{40 + i, 71, 82}, Request{MaxTokens: 2000}, func(int) error { return nil })
		})
	}
	var running []int
	waitFor(t, "8 streams decoding in one batch", func() bool {
		for _, e := range log.snapshot() {
			if e.Kind == "decode" && len(e.Batch) == streams {
				running = slices.Sorted(slices.Values(e.Batch))
				return true
			}
		}
		return false
	})
	mark := len(log.snapshot())
	ids, res := greedyIDs(t, m, longPrompt(long), 5)
	if len(ids) != 5 || res.FinishReason != "length" {
		t.Fatalf("the long prompt's generation: %v, %+v", ids, res)
	}
	events := log.snapshot()[mark:]
	cancel()

	var longID, fed, chunks, since int
	first, last := -1, -1
	for i, e := range events {
		if e.Kind == "prefill" && !slices.Contains(running, e.Seq) {
			if longID == 0 {
				longID, first = e.Seq, i
			}
			if e.Seq != longID {
				t.Fatalf("event %d: a prefill of sequence %d, neither a stream nor the long prompt", i, e.Seq)
			}
			if e.Tokens > chunk {
				t.Errorf("event %d: a chunk of %d tokens, more than prefill_chunk %d", i, e.Tokens, chunk)
			}
			fed += e.Tokens
			chunks++
			last = i
		}
	}
	if fed != long {
		t.Fatalf("the long prompt was fed %d tokens in %d chunks, want %d", fed, chunks, long)
	}
	if chunks < long/chunk {
		t.Fatalf("%d chunks for %d tokens", chunks, long)
	}
	// From the first chunk to the last: no more than one chunk between
	// two decode steps, and every step decodes all 8 streams.
	for i := first; i <= last; i++ {
		switch e := events[i]; e.Kind {
		case "prefill":
			if since += e.Tokens; since > chunk {
				t.Fatalf("events %d..%d: %d prompt tokens fed between two decode steps, more than one chunk of %d: %+v", first, i, since, chunk, events[first:i+1])
			}
		case "decode":
			since = 0
			got := slices.Sorted(slices.Values(e.Batch))
			if !slices.Equal(got, running) {
				t.Fatalf("event %d: a decode step of %v while the streams %v run", i, got, running)
			}
		}
	}
	var decodes int
	for _, e := range events[first:last] {
		if e.Kind == "decode" {
			decodes++
		}
	}
	if decodes < chunks-1 {
		t.Fatalf("%d decode steps between %d chunks", decodes, chunks)
	}
	// Once the prompt is in, the long sequence decodes with the streams.
	joined := false
	for _, e := range events[last:] {
		if e.Kind == "decode" && slices.Contains(e.Batch, longID) {
			joined = len(e.Batch) == streams+1
			break
		}
	}
	if !joined {
		t.Fatal("the long prompt's sequence never decoded in the streams' batch")
	}
}

// TestPrefillTakesTurns: prompts being read take turns at the chunk, so a
// short prompt that comes beside a long one (at the same step or the
// next) gets its first token after at most one chunk of the long one, not
// after all of it; and both finish.
func TestPrefillTakesTurns(t *testing.T) {
	t.Parallel()
	const chunk = 64
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t), ContextLength: 2048, PrefillChunk: chunk})
	var log eventLog
	m.onEvent = log.add
	// Hold the lane until both have come: the first then steps alone,
	// the second joins at the next step.
	wait, open := newGate(t)
	m.beforeStep = wait
	results := make(chan []int, 2)
	var wg sync.WaitGroup
	for _, p := range [][]int{longPrompt(700), {40, 71, 82}} {
		wg.Go(func() {
			var ids []int
			_, err := m.GenerateIDs(context.Background(), p, Request{MaxTokens: 4}, func(id int) error {
				ids = append(ids, id)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			results <- ids
		})
	}
	waitLaneLoad(t, m, 2)
	open()
	wg.Wait()
	for range 2 {
		if ids := <-results; len(ids) != 4 {
			t.Fatalf("a generation gave %v, want 4 tokens", ids)
		}
	}
	events := log.snapshot()
	var longID, shortAt, longLast = 0, -1, -1
	for i, e := range events {
		if e.Kind != "prefill" {
			continue
		}
		if e.Tokens > chunk {
			t.Fatalf("a chunk of %d tokens, more than %d", e.Tokens, chunk)
		}
		if longID == 0 && e.Tokens == chunk {
			longID = e.Seq
		}
		if e.Seq == longID {
			longLast = i
		} else if e.Tokens == 3 {
			shortAt = i
		}
	}
	if shortAt < 0 || longLast < 0 || shortAt > longLast {
		t.Fatalf("the short prompt's prefill (event %d) came after the long one's last chunk (event %d): %+v", shortAt, longLast, events)
	}
	var before int
	for _, e := range events[:shortAt] {
		if e.Seq == longID && e.Kind == "prefill" {
			before++
		}
	}
	if before > 1 {
		t.Fatalf("the short prompt waited for %d chunks of the long one, want at most 1", before)
	}
}

// TestShortPromptsPrefillTogether: whole short prompts that join at the
// same step are prefilled in one run, padded to the longest, as long as
// that run feeds at most prefill_chunk positions; and they generate what
// each generates alone.
func TestShortPromptsPrefillTogether(t *testing.T) {
	t.Parallel()
	// Prompts of 6, 3, 1 and 4 tokens: with chunk 12 only the first two
	// fit one run (2 × 6).
	for _, c := range []struct{ chunk, together int }{{512, 4}, {12, 2}} {
		t.Run(strconv.Itoa(c.chunk), func(t *testing.T) {
			t.Parallel()
			prefillTogether(t, c.chunk, c.together)
		})
	}
}

func prefillTogether(t *testing.T, chunk, wantTogether int) {
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t), PrefillChunk: chunk})
	prompts := [][]int{{40, 71, 82, 82, 85, 283}, {306, 308, 71}, {5}, {72, 258, 1, 300}}
	want := make([][]int, len(prompts))
	for i, p := range prompts {
		want[i], _ = greedyIDs(t, m, p, 8)
	}
	var log eventLog
	m.onEvent = log.add
	wait, open := newGate(t)
	// A first sequence holds the lane in its step, so that the prompts
	// all join at the next one.
	held := make(chan struct{}, 1)
	m.beforeStep = func() {
		select {
		case held <- struct{}{}:
		default:
		}
		wait()
	}
	var wg sync.WaitGroup
	wg.Go(func() { greedyIDs(t, m, []int{99}, 8) })
	await(t, "the lane held", held)
	// One at a time, so that they join in this order: which of them fit
	// one run depends on it (3, 1 and 4 tokens would fit 12 as well).
	got := make([][]int, len(prompts))
	for i, p := range prompts {
		wg.Go(func() {
			got[i], _ = greedyIDs(t, m, p, 8)
		})
		waitLaneLoad(t, m, i+2)
	}
	open()
	wg.Wait()
	for i := range prompts {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("prompt %v: %v prefilled with others, %v alone", prompts[i], got[i], want[i])
		}
	}
	events := log.snapshot()
	tokens := map[int]int{}
	for _, e := range events {
		if e.Kind == "prefill" {
			tokens[e.Seq] = e.Tokens
		}
	}
	together := 0
	for _, e := range events {
		if e.Kind == "prefill" && len(e.Batch) > 1 {
			together = max(together, len(e.Batch))
			longest := 0
			for _, id := range e.Batch {
				longest = max(longest, tokens[id])
			}
			if len(e.Batch)*longest > chunk {
				t.Errorf("%d prompts padded to %d tokens in one run, more than the chunk of %d positions", len(e.Batch), longest, chunk)
			}
		}
	}
	if together != wantTogether {
		t.Fatalf("at most %d prompts prefilled in one run, want %d", together, wantTogether)
	}
}
