package generate

import (
	"slices"
	"testing"
)

// TestKVCacheMatchesRecompute decodes greedily with the cache and without
// it (the whole sequence fed at every step): the tokens must be the same.
func TestKVCacheMatchesRecompute(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, dir string
		prompts   [][]int
	}{
		{"tiny-llama", tinyLlamaDir(t), [][]int{{40, 71, 82, 82, 85, 283}, {306, 308, 71}, {5}}},
		{"tiny-random-gpt2-fp32", sharedModel(t, "tiny-random-gpt2-fp32"), [][]int{{464, 2068, 7586, 21831}, {15496, 11, 995}, {1}}},
		{"dummy-decoder-optimum", sharedModel(t, "dummy-decoder-optimum"), [][]int{{1, 2, 3}, {7}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cached := load(t, Options{Name: c.name, Dir: c.dir})
			full := load(t, Options{Name: c.name, Dir: c.dir, DisableKVCache: true})
			for _, p := range c.prompts {
				p = slices.DeleteFunc(slices.Clone(p), func(id int) bool { return id >= cached.VocabSize() })
				got, _ := greedyIDs(t, cached, p, 24)
				want, _ := greedyIDs(t, full, p, 24)
				t.Logf("prompt %v -> %v", p, got)
				if !slices.Equal(got, want) {
					t.Errorf("prompt %v: with the cache %v, recomputed %v", p, got, want)
				}
			}
		})
	}
}

func TestGenerateText(t *testing.T) {
	t.Parallel()
	m := load(t, Options{Name: "tiny-llama", Dir: tinyLlamaDir(t)})
	var chunks []string
	res, err := m.Generate(t.Context(), Request{Prompt: "Hello world", MaxTokens: 20}, func(c Chunk) error {
		chunks = append(chunks, c.Text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v %q", res, chunks)
	if res.FinishReason != "length" || res.CompletionTokens != 20 {
		t.Errorf("finish %q after %d tokens, want length after 20", res.FinishReason, res.CompletionTokens)
	}
}
