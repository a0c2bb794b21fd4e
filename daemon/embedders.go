package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/embed"
	"github.com/aiassist/aiassist/schema"
)

// embedOptions translates the config's embedding model into engine
// options.
func embedOptions(cfg *schema.Config, m schema.Model, set *metrics.Set) embed.Options {
	e := m.Embedding
	stride := e.Stride
	if e.DefaultStride && e.Window == 0 {
		stride = -1 // a quarter of the window
	}
	return embed.Options{
		Name:           m.Name,
		Dir:            m.Path,
		Instances:      m.Instances,
		IntraOpThreads: m.IntraOpThreads,
		InterOpThreads: cfg.Runtime.InterOpThreads,
		Pooling:        e.Pooling,
		Normalize:      e.Normalize,
		MaxLength:      e.MaxLength,
		Padding:        e.Padding,
		Chunking:       embed.Chunking{Off: e.ChunkingOff, Window: e.Window, Stride: stride},
		Matryoshka:     e.Matryoshka,
		Batching: engine.BatchOptions{
			Enabled:       m.Batching.Enabled,
			MaxBatchSize:  m.Batching.MaxBatchSize,
			MaxQueueDelay: m.Batching.MaxQueueDelay,
			MaxQueueSize:  m.Batching.MaxQueueSize,
		},
		Metrics: set,
	}
}

// warmEmbedding embeds an empty text, its special tokens alone, so that a
// model that loads but cannot run fails the reload.
func warmEmbedding(m *embed.Model, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := m.Embed(ctx, embed.Request{Inputs: []embed.Input{{Text: ""}}}); err != nil {
		return fmt.Errorf("models.%s: the warm-up embedding of an empty text failed: %w", m.Name(), err)
	}
	return nil
}
