package openai

import (
	"strings"
	"testing"

	"github.com/aiassist/aiassist/daemon/cache"
	"github.com/aiassist/aiassist/engine/generate"
)

func TestCacheControl(t *testing.T) {
	f := func(v string, noCache, noStore bool) {
		t.Helper()
		if c, s := cacheControl([]byte(v)); c != noCache || s != noStore {
			t.Errorf("cacheControl(%q) = %v %v, want %v %v", v, c, s, noCache, noStore)
		}
	}
	f("", false, false)
	f("no-cache", true, false)
	f("No-Cache", true, false)
	f("max-age=0, no-cache", true, false)
	f(" no-store ,no-cache", true, true)
	f("no-cachex", false, false)
	f(`private="no-cache"`, false, false)
	f("no-store", false, true)
}

// FuzzCacheControl checks the header reader against splitting by
// strings: the same directives, and never a panic.
func FuzzCacheControl(f *testing.F) {
	for _, s := range []string{"no-cache", "max-age=0, No-Store", ",,", " no-cache ,", "\x00no-cache"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var noCache, noStore bool
		for _, d := range strings.Split(v, ",") {
			switch d = strings.TrimSpace(d); {
			case strings.EqualFold(d, "no-cache"):
				noCache = true
			case strings.EqualFold(d, "no-store"):
				noStore = true
			}
		}
		if c, s := cacheControl([]byte(v)); c != noCache || s != noStore {
			t.Fatalf("cacheControl(%q) = %v %v, want %v %v", v, c, s, noCache, noStore)
		}
	})
}

// TestTextKey: each sampling parameter is in the key, and a seed of 0 is
// not no seed.
func TestTextKey(t *testing.T) {
	key := func(p generate.Request) cache.Key {
		k := cache.NewKey(cache.KindText, "m", "id")
		textKey(p)(k)
		return k.Sum()
	}
	zero := uint64(0)
	base := generate.Request{Prompt: "p", MaxTokens: 8, AddSpecialTokens: true}
	seen := map[cache.Key]int{}
	for i, change := range []func(*generate.Request){
		func(*generate.Request) {},
		func(p *generate.Request) { p.Prompt = "q" },
		func(p *generate.Request) { p.MaxTokens = 9 },
		func(p *generate.Request) { p.Temperature = 0.5 },
		func(p *generate.Request) { p.TopP = 0.9 },
		func(p *generate.Request) { p.TopK = 4 },
		func(p *generate.Request) { p.MinP = 0.1 },
		func(p *generate.Request) { p.RepetitionPenalty = 1.2 },
		func(p *generate.Request) { p.Stop = []string{"x"} },
		func(p *generate.Request) { p.Seed = &zero },
		func(p *generate.Request) { p.AddSpecialTokens = false },
	} {
		p := base
		change(&p)
		k := key(p)
		if j, ok := seen[k]; ok {
			t.Errorf("change %d gives the key of change %d", i, j)
		}
		seen[k] = i
	}
	if !repeatable(generate.Request{}) || !repeatable(generate.Request{Temperature: 1, Seed: &zero}) || repeatable(generate.Request{Temperature: 0.1}) {
		t.Error("repeatable: greedy and seeded requests are, sampled ones are not")
	}
}
