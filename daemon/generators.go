package daemon

import (
	"os"
	"path/filepath"
	"slices"

	"github.com/VictoriaMetrics/metrics"

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
		Instances:      m.Instances,
		IntraOpThreads: m.IntraOpThreads,
		InterOpThreads: cfg.Runtime.InterOpThreads,
		MaxSequences:   m.MaxSequences,
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

// causalLMFiles are the files of a causal-lm folder that generate.Load
// may read; a change to any of them changes the model.
var causalLMFiles = []string{
	"config.json", "generation_config.json", "genai_config.json",
	"tokenizer.json", "tokenizer_config.json",
	"model.onnx", "model.onnx.data", "decoder_model_merged.onnx", "decoder_model_merged.onnx.data",
}

// modelFiles are the files a model is loaded from: a tensor model's path,
// or those of a causal-lm folder that exist (and the ONNX file
// genai_config.json names, which is usually model.onnx or beside it).
func modelFiles(m schema.Model) []string {
	if m.Kind != schema.KindCausalLM {
		return []string{m.Path}
	}
	var out []string
	for _, name := range causalLMFiles {
		p := filepath.Join(m.Path, name)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(m.Path, "*.onnx"))
	for _, p := range matches {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// statModel identifies the files of a model, so that a reload tells a
// replaced one. For a causal-lm folder it folds the identities of its
// files into one: the folder's device, the inodes mixed, the sizes summed
// and the latest modification time.
func statModel(m schema.Model) (fileID, error) {
	if m.Kind != schema.KindCausalLM {
		return statFile(m.Path)
	}
	id, err := statFile(m.Path)
	if err != nil {
		return fileID{}, err
	}
	for _, p := range modelFiles(m) {
		f, err := statFile(p)
		if err != nil {
			return fileID{}, err
		}
		id.ino = id.ino*1099511628211 ^ f.ino
		id.size += f.size
		if f.mtime.After(id.mtime) {
			id.mtime = f.mtime
		}
	}
	return id, nil
}
