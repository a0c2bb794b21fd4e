package openai

import (
	"bytes"
	"log/slog"

	"github.com/aiassist/aiassist/daemon/api/route"
	"github.com/aiassist/aiassist/daemon/cache"
	"github.com/aiassist/aiassist/engine/generate"
)

// cacheUse is one request's use of the response cache: whether it may be
// answered from it, whether its answer may be stored, and under which key.
// A nil *cacheUse uses no cache; its methods do nothing.
type cacheUse struct {
	c     *cache.Cache
	key   cache.Key
	read  bool
	write bool
}

// useCache decides how r uses the cache, and says so in the X-Cache
// header and the access log (cache: hit, miss or bypass): not at all
// without a cache, for a model with cache: false, a key with cache: false,
// a request with "cache": false (off) or Cache-Control: no-store, or one
// whose answer is random (repeatable false) unless cache.sampled is set;
// Cache-Control: no-cache only skips the read. kind is a cache.Kind*, and
// fields adds the request's fields that change its answer to the key;
// r.Model must be set.
func useCache(r *route.Request, kind string, repeatable, off bool, fields func(*cache.KeyBuilder)) *cacheUse {
	st := r.State
	if st.Cache == nil {
		return nil
	}
	id, ok := st.CacheModels[r.Model]
	noCache, noStore := cacheControl(r.Ctx.Request.Header.Peek("Cache-Control"))
	if !ok || off || noStore || (r.Principal != nil && r.Principal.NoCache) || (!repeatable && !st.CacheSampled) {
		markCache(r, "bypass")
		return nil
	}
	k := cache.NewKey(kind, r.Model, id)
	fields(k)
	return &cacheUse{c: st.Cache, key: k.Sum(), read: !noCache, write: true}
}

// get returns the stored answer, or nil on a miss.
func (u *cacheUse) get(r *route.Request) *cache.Entry {
	if u == nil {
		return nil
	}
	if !u.read {
		u.c.Miss(u.key)
	} else if e, ok := u.c.Get(u.key); ok {
		markCache(r, "hit")
		return e
	}
	markCache(r, "miss")
	return nil
}

// put stores a fresh answer.
func (u *cacheUse) put(e *cache.Entry) {
	if u != nil && u.write {
		u.c.Put(u.key, e)
	}
}

// collect returns the chunk callback of a generation whose answer will be
// stored, and the chunks it gathers; nil when there is nothing to store.
func (u *cacheUse) collect() (func(generate.Chunk) error, *[]string) {
	if u == nil || !u.write {
		return nil, nil
	}
	chunks := new([]string)
	return func(ch generate.Chunk) error { *chunks = append(*chunks, ch.Text); return nil }, chunks
}

func markCache(r *route.Request, status string) {
	r.Ctx.Response.Header.Set("X-Cache", status)
	r.Extra = append(r.Extra, slog.String("cache", status))
}

// cacheControl reads the no-cache and no-store directives of a request's
// Cache-Control header.
func cacheControl(v []byte) (noCache, noStore bool) {
	for len(v) > 0 {
		var d []byte
		d, v, _ = bytes.Cut(v, []byte(","))
		d = bytes.TrimSpace(d)
		switch {
		case bytes.EqualFold(d, []byte("no-cache")):
			noCache = true
		case bytes.EqualFold(d, []byte("no-store")):
			noStore = true
		}
	}
	return noCache, noStore
}

// textKey adds what changes a generated answer: the prompt as the model
// reads it (after the chat template) and every sampling parameter, with
// the route's defaults applied. Requests of different routes that ask the
// model the same share one answer.
func textKey(p generate.Request) func(*cache.KeyBuilder) {
	return func(k *cache.KeyBuilder) {
		k.String("prompt", p.Prompt).
			Bool("add_special_tokens", p.AddSpecialTokens).
			Int("max_tokens", int64(p.MaxTokens)).
			Float("temperature", p.Temperature).
			Float("top_p", p.TopP).
			Int("top_k", int64(p.TopK)).
			Float("min_p", p.MinP).
			Float("repetition_penalty", p.RepetitionPenalty).
			Strings("stop", p.Stop).
			Bool("seeded", p.Seed != nil)
		if p.Seed != nil {
			k.Int("seed", int64(*p.Seed))
		}
	}
}

// repeatable reports whether a generation gives the same text each time:
// greedy, or with a seed.
func repeatable(p generate.Request) bool { return p.Temperature == 0 || p.Seed != nil }

// fromCache is the result a hit replays.
func fromCache(e *cache.Entry) generate.Result {
	return generate.Result{Text: e.Text(), FinishReason: e.FinishReason, PromptTokens: e.PromptTokens, CompletionTokens: e.CompletionTokens}
}

// toCache is the entry a finished generation stores.
func toCache(res generate.Result, chunks []string) *cache.Entry {
	return &cache.Entry{Chunks: chunks, FinishReason: res.FinishReason, PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens}
}
