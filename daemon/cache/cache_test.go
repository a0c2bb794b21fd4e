package cache

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func key(model, prompt string) Key {
	return NewKey(KindText, model, "id-"+model).String("prompt", prompt).Sum()
}

func entry(text string) *Entry {
	return &Entry{Chunks: []string{text}, FinishReason: "length", PromptTokens: 3, CompletionTokens: 4}
}

// series reads one series of set, as a scrape would show it.
func series(set *metrics.Set, name string) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func TestHitAndMiss(t *testing.T) {
	set := metrics.NewSet()
	c := New(Options{MaxEntries: 10, MaxBytes: 1 << 20, Metrics: set})
	k := key("m", "hello")
	if _, ok := c.Get(k); ok {
		t.Fatal("hit in an empty cache")
	}
	if !c.Put(k, entry("world")) {
		t.Fatal("Put refused a small entry")
	}
	e, ok := c.Get(k)
	if !ok || e.Text() != "world" || e.CompletionTokens != 4 || e.FinishReason != "length" {
		t.Fatalf("Get = %+v, %v", e, ok)
	}
	if _, ok := c.Get(key("m", "hello!")); ok {
		t.Error("hit for another prompt")
	}
	if _, ok := c.Get(key("other", "hello")); ok {
		t.Error("hit for another model")
	}
	if got := series(set, `aiassist_cache_hits_total{model="m"}`); got != "1" {
		t.Errorf("hits %q, want 1", got)
	}
	c.Miss(k) // a request that did not read
	if got := series(set, `aiassist_cache_misses_total{model="m"}`); got != "3" {
		t.Errorf("misses %q, want 3", got)
	}
	if got := series(set, `aiassist_cache_entries{model="m"}`); got != "1" {
		t.Errorf("entries %q, want 1", got)
	}
	if got, want := series(set, `aiassist_cache_bytes{model="m"}`), "283"; got != want {
		t.Errorf("bytes %q, want %s (%d)", got, want, entry("world").Size())
	}
	// Replacing an entry keeps the counts right.
	c.Put(k, entry("again"))
	if c.Len() != 1 || c.Bytes() != entry("again").Size() {
		t.Errorf("after a replace: %d entries, %d bytes", c.Len(), c.Bytes())
	}
}

// TestKeyFields: every field and its value are in the key, and no two
// field lists hash alike.
func TestKeyFields(t *testing.T) {
	base := func() *KeyBuilder { return NewKey(KindText, "m", "id") }
	keys := map[Key]string{}
	f := func(name string, k Key) {
		t.Helper()
		if prev, ok := keys[k]; ok {
			t.Errorf("%s and %s give the same key", name, prev)
		}
		keys[k] = name
	}
	f("empty", base().Sum())
	f("prompt ab c", base().String("p", "ab").String("q", "c").Sum())
	f("prompt a bc", base().String("p", "a").String("q", "bc").Sum())
	f("temperature 0", base().Float("temperature", 0).Sum())
	f("temperature 0.5", base().Float("temperature", 0.5).Sum())
	f("max_tokens 16", base().Int("max_tokens", 16).Sum())
	f("max_tokens 17", base().Int("max_tokens", 17).Sum())
	f("stop [a b]", base().Strings("stop", []string{"a", "b"}).Sum())
	f("stop [ab]", base().Strings("stop", []string{"ab"}).Sum())
	f("bool true", base().Bool("special", true).Sum())
	f("bool false", base().Bool("special", false).Sum())
	f("other id", NewKey(KindText, "m", "id2").Sum())
	f("other kind", NewKey(KindEmbeddings, "m", "id").Sum())
	f("bytes", base().Bytes("p", []byte("ab")).Sum())
	if base().Float("t", 0).Sum() != base().Float("t", -0.0*1).Sum() {
		t.Error("-0 and 0 differ")
	}
	if base().String("p", "x").Sum() != base().String("p", "x").Sum() {
		t.Error("the same fields give different keys")
	}
}

func TestTTL(t *testing.T) {
	clk := &clock{now: time.Unix(1000, 0)}
	set := metrics.NewSet()
	c := New(Options{MaxEntries: 10, MaxBytes: 1 << 20, TTL: time.Minute, Now: clk.Now, Metrics: set})
	k := key("m", "q")
	c.Put(k, entry("a"))
	clk.add(59 * time.Second)
	if _, ok := c.Get(k); !ok {
		t.Fatal("miss before the TTL")
	}
	clk.add(time.Second)
	if _, ok := c.Get(k); ok {
		t.Fatal("hit at the TTL")
	}
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("an expired entry is kept: %d entries, %d bytes", c.Len(), c.Bytes())
	}
	if got := series(set, `aiassist_cache_evictions_total{model="m",reason="expired"}`); got != "1" {
		t.Errorf("expired evictions %q, want 1", got)
	}
	// A hit does not make an answer live longer.
	c.Put(k, entry("b"))
	for range 3 {
		clk.add(25 * time.Second)
		c.Get(k)
	}
	if _, ok := c.Get(k); ok {
		t.Error("hit 75s after the Put: hits extended the TTL")
	}
	// A Put drops expired answers nobody asks for.
	c.Put(key("m", "old"), entry("x"))
	clk.add(2 * time.Minute)
	c.Put(key("m", "new"), entry("y"))
	if c.Len() != 1 {
		t.Errorf("%d entries after a Put past the TTL, want 1", c.Len())
	}
	// A shorter TTL on reload applies to what is stored.
	c.Resize(Options{MaxEntries: 10, MaxBytes: 1 << 20, TTL: time.Second})
	clk.add(time.Second)
	if _, ok := c.Get(key("m", "new")); ok {
		t.Error("hit past the new, shorter TTL")
	}
}

func TestEvictionByBytes(t *testing.T) {
	set := metrics.NewSet()
	one := entry(strings.Repeat("x", 1000)).Size()
	c := New(Options{MaxEntries: 100, MaxBytes: 3 * one, Metrics: set})
	for i, p := range []string{"a", "b", "c"} {
		c.Put(key("m", p), entry(strings.Repeat(string(rune('x')), 1000)))
		if c.Bytes() != int64(i+1)*one {
			t.Fatalf("%d bytes after %d puts", c.Bytes(), i+1)
		}
	}
	c.Get(key("m", "a")) // a is now the most recently used
	c.Put(key("m", "d"), entry(strings.Repeat("x", 1000)))
	if _, ok := c.Get(key("m", "b")); ok {
		t.Error("b, the least recently used, was not evicted")
	}
	for _, p := range []string{"a", "c", "d"} {
		if _, ok := c.Get(key("m", p)); !ok {
			t.Errorf("%s was evicted", p)
		}
	}
	if c.Bytes() != 3*one || c.Len() != 3 {
		t.Errorf("%d bytes, %d entries, want %d and 3", c.Bytes(), c.Len(), 3*one)
	}
	if got := series(set, `aiassist_cache_evictions_total{model="m",reason="bytes"}`); got != "1" {
		t.Errorf("byte evictions %q, want 1", got)
	}
	// One larger entry pushes out as many as it needs.
	c.Put(key("m", "big"), entry(strings.Repeat("y", 2000)))
	if c.Bytes() > 3*one || c.Len() != 2 {
		t.Errorf("after a double entry: %d bytes, %d entries", c.Bytes(), c.Len())
	}
	// One larger than the whole cache is not stored, and evicts nothing.
	if c.Put(key("m", "huge"), entry(strings.Repeat("z", 4000))) {
		t.Error("an entry larger than max_bytes was stored")
	}
	if c.Len() != 2 {
		t.Errorf("%d entries after a refused Put", c.Len())
	}
	// A smaller bound on reload evicts at once.
	c.Resize(Options{MaxEntries: 100, MaxBytes: one})
	if c.Bytes() > one {
		t.Errorf("%d bytes after resizing to %d", c.Bytes(), one)
	}
	if got := series(set, `aiassist_cache_bytes{model="m"}`); got != "0" {
		t.Errorf("bytes gauge %q, want 0", got)
	}
}

func TestEvictionByEntries(t *testing.T) {
	set := metrics.NewSet()
	c := New(Options{MaxEntries: 2, MaxBytes: 1 << 20, Metrics: set})
	c.Put(key("m", "a"), entry("1"))
	c.Put(key("n", "b"), entry("2"))
	c.Put(key("n", "c"), entry("3"))
	if _, ok := c.Get(key("m", "a")); ok || c.Len() != 2 {
		t.Errorf("a kept, or %d entries", c.Len())
	}
	if got := series(set, `aiassist_cache_evictions_total{model="m",reason="entries"}`); got != "1" {
		t.Errorf("entry evictions %q, want 1", got)
	}
	if got := series(set, `aiassist_cache_entries{model="n"}`); got != "2" {
		t.Errorf("entries of n %q, want 2", got)
	}
	c.Resize(Options{MaxEntries: 1, MaxBytes: 1 << 20})
	if c.Len() != 1 {
		t.Errorf("%d entries after resizing to 1", c.Len())
	}
}

func TestRetain(t *testing.T) {
	c := New(Options{MaxEntries: 10, MaxBytes: 1 << 20})
	c.Put(key("m", "a"), entry("1"))
	c.Put(key("n", "a"), entry("2"))
	c.Retain(func(model, id string) bool { return model == "n" && id == "id-n" })
	if _, ok := c.Get(key("m", "a")); ok {
		t.Error("m's answer kept")
	}
	if _, ok := c.Get(key("n", "a")); !ok {
		t.Error("n's answer dropped")
	}
	c.Purge()
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("after Purge: %d entries, %d bytes", c.Len(), c.Bytes())
	}
}

// TestConcurrent runs Get and Put from many goroutines, for -race.
func TestConcurrent(t *testing.T) {
	c := New(Options{MaxEntries: 50, MaxBytes: 20 * entry("xxxx").Size()})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := key("m", string(rune('a'+(g*i)%90)))
				if _, ok := c.Get(k); !ok {
					c.Put(k, entry("xxxx"))
				}
			}
		})
	}
	wg.Wait()
	if c.Bytes() > 20*entry("xxxx").Size() || c.Bytes() != int64(c.Len())*entry("xxxx").Size() {
		t.Errorf("%d bytes for %d entries", c.Bytes(), c.Len())
	}
}
