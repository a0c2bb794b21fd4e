// Package generate runs causal language models (decoders) exported to ONNX
// by Hugging Face Optimum or ONNX Runtime GenAI: a prompt in, text out,
// token by token with a key/value cache, sampled and stopped as requested.
//
// Every model has one scheduler lane per ONNX Runtime session. A lane runs
// continuous batching: each decode step feeds all of its active sequences
// in one batch, their caches left-padded to a common length; a new
// sequence's prompt is fed on its own in chunks between decode steps (at
// most prefill_chunk tokens per step for all prompts), and it joins the
// batch once its prompt is in; a finished one leaves. A
// seeded sequence is decoded on its own beside the batch, so that its
// seed reproduces its text whatever else runs.
package generate

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/tokenizer"
)

// Options configures Load.
type Options struct {
	// Name is the model's name in metrics and errors.
	Name string
	// Dir is the model folder: an Optimum export (config.json and
	// model.onnx or decoder_model_merged.onnx) or a GenAI export
	// (genai_config.json), with tokenizer.json and, if present,
	// tokenizer_config.json; ModelFiles lists what is read.
	Dir string
	// Instances is the number of ONNX Runtime sessions, each with its own
	// scheduler lane. Default 1.
	Instances int
	// MaxInstances is the most lanes AddInstance may reach; below
	// Instances it is Instances.
	MaxInstances int
	// IntraOpThreads and InterOpThreads size each session's thread pools.
	// Default 1.
	IntraOpThreads, InterOpThreads int
	// MaxSequences bounds the sequences being generated at once across all
	// lanes. Default 8.
	MaxSequences int
	// MaxQueue bounds the generations waiting for a sequence slot; one more
	// fails with a *engine.LimitError whose Setting is "max_queue".
	// Default 64; negative lets none wait.
	MaxQueue int
	// ContextLength overrides the model's context length from its config;
	// 0 keeps it.
	ContextLength int
	// Truncate is what to do with a prompt that does not fit the context:
	// "error" (default) refuses it, "left" drops its oldest tokens.
	Truncate string
	// ChatTemplate replaces tokenizer_config.json's chat_template.
	ChatTemplate string
	// PrefillChunk is the most prompt tokens a lane feeds between two
	// decode steps, shared by the prompts it is reading: a long prompt
	// goes in chunks, each followed by a decode step of the running
	// sequences, so it delays their next token by at most one chunk. It
	// also bounds a prefill's logits to PrefillChunk × vocabulary floats.
	// Default 512. (A model that cannot be batched reads each prompt
	// whole.)
	PrefillChunk int
	// Metrics receives the model's series; nil keeps them unexported.
	Metrics *metrics.Set
	// Clock times the tokens and generations the model's service time is
	// measured from; nil is time.Now. Tests give a fake one, so that the
	// admission that follows from the measurements is deterministic.
	Clock func() time.Time
}

// Model is a loaded decoder. It is safe for concurrent use.
type Model struct {
	opts    Options
	cfg     *modelConfig
	io      *ioSpec
	tok     *tokenizer.Tokenizer
	chat    *chatConfig
	context int
	vocab   int // the model's vocabulary: logits' last dimension
	eos     map[int]bool

	lanes    []*lane // guarded by pool.mu once loaded
	sessions []*ort.DynamicAdvancedSession
	pool     lanePool

	slots    chan struct{} // one per sequence allowed to run
	mu       sync.Mutex
	waiting  int
	closed   bool
	running  sync.WaitGroup // Generate calls in progress
	closeOne sync.Once

	met modelMetrics
	// token is the time between two tokens of a sequence and whole the
	// time of a generation that ran to its end, from its slot on: what
	// deadline-aware admission estimates from.
	token, whole engine.ServiceTime
	// prefillChunk is Options.PrefillChunk, a field of its own so that
	// tests can prefill the tiny test models' short prompts in several
	// chunks.
	prefillChunk int
	// beforeStep, nil outside tests, runs in the lane before each step. It
	// stays because nothing else can hold the decode loop: a lane runs
	// independently of its callers (a blocked emit does not slow it), so
	// without it a test cannot make sequences wait for a slot, or join a
	// batch at a known step, without racing the loop.
	beforeStep func()
	// onEvent, nil outside tests, is told of each prefill chunk and
	// decode step as the lane runs it, so a test can assert on their
	// order rather than on the clock.
	onEvent func(Event)
	seqs    atomic.Int64 // sequences so far, for their Event ids
}

// Event is one run of the model in a lane, as onEvent learns of it: Kind
// "prefill" fed Tokens prompt tokens of sequence Seq (in one run with the
// whole prompts of Batch, if it is set; one event per sequence); "decode"
// fed one token to each of the Tokens sequences in Batch.
type Event struct {
	Kind   string
	Seq    int
	Tokens int
	Batch  []int
}

func (m *Model) event(e Event) {
	if m.onEvent != nil {
		m.onEvent(e)
	}
}

// observeBatch records the size of one decode step.
func (m *Model) observeBatch(n int) {
	if m.met.batch != nil {
		m.met.batch.Update(float64(n))
	}
}

// ioSpec maps the decoder's tensors, found in the ONNX file's I/O list.
type ioSpec struct {
	inputNames, outputNames []string
	ids, mask, pos          int // input indices; pos -1 if absent
	useCacheBranch          int // input index or -1
	idsType, maskType       ort.TensorElementDataType
	posType                 ort.TensorElementDataType
	past                    []int // input indices, by layer: key, value (or packed)
	present                 []int // output indices in the same order
	logits                  int
	packed                  bool
	pastShape               []int64                   // declared shape of a past input; -1 dynamic
	logitsShape             []int64                   // declared shape of the logits
	cacheType, logitsType   ort.TensorElementDataType // float32 or float16
	batchAxis, seqAxis      int
	batchable               bool // outputs follow the batch; left padding is safe
}

// Load opens the model in opts.Dir.
func Load(rt *engine.Runtime, opts Options) (*Model, error) {
	if rt == nil {
		return nil, errors.New("ONNX Runtime is not initialised")
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(opts.Dir)
	}
	opts.Instances = max(opts.Instances, 1)
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.MaxSequences <= 0 {
		opts.MaxSequences = 8
	}
	switch {
	case opts.MaxQueue == 0:
		opts.MaxQueue = 64
	case opts.MaxQueue < 0:
		opts.MaxQueue = 0
	}
	switch opts.Truncate {
	case "":
		opts.Truncate = "error"
	case "error", "left":
	default:
		return nil, fmt.Errorf("model %q: truncate %q is not one of error, left", opts.Name, opts.Truncate)
	}
	folder, err := resolve(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q: %w", opts.Name, err)
	}
	cfg, path := folder.cfg, folder.model
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q from %q: %w", opts.Name, path, err)
	}
	spec, vocab, err := bindIO(cfg, ins, outs)
	if err != nil {
		return nil, fmt.Errorf("model %q (%s): %w", opts.Name, path, err)
	}
	m := &Model{opts: opts, cfg: cfg, io: spec, vocab: vocab, eos: map[int]bool{}, prefillChunk: opts.PrefillChunk}
	if m.prefillChunk <= 0 {
		m.prefillChunk = defaultPrefillChunk
	}
	m.pool.path = path
	for _, id := range cfg.eos {
		m.eos[id] = true
	}
	m.context = cfg.contextLength
	if opts.ContextLength > 0 {
		m.context = opts.ContextLength
	}
	if m.context <= 0 {
		return nil, fmt.Errorf("model %q: the config gives no context length; set context_length", opts.Name)
	}
	if m.tok, err = tokenizer.Load(folder.tokenizer); err != nil {
		return nil, fmt.Errorf("model %q: %w", opts.Name, err)
	}
	if m.chat, err = loadChatConfig(folder.tokenizerConfig, opts.ChatTemplate); err != nil {
		return nil, fmt.Errorf("model %q: %w", opts.Name, err)
	}
	if len(m.eos) == 0 && m.chat.eosToken != "" {
		if id, ok := m.tok.TokenToID(m.chat.eosToken); ok {
			m.eos[id] = true
		}
	}

	so, err := engine.NewSessionOptions(opts.IntraOpThreads, opts.InterOpThreads)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	for range opts.Instances {
		s, err := ort.NewDynamicAdvancedSession(path, spec.inputNames, spec.outputNames, so)
		if err != nil {
			m.destroySessions()
			return nil, fmt.Errorf("cannot open a session for model %q: %w", opts.Name, err)
		}
		m.sessions = append(m.sessions, s)
	}
	m.slots = make(chan struct{}, opts.MaxSequences)
	m.met = newModelMetrics(opts.Metrics, opts.Name, m)
	for _, s := range m.sessions {
		l := newLane(m, s)
		m.lanes = append(m.lanes, l)
		go l.run()
	}
	return m, nil
}

// layerPattern turns a name pattern with %d into a regexp capturing the
// layer number.
func layerPattern(p string) *regexp.Regexp {
	i := regexp.MustCompile(`%d`)
	parts := i.Split(p, -1)
	for j := range parts {
		parts[j] = regexp.QuoteMeta(parts[j])
	}
	return regexp.MustCompile("^" + parts[0] + `(\d+)` + parts[1] + "$")
}

// bindIO finds the decoder's tensors among the ONNX file's inputs and
// outputs and checks their types. It returns the model vocabulary size.
func bindIO(c *modelConfig, ins, outs []ort.InputOutputInfo) (*ioSpec, int, error) {
	s := &ioSpec{ids: -1, mask: -1, pos: -1, useCacheBranch: -1, logits: -1}
	for _, in := range ins {
		s.inputNames = append(s.inputNames, in.Name)
	}
	for _, out := range outs {
		s.outputNames = append(s.outputNames, out.Name)
	}
	find := func(infos []ort.InputOutputInfo, name string) int {
		return slices.IndexFunc(infos, func(i ort.InputOutputInfo) bool { return i.Name == name })
	}
	intType := func(i int) (ort.TensorElementDataType, error) {
		switch dt := ins[i].DataType; dt {
		case ort.TensorElementDataTypeInt32, ort.TensorElementDataTypeInt64:
			return dt, nil
		default:
			return 0, fmt.Errorf("input %q has element type %s; want int32 or int64", ins[i].Name, dt)
		}
	}
	var err error
	if s.ids = find(ins, c.inputIDs); s.ids < 0 {
		return nil, 0, fmt.Errorf("the model has no input %q", c.inputIDs)
	}
	if s.idsType, err = intType(s.ids); err != nil {
		return nil, 0, err
	}
	if s.mask = find(ins, c.attentionMask); s.mask < 0 {
		return nil, 0, fmt.Errorf("the model has no input %q", c.attentionMask)
	}
	if s.maskType, err = intType(s.mask); err != nil {
		return nil, 0, err
	}
	if s.pos = find(ins, c.positionIDs); s.pos >= 0 {
		if s.posType, err = intType(s.pos); err != nil {
			return nil, 0, err
		}
	}
	if i := find(ins, "use_cache_branch"); i >= 0 {
		if ins[i].DataType != ort.TensorElementDataTypeBool {
			return nil, 0, fmt.Errorf("input use_cache_branch has element type %s; want bool", ins[i].DataType)
		}
		s.useCacheBranch = i
	}
	if s.logits = find(outs, c.logits); s.logits < 0 {
		return nil, 0, fmt.Errorf("the model has no output %q", c.logits)
	}
	if s.logitsType = outs[s.logits].DataType; !floatType(s.logitsType) {
		return nil, 0, fmt.Errorf("output %q has element type %s; only float32 and float16 logits are supported", c.logits, outs[s.logits].DataType)
	}
	ld := outs[s.logits].Dimensions
	s.logitsShape = slices.Clone([]int64(ld))
	if len(ld) != 2 && len(ld) != 3 {
		return nil, 0, fmt.Errorf("output %q has %d dimensions; want [batch, seq, vocab]", c.logits, len(ld))
	}
	vocab := int(ld[len(ld)-1])
	if vocab <= 0 {
		vocab = c.vocabSize
	}
	if vocab <= 0 {
		return nil, 0, fmt.Errorf("neither output %q nor the config gives the vocabulary size", c.logits)
	}

	// Past inputs: packed [2, batch, heads, seq, head] or split key and
	// value [batch, heads, seq, head], numbered by layer.
	type named struct{ pattern, kind string }
	var pastPats, presentPats []named
	if c.pastPacked != "" {
		s.packed = true
		pastPats = []named{{c.pastPacked, "kv"}}
		presentPats = []named{{c.presentPacked, "kv"}}
	} else {
		pastPats = []named{{c.pastKey, "key"}, {c.pastValue, "value"}}
		presentPats = []named{{c.presentKey, "key"}, {c.presentValue, "value"}}
	}
	layers := func(infos []ort.InputOutputInfo, pats []named) (map[[2]int]int, int, error) {
		found := map[[2]int]int{}
		n := 0
		for k, p := range pats {
			re := layerPattern(p.pattern)
			for i, info := range infos {
				mm := re.FindStringSubmatch(info.Name)
				if mm == nil {
					continue
				}
				l, err := strconv.Atoi(mm[1])
				if err != nil || l > 1<<16 {
					return nil, 0, fmt.Errorf("tensor %q: bad layer number", info.Name)
				}
				found[[2]int{l, k}] = i
				n = max(n, l+1)
			}
		}
		return found, n, nil
	}
	pastIdx, nLayers, err := layers(ins, pastPats)
	if err != nil {
		return nil, 0, err
	}
	presentIdx, nPresent, err := layers(outs, presentPats)
	if err != nil {
		return nil, 0, err
	}
	if nLayers == 0 {
		return nil, 0, fmt.Errorf("the model has no past inputs named like %q; it was exported without a KV cache (export with --task text-generation-with-past)", pastPats[0].pattern)
	}
	if nPresent != nLayers {
		return nil, 0, fmt.Errorf("the model has %d past layers but %d present layers", nLayers, nPresent)
	}
	for l := range nLayers {
		for k := range pastPats {
			i, ok := pastIdx[[2]int{l, k}]
			if !ok {
				return nil, 0, fmt.Errorf("the model has no input %q", fmt.Sprintf(pastPats[k].pattern, l))
			}
			o, ok := presentIdx[[2]int{l, k}]
			if !ok {
				return nil, 0, fmt.Errorf("the model has no output %q", fmt.Sprintf(presentPats[k].pattern, l))
			}
			if s.cacheType == 0 {
				s.cacheType = ins[i].DataType
			}
			if !floatType(ins[i].DataType) || ins[i].DataType != s.cacheType || outs[o].DataType != s.cacheType {
				return nil, 0, fmt.Errorf("past %q has element type %s and present %q %s; the cache must be float32 or float16 throughout", ins[i].Name, ins[i].DataType, outs[o].Name, outs[o].DataType)
			}
			s.past = append(s.past, i)
			s.present = append(s.present, o)
		}
	}
	shape := slices.Clone([]int64(ins[s.past[0]].Dimensions))
	if s.packed {
		if len(shape) != 5 {
			return nil, 0, fmt.Errorf("packed past %q has shape %v; want [2, batch, heads, seq, head_size]", ins[s.past[0]].Name, shape)
		}
		s.batchAxis, s.seqAxis = 1, 3
		shape[0] = 2
	} else {
		if len(shape) != 4 {
			return nil, 0, fmt.Errorf("past %q has shape %v; want [batch, heads, seq, head_size]", ins[s.past[0]].Name, shape)
		}
		s.batchAxis, s.seqAxis = 0, 2
	}
	// Heads and head size come from the ONNX shape, else from the config.
	headsAxis := s.batchAxis + 1
	if shape[headsAxis] < 0 {
		shape[headsAxis] = int64(c.numKVHeads)
	}
	if shape[len(shape)-1] < 0 {
		shape[len(shape)-1] = int64(c.headSize)
	}
	if shape[headsAxis] <= 0 || shape[len(shape)-1] <= 0 {
		return nil, 0, fmt.Errorf("past %q has dynamic heads or head size and the config does not give them", ins[s.past[0]].Name)
	}
	s.pastShape = shape
	// Left padding is only safe if positions are given explicitly and
	// the outputs follow the batch size rather than being fixed.
	s.batchable = s.pos >= 0 && ld[0] < 0 && outs[s.present[0]].Dimensions[s.batchAxis] < 0
	if !s.batchable && (s.cacheType != ort.TensorElementDataTypeFloat || s.logitsType != ort.TensorElementDataTypeFloat) {
		// Float16 outputs are allocated by the lane, which needs their
		// shapes before the run: a batchable model's.
		return nil, 0, fmt.Errorf("a float16 cache or logits needs position_ids and outputs with a dynamic batch dimension; this model has neither, so export it with float32 I/O")
	}
	return s, vocab, nil
}

// defaultPrefillChunk bounds the logits of a prefill step: 512 positions
// of a 150k vocabulary are 300 MB of float32.
const defaultPrefillChunk = 512

// ContextLength is the most tokens, prompt and completion, a sequence holds.
func (m *Model) ContextLength() int { return m.context }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// Close stops taking generations, waits for the running ones to finish and
// releases the sessions.
func (m *Model) Close() {
	m.closeOne.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		m.running.Wait()
		m.pool.close()
		for _, l := range m.allLanes() {
			l.stop()
		}
		m.destroySessions()
	})
}

func (m *Model) destroySessions() {
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	for _, s := range m.sessions {
		s.Destroy()
	}
	m.sessions = nil
}

// modelMetrics are the model's series; all nil without a metrics set.
type modelMetrics struct {
	generated, prompt *metrics.Counter
	refused           *metrics.Counter // by deadline-aware admission
	ttft, itl, batch  *metrics.PrometheusHistogram
	queueWait         *metrics.PrometheusHistogram // waiting for a sequence slot
}

// tokenLatencyBuckets suit time to first token and inter-token latency.
var tokenLatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func newModelMetrics(set *metrics.Set, name string, m *Model) modelMetrics {
	if set == nil {
		return modelMetrics{}
	}
	label := `{model=` + strconv.Quote(name) + `}`
	set.NewGauge("aiassist_sequences_active"+label, func() float64 { return float64(len(m.slots)) })
	set.NewGauge("aiassist_generation_queue_depth"+label, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return float64(m.waiting)
	})
	return modelMetrics{
		generated: set.NewCounter("aiassist_generated_tokens_total" + label),
		prompt:    set.NewCounter("aiassist_prompt_tokens_total" + label),
		refused:   set.NewCounter(`aiassist_model_admission_refused_total{model=` + strconv.Quote(name) + `,reason="deadline"}`),
		ttft:      set.NewPrometheusHistogramExt("aiassist_time_to_first_token_seconds"+label, tokenLatencyBuckets),
		itl:       set.NewPrometheusHistogramExt("aiassist_inter_token_latency_seconds"+label, tokenLatencyBuckets),
		batch:     set.NewPrometheusHistogramExt("aiassist_generation_batch_size"+label, []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}),
		queueWait: set.NewPrometheusHistogramExt("aiassist_model_queue_wait_seconds"+label, tokenLatencyBuckets),
	}
}

// observe is a nil-safe histogram update.
func observe(h *metrics.PrometheusHistogram, d time.Duration) {
	if h != nil {
		h.Update(d.Seconds())
	}
}
