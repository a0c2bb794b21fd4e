package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/cache"
	"github.com/aiassist/aiassist/schema"
)

// buildCache sets the response cache of st, built for cfg: old's, so that
// a reload keeps the answers of the models it keeps, or a new one; none
// when cfg turns it off. Nothing of old's changes until publishCache.
func buildCache(cfg *schema.Config, st *state, old *cache.Cache, set *metrics.Set) {
	if cfg.Cache == nil {
		return
	}
	c := old
	if c == nil {
		c = cache.New(cacheOptions(cfg.Cache, set))
	}
	ids := map[string]string{}
	for name, lm := range st.models {
		// The flag is read from cfg: a model kept by the reload has the
		// spec it was loaded with.
		if spec := cfg.Models[name]; spec.Kind != schema.KindTensor && !spec.NoCache {
			ids[name] = modelIdentity(lm, cfg)
		}
	}
	st.api.Cache, st.api.CacheModels, st.api.CacheSampled = c, ids, cfg.Cache.Sampled
}

func cacheOptions(c *schema.Cache, set *metrics.Set) cache.Options {
	return cache.Options{MaxEntries: c.MaxEntries, MaxBytes: c.MaxBytes, TTL: c.TTL, Metrics: set}
}

// publishCache applies next's cache settings at the swap: the new bounds,
// and the answers of models next does not serve as they were (loaded from
// new files or with new settings, cache: false, or gone) dropped, as
// nothing will read them; all of them when next has no cache.
func publishCache(old, next *state) {
	c := next.api.Cache
	if c == nil {
		if old != nil && old.api.Cache != nil {
			old.api.Cache.Purge()
		}
		return
	}
	c.Resize(cacheOptions(next.cfg.Cache, nil))
	ids := next.api.CacheModels
	c.Retain(func(model, id string) bool { return ids[model] == id })
}

// modelIdentity names what a model's answers depend on: the identity of
// its files when loaded (device, inode, size and modification time, which
// a copy, a rename over them or an in-place write all change) and its
// settings, less those that only say how much runs at once. A setting
// added later is part of it unless left out here, so an unknown one can
// cost a miss but never serve a wrong answer.
func modelIdentity(lm *loadedModel, cfg *schema.Config) string {
	spec := lm.spec
	spec.Instances, spec.MaxSequences, spec.MaxQueue, spec.RequestTimeout, spec.NoCache = 0, 0, 0, 0, false
	spec.Batching = schema.Batching{}
	h := sha256.New()
	fmt.Fprintf(h, "%#v\x00%d:%d:%d:%d\x00%d", spec, lm.file.dev, lm.file.ino, lm.file.size, lm.file.mtime.UnixNano(), cfg.Runtime.InterOpThreads)
	return hex.EncodeToString(h.Sum(nil)[:16])
}
