package daemon

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/embed"
	"github.com/aiassist/aiassist/engine/generate"
	"github.com/aiassist/aiassist/schema"
)

// generateOptions translates the config's causal-lm model into engine
// options.
func generateOptions(cfg *schema.Config, m schema.Model, set *metrics.Set) generate.Options {
	// The config's max_queue: 0 means no request waits; the engine's 0
	// means its default.
	maxQueue := m.MaxQueue
	if maxQueue == 0 {
		maxQueue = -1
	}
	return generate.Options{
		Name:           m.Name,
		Dir:            m.Path,
		Instances:      startInstances(m),
		MaxInstances:   maxInstances,
		IntraOpThreads: m.IntraOpThreads,
		InterOpThreads: cfg.Runtime.InterOpThreads,
		MaxSequences:   m.MaxSequences,
		PrefillChunk:   m.PrefillChunk,
		MaxQueue:       maxQueue,
		ContextLength:  m.ContextLength,
		Truncate:       m.Truncate,
		ChatTemplate:   m.ChatTemplate,
		Metrics:        set,
	}
}

// defaultModel is the generator of /v1 requests that name none: the
// configured one, else the only causal-lm model, else none.
func defaultModel(cfg *schema.Config) string {
	if cfg.DefaultModel != "" {
		return cfg.DefaultModel
	}
	var only string
	for _, name := range cfg.ModelNames() {
		if cfg.Models[name].Kind == schema.KindCausalLM {
			if only != "" {
				return ""
			}
			only = name
		}
	}
	return only
}

// modelFiles are the files a model is loaded from, as the engine resolves
// them: a tensor model's ONNX file and its external data, or the files of
// a causal-lm folder Load reads — not the folder, so a lock file or a
// cache created beside them changes nothing.
func modelFiles(m schema.Model) ([]string, error) {
	switch m.Kind {
	case schema.KindCausalLM:
		return generate.ModelFiles(m.Path)
	case schema.KindEmbedding:
		return embed.ModelFiles(m.Path)
	}
	return engine.TensorModelFiles(m.Path)
}

// statModel identifies the files of a model, so that a reload tells a
// replaced one: the identities of its files folded into one — the inodes
// mixed, the sizes summed and the latest modification time.
func statModel(m schema.Model) (fileID, error) {
	files, err := modelFiles(m)
	if err != nil {
		return fileID{}, err
	}
	var id fileID
	for i, p := range files {
		f, err := statFile(p)
		if err != nil {
			return fileID{}, err
		}
		if i == 0 {
			id.dev = f.dev
		}
		id.ino = id.ino*1099511628211 ^ f.ino
		id.size += f.size
		if f.mtime.After(id.mtime) {
			id.mtime = f.mtime
		}
	}
	return id, nil
}
