package schema

import "encoding/json"

// Embedding configures an embedding model (kind "embedding").
type Embedding struct {
	Pooling   string // "mean" or "cls"
	Normalize bool
	MaxLength int    // 0: the tokenizer's truncation, else the model's positions
	Padding   string // "longest" or "tokenizer"
	// ChunkingOff refuses inputs longer than a row; otherwise Window
	// (0: MaxLength) and Stride split them.
	ChunkingOff bool
	Window      int
	Stride      int
	// DefaultStride says stride is unset, which with Window 0 is a
	// quarter of the window, else 0.
	DefaultStride bool
	Matryoshka    bool
}

// rawEmbedding are the fields of #EmbeddingModel as CUE exports them.
type rawEmbedding struct {
	Pooling    string          `json:"pooling"`
	Normalize  bool            `json:"normalize"`
	MaxLength  int             `json:"max_length"`
	Padding    string          `json:"padding"`
	Chunking   json.RawMessage `json:"chunking"`
	Matryoshka bool            `json:"matryoshka"`
}

// convertEmbedding fills in an embedding model's fields; the schema has
// checked their types and bounds.
func (c *checker) convertEmbedding(model *Model, m *rawModel) {
	e := Embedding{Pooling: m.Pooling, Normalize: m.Normalize, MaxLength: m.MaxLength, Padding: m.Padding, Matryoshka: m.Matryoshka}
	var off string
	var ch struct {
		Window *int `json:"window"`
		Stride *int `json:"stride"`
	}
	switch {
	case json.Unmarshal(m.Chunking, &off) == nil && off == "off":
		e.ChunkingOff = true
	case json.Unmarshal(m.Chunking, &ch) == nil:
		if ch.Window != nil {
			e.Window = *ch.Window
		}
		if ch.Stride != nil {
			e.Stride = *ch.Stride
		}
		e.DefaultStride = ch.Stride == nil
	}
	at := func(f ...string) []string { return append([]string{"models", label(model.Name)}, f...) }
	if e.MaxLength > 0 && e.Window > e.MaxLength {
		c.errorf(at("chunking", "window"), "window %d is more than max_length %d; a window is at most one row of the model", e.Window, e.MaxLength)
	}
	if e.Window > 0 && e.Stride >= e.Window-1 {
		c.errorf(at("chunking", "stride"), "stride %d leaves a window of %d tokens nothing of its own; make it less than the window minus its special tokens", e.Stride, e.Window)
	}
	model.Embedding = e
	model.Batching = Batching{
		Enabled:       m.Batching.Enabled,
		MaxBatchSize:  m.Batching.MaxBatchSize,
		MaxQueueDelay: c.duration(at("batching", "max_queue_delay"), m.Batching.MaxQueueDelay, false, maxQueueDelay),
		MaxQueueSize:  m.Batching.MaxQueueSize,
	}
}
