// Package embed runs encoder models exported to ONNX by Hugging Face
// Optimum (model.onnx, tokenizer.json, config.json): text or token ids in,
// one embedding vector per input out.
//
// An input longer than the model's row is split into overlapping windows
// of tokens, each wrapped in the tokenizer's special tokens; every window
// is pooled (the attention-masked mean of last_hidden_state, or its first
// token), and the windows of an input are combined by their mean weighted
// with each window's token count, then L2-normalised if asked. The rows of
// a request run together, and with batching on the rows of concurrent
// requests share runs through the dynamic batcher of the tensor path
// (engine/batch), each run padded to its longest row.
package embed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/batch"
	"github.com/aiassist/aiassist/engine/tokenizer"
)

// Options configures Load.
type Options struct {
	// Name is the model's name in metrics and errors.
	Name string
	// Dir is the model folder; ModelFiles lists what is read.
	Dir string
	// Instances is the number of ONNX Runtime sessions. Default 1.
	Instances int
	// IntraOpThreads and InterOpThreads size each session's thread pools.
	// Default 1.
	IntraOpThreads, InterOpThreads int
	// Pooling is "mean" (default: the mean of the output at the attended
	// positions) or "cls" (the output at the first token). A model whose
	// output is already pooled (two dimensions) is not pooled again.
	Pooling string
	// Normalize scales each embedding to unit length.
	Normalize bool
	// MaxLength is the most tokens of one row, special tokens included.
	// 0 takes tokenizer.json's truncation.max_length, else config.json's
	// max_position_embeddings; more than max_position_embeddings fails.
	MaxLength int
	// Padding is "longest" (default: each run is padded to its longest
	// row) or "tokenizer" (as tokenizer.json's padding says: Fixed n pads
	// every row to n).
	Padding string
	// Chunking splits long inputs into windows; see Chunking.
	Chunking Chunking
	// Matryoshka says the model was trained so that the first n values
	// of an embedding are an embedding too, which lets a request ask for
	// fewer dimensions.
	Matryoshka bool
	// Batching configures the queue. MaxBatchSize bounds the rows of one
	// run whether or not Enabled lets requests share runs. Default 32.
	Batching engine.BatchOptions
	// Metrics receives the model's series; nil keeps them unexported.
	Metrics *metrics.Set
	// Clock times the runs that deadline-aware admission estimates from;
	// nil is time.Now. Tests give a fake one.
	Clock func() time.Time
}

// Chunking says how an input longer than a row is split.
type Chunking struct {
	// Off refuses such an input with a *TooLongError instead; Window
	// and Stride are then ignored.
	Off bool
	// Window is the tokens of one window, special tokens included, at
	// most MaxLength; 0 is MaxLength.
	Window int
	// Stride is the tokens two neighbouring windows share; it must leave
	// each window at least one token of its own. Negative is a quarter of
	// the window.
	Stride int
}

// Input is one input: a text, or token ids of the model's vocabulary
// without special tokens (which are added as for a text).
type Input struct {
	Text  string
	IDs   []int
	IsIDs bool
}

// Request is what Embed computes.
type Request struct {
	Inputs []Input
	// Dimensions, when not 0, cuts each embedding to its first
	// Dimensions values (then normalised, with Normalize); only a
	// Matryoshka model takes it.
	Dimensions int
}

// Result holds one embedding per input, in order.
type Result struct {
	Embeddings [][]float32
	// Chunks is how many windows each input was split into.
	Chunks []int
	// Tokens is the tokens of the inputs, special tokens counted once per
	// input (the tokens the windows share are not counted twice).
	Tokens int
	// QueueWait is the longest time a run of the request waited.
	QueueWait time.Duration
}

// TooLongError is an input longer than one row of a model whose chunking
// is off.
type TooLongError struct {
	Model     string
	Input     int // index of the input in the request
	Tokens    int // its tokens, special tokens included
	MaxLength int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("input %d has %d tokens, more than the %d that model %q takes, and its chunking is off; shorten the input, or set chunking in the model's config",
		e.Input, e.Tokens, e.MaxLength, e.Model)
}

// Unwrap makes errors.Is(err, engine.ErrInvalidInput) hold.
func (e *TooLongError) Unwrap() error { return engine.ErrInvalidInput }

// Model is a loaded encoder. It is safe for concurrent use.
type Model struct {
	opts      Options
	tok       *tokenizer.Tokenizer
	specials  int // special tokens around each window
	vocab     int
	maxLength int
	window    int // tokens of a window, specials included
	stride    int
	padID     int
	pad       *tokenizer.Padding // the file's, with Padding "tokenizer"; else nil
	dims      int                // the embedding's length; 0 until the first run if the model does not say
	dimsMu    sync.Mutex
	inputs    []string // the session's inputs, in order
	types     []ort.TensorElementDataType
	pooled    bool // the output is [batch, hidden], already pooled
	sessions  chan *engine.Session
	all       []*engine.Session
	queue     *batch.Queue[*job, [][]float32]
	// service is the run time of a batch, which admission estimates from.
	service engine.ServiceTime

	batchSize, inferTime, queueWait *metrics.PrometheusHistogram
	inputsTotal, windowsTotal       *metrics.Counter
	refused, terminated             *metrics.Counter
}

// job is some windows of one request, run together.
type job struct {
	rows   [][]int
	ctx    context.Context
	queued time.Time
	wait   time.Duration // set by the runner
}

var (
	batchBuckets     = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}
	inferenceBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)

// Load opens the model in opts.Dir.
func Load(rt *engine.Runtime, opts Options) (*Model, error) {
	if rt == nil {
		return nil, errors.New("ONNX Runtime is not initialised")
	}
	start := time.Now()
	opts.Instances = max(opts.Instances, 1)
	if opts.Batching.MaxBatchSize < 1 {
		opts.Batching.MaxBatchSize = 32
	}
	if opts.Batching.MaxQueueSize < 1 {
		opts.Batching.MaxQueueSize = 1024
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	switch opts.Pooling {
	case "":
		opts.Pooling = "mean"
	case "mean", "cls":
	default:
		return nil, fmt.Errorf("model %q: pooling %q is not mean or cls", opts.Name, opts.Pooling)
	}
	switch opts.Padding {
	case "":
		opts.Padding = "longest"
	case "longest", "tokenizer":
	default:
		return nil, fmt.Errorf("model %q: padding %q is not longest or tokenizer", opts.Name, opts.Padding)
	}
	f, err := resolve(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q: %w", opts.Name, err)
	}
	m := &Model{opts: opts}
	if m.tok, err = tokenizer.Load(f.tokenizer); err != nil {
		return nil, fmt.Errorf("model %q: %w", opts.Name, err)
	}
	m.specials, m.vocab = m.tok.SpecialTokenCount(), m.tok.VocabSize()
	if err := m.limits(f); err != nil {
		return nil, fmt.Errorf("model %q: %w", opts.Name, err)
	}
	ins, outs, err := ort.GetInputOutputInfo(f.model)
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q from %q: %w", opts.Name, f.model, err)
	}
	output, err := m.bind(ins, outs, f.hidden)
	if err != nil {
		return nil, fmt.Errorf("model %q (%s): %w", opts.Name, f.model, err)
	}
	so, err := engine.NewSessionOptions(opts.IntraOpThreads, opts.InterOpThreads)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	m.sessions = make(chan *engine.Session, opts.Instances)
	for range opts.Instances {
		s, err := ort.NewDynamicAdvancedSession(f.model, m.inputs, []string{output}, so)
		if err != nil {
			m.destroy()
			return nil, fmt.Errorf("cannot open a session for model %q: %w", opts.Name, err)
		}
		ss := engine.NewSession(s)
		m.all = append(m.all, ss)
		m.sessions <- ss
	}
	qo := batch.Options{MaxBatchSize: 1, MaxQueueSize: opts.Batching.MaxQueueSize}
	if opts.Batching.Enabled {
		qo.MaxBatchSize, qo.MaxQueueDelay = opts.Batching.MaxBatchSize, opts.Batching.MaxQueueDelay
	}
	m.queue = batch.New(qo, opts.Instances, m.run)
	loaded := time.Since(start).Seconds()
	if set := opts.Metrics; set != nil {
		label := `{model=` + strconv.Quote(opts.Name) + `}`
		m.batchSize = set.NewPrometheusHistogramExt("aiassist_batch_size"+label, batchBuckets)
		m.inferTime = set.NewPrometheusHistogramExt("aiassist_inference_duration_seconds"+label, inferenceBuckets)
		m.queueWait = set.NewPrometheusHistogramExt("aiassist_model_queue_wait_seconds"+label, inferenceBuckets)
		set.NewGauge("aiassist_queue_depth"+label, func() float64 { return float64(m.queue.Len()) })
		set.NewGauge("aiassist_model_instances"+label, func() float64 { return float64(opts.Instances) })
		set.NewGauge("aiassist_model_load_seconds"+label, func() float64 { return loaded })
		m.inputsTotal = set.NewCounter("aiassist_embedding_inputs_total" + label)
		m.windowsTotal = set.NewCounter("aiassist_embedding_windows_total" + label)
		m.terminated = set.NewCounter("aiassist_model_runs_terminated_total" + label)
		m.refused = set.NewCounter(`aiassist_model_admission_refused_total{model=` + strconv.Quote(opts.Name) + `,reason="deadline"}`)
	}
	return m, nil
}

// limits works out the row length, the windows and the padding.
func (m *Model) limits(f *folder) error {
	o := m.opts
	m.maxLength = o.MaxLength
	if m.maxLength == 0 {
		if tr := m.tok.Truncation(); tr != nil {
			m.maxLength = tr.MaxLength
		} else {
			m.maxLength = f.maxPositions
		}
		if f.maxPositions > 0 {
			m.maxLength = min(m.maxLength, f.maxPositions)
		}
	}
	switch {
	case m.maxLength <= 0:
		return errors.New("neither tokenizer.json (truncation.max_length) nor config.json (max_position_embeddings) gives the most tokens of a row; set max_length")
	case f.maxPositions > 0 && m.maxLength > f.maxPositions:
		return fmt.Errorf("max_length %d is more than the model's %d positions (max_position_embeddings in config.json)", m.maxLength, f.maxPositions)
	case m.maxLength <= m.specials:
		return fmt.Errorf("max_length %d leaves no room beside the %d special tokens", m.maxLength, m.specials)
	}
	m.window = o.Chunking.Window
	if m.window == 0 || o.Chunking.Off {
		// Without chunking an input is one row, up to max_length.
		m.window = m.maxLength
	}
	if m.window > m.maxLength {
		return fmt.Errorf("chunking.window %d is more than the %d tokens of a row (max_length)", m.window, m.maxLength)
	}
	m.stride = o.Chunking.Stride
	switch {
	case o.Chunking.Off:
		m.stride = 0
	case m.stride < 0:
		m.stride = m.window / 4
	}
	if content := m.window - m.specials; m.stride >= content {
		return fmt.Errorf("chunking.stride %d must be less than the %d tokens a window of %d holds beside its %d special tokens", m.stride, max(content, 0), m.window, m.specials)
	}
	if p := m.tok.Padding(); p != nil {
		m.padID = p.PadID
		if o.Padding == "tokenizer" {
			m.pad = p
		}
	} else if id, ok := m.tok.TokenToID("[PAD]"); ok {
		m.padID = id
	}
	return nil
}

// bind checks the encoder's inputs and picks its output: sentence_embedding
// if there is one, else last_hidden_state, else the only output.
func (m *Model) bind(ins, outs []ort.InputOutputInfo, hidden int) (string, error) {
	has := map[string]bool{}
	for _, in := range ins {
		switch in.Name {
		case "input_ids", "attention_mask", "token_type_ids":
		default:
			return "", fmt.Errorf("input %q is not one of input_ids, attention_mask, token_type_ids", in.Name)
		}
		if in.DataType != ort.TensorElementDataTypeInt64 && in.DataType != ort.TensorElementDataTypeInt32 {
			return "", fmt.Errorf("input %q has element type %s; want int64 or int32", in.Name, in.DataType)
		}
		if len(in.Dimensions) != 2 {
			return "", fmt.Errorf("input %q has %d dimensions; want [batch, sequence]", in.Name, len(in.Dimensions))
		}
		has[in.Name] = true
		m.inputs = append(m.inputs, in.Name)
		m.types = append(m.types, in.DataType)
	}
	if !has["input_ids"] || !has["attention_mask"] {
		return "", errors.New("the model needs inputs input_ids and attention_mask")
	}
	pick := -1
	for _, want := range []string{"sentence_embedding", "last_hidden_state"} {
		if i := slices.IndexFunc(outs, func(o ort.InputOutputInfo) bool { return o.Name == want }); i >= 0 {
			pick = i
			break
		}
	}
	if pick < 0 {
		if len(outs) != 1 {
			return "", errors.New("the model has neither a sentence_embedding nor a last_hidden_state output, nor only one output")
		}
		pick = 0
	}
	out := outs[pick]
	if out.DataType != ort.TensorElementDataTypeFloat {
		return "", fmt.Errorf("output %q has element type %s; only float32 is supported", out.Name, out.DataType)
	}
	switch len(out.Dimensions) {
	case 2:
		m.pooled = true
	case 3:
	default:
		return "", fmt.Errorf("output %q has %d dimensions; want [batch, sequence, hidden] or [batch, hidden]", out.Name, len(out.Dimensions))
	}
	if d := out.Dimensions[len(out.Dimensions)-1]; d > 0 {
		m.dims = int(d)
	} else if hidden > 0 {
		m.dims = hidden
	}
	return out.Name, nil
}

// Name is the configured model name.
func (m *Model) Name() string { return m.opts.Name }

// Dimensions is the length of the model's embeddings, or 0 if neither the
// model nor its config says and no input has run yet.
func (m *Model) Dimensions() int {
	m.dimsMu.Lock()
	defer m.dimsMu.Unlock()
	return m.dims
}

// Matryoshka reports whether a request may ask for fewer dimensions.
func (m *Model) Matryoshka() bool { return m.opts.Matryoshka }

// MaxLength is the most tokens of one row, special tokens included.
func (m *Model) MaxLength() int { return m.maxLength }

// Window is the tokens of one window, special tokens included.
func (m *Model) Window() int { return m.window }

// Stride is the tokens two neighbouring windows share.
func (m *Model) Stride() int { return m.stride }

// Windows splits ids (without special tokens) into the rows Embed runs:
// each window's ids wrapped in the special tokens, neighbours sharing
// Stride ids, the last ending with ids' end. An input that fits is one
// row.
func (m *Model) Windows(ids []int) [][]int {
	content := m.window - m.specials
	if len(ids) <= content {
		return [][]int{m.tok.AddSpecialTokens(slices.Clone(ids))}
	}
	step := content - m.stride
	var rows [][]int
	for start := 0; ; start += step {
		end := min(start+content, len(ids))
		rows = append(rows, m.tok.AddSpecialTokens(slices.Clone(ids[start:end])))
		if end == len(ids) {
			return rows
		}
	}
}

// Encode returns the ids of text without special tokens.
func (m *Model) Encode(text string) []int { return m.tok.Encode(text, false) }

// Embed computes the embeddings of req's inputs, at most until ctx ends.
// Bad inputs (a token id outside the vocabulary, dimensions the model does
// not take) give errors wrapping engine.ErrInvalidInput; a too-long input
// with chunking off a *TooLongError; a full queue a *engine.LimitError; a
// request that by the measured run time and the queue ahead would end
// after ctx's deadline an *engine.AdmissionError, at once; a ctx that ends
// while queued a *engine.DeadlineError; a closed model engine.ErrClosed.
func (m *Model) Embed(ctx context.Context, req Request) (Result, error) {
	if len(req.Inputs) == 0 {
		return Result{}, fmt.Errorf("%w: a request to model %q needs at least one input", engine.ErrInvalidInput, m.opts.Name)
	}
	if err := m.checkDimensions(req.Dimensions); err != nil {
		return Result{}, err
	}
	res := Result{Chunks: make([]int, len(req.Inputs))}
	var rows [][]int
	owner := []int{} // input of each row
	for i, in := range req.Inputs {
		ids := in.IDs
		if !in.IsIDs {
			ids = m.tok.Encode(in.Text, false)
		} else {
			for j, id := range ids {
				if id < 0 || id >= m.vocab {
					return Result{}, fmt.Errorf("%w: input %d: token %d is id %d, outside the vocabulary of model %q (0 to %d)", engine.ErrInvalidInput, i, j, id, m.opts.Name, m.vocab-1)
				}
			}
		}
		n := len(ids) + m.specials
		res.Tokens += n
		if m.opts.Chunking.Off && n > m.maxLength {
			return Result{}, &TooLongError{Model: m.opts.Name, Input: i, Tokens: n, MaxLength: m.maxLength}
		}
		ws := m.Windows(ids)
		res.Chunks[i] = len(ws)
		for range ws {
			owner = append(owner, i)
		}
		rows = append(rows, ws...)
	}
	if err := m.admit(ctx, len(rows)); err != nil {
		return Result{}, err
	}
	pooled, wait, err := m.runRows(ctx, rows)
	if err != nil {
		return Result{}, err
	}
	res.QueueWait = wait
	dims := len(pooled[0])
	sums := make([][]float64, len(req.Inputs))
	weights := make([]float64, len(req.Inputs))
	for r, vec := range pooled {
		i := owner[r]
		if sums[i] == nil {
			sums[i] = make([]float64, dims)
		}
		w := float64(len(rows[r]))
		for d, x := range vec {
			sums[i][d] += w * float64(x)
		}
		weights[i] += w
	}
	res.Embeddings = make([][]float32, len(req.Inputs))
	for i, s := range sums {
		if req.Dimensions > 0 && req.Dimensions < len(s) {
			s = s[:req.Dimensions]
		}
		res.Embeddings[i] = combine(s, weights[i], m.opts.Normalize)
	}
	if m.inputsTotal != nil {
		m.inputsTotal.Add(len(req.Inputs))
		m.windowsTotal.Add(len(rows))
	}
	return res, nil
}

// combine divides the weighted sum by the weight, and normalises.
func combine(sum []float64, weight float64, normalize bool) []float32 {
	out := make([]float32, len(sum))
	scale := 1 / weight
	if normalize {
		n := 0.0
		for _, x := range sum {
			n += x * x
		}
		// The weight cancels out; a zero vector stays zero.
		scale = 0
		if n > 0 {
			scale = 1 / math.Sqrt(n)
		}
	}
	for d, x := range sum {
		out[d] = float32(x * scale)
	}
	return out
}

func (m *Model) checkDimensions(d int) error {
	full := m.Dimensions()
	switch {
	case d == 0 || d == full && full > 0:
		return nil
	case d < 0:
		return fmt.Errorf("%w: dimensions %d must be positive", engine.ErrInvalidInput, d)
	case !m.opts.Matryoshka:
		return fmt.Errorf("%w: model %q gives embeddings of %d dimensions and does not take fewer (it is not marked matryoshka in the config)", engine.ErrInvalidInput, m.opts.Name, full)
	case full > 0 && d > full:
		return fmt.Errorf("%w: dimensions %d is more than the %d of model %q", engine.ErrInvalidInput, d, full, m.opts.Name)
	}
	return nil
}

// admit refuses a request that, by the measured run time of a batch, the
// jobs queued ahead of it and its own jobs, would end after ctx's
// deadline; as the tensor path does, the estimate leans low (whole rounds
// of jobs across the instances, rounded down), and with fewer than
// engine.MinSamples runs measured nothing is refused.
func (m *Model) admit(ctx context.Context, rows int) error {
	if _, ok := ctx.Deadline(); !ok {
		return nil
	}
	run, ok := m.service.Estimate()
	if !ok {
		return nil
	}
	per := m.opts.Batching.MaxBatchSize
	own := (rows + per - 1) / per
	wait := time.Duration(m.queue.Len()/m.opts.Instances) * run
	err := engine.CheckDeadline(ctx, m.opts.Name, wait, time.Duration((own+m.opts.Instances-1)/m.opts.Instances)*run)
	if err != nil && m.refused != nil {
		m.refused.Inc()
	}
	return err
}

// runRows runs rows through the queue, at most MaxBatchSize to a job, the
// jobs in parallel, and returns each row's pooled output.
func (m *Model) runRows(ctx context.Context, rows [][]int) ([][]float32, time.Duration, error) {
	per := m.opts.Batching.MaxBatchSize
	n := (len(rows) + per - 1) / per
	results := make([][][]float32, n)
	errs := make([]error, n)
	waits := make([]time.Duration, n)
	var wg sync.WaitGroup
	for k := range n {
		j := &job{rows: rows[k*per : min((k+1)*per, len(rows))], ctx: ctx, queued: time.Now()}
		wg.Go(func() {
			results[k], errs[k] = m.queue.Submit(ctx, "", len(j.rows), j)
			waits[k] = j.wait
		})
	}
	wg.Wait()
	var wait time.Duration
	for k, err := range errs {
		if err != nil {
			return nil, 0, m.queueError(ctx, err)
		}
		wait = max(wait, waits[k])
	}
	if ctx.Err() != nil {
		return nil, 0, &engine.DeadlineError{Model: m.opts.Name, Cause: context.Cause(ctx), Ran: true}
	}
	return slices.Concat(results...), wait, nil
}

func (m *Model) queueError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, batch.ErrQueueFull):
		return &engine.LimitError{Model: m.opts.Name, Setting: "batching.max_queue_size", Limit: m.opts.Batching.MaxQueueSize}
	case errors.Is(err, batch.ErrExpired):
		return &engine.DeadlineError{Model: m.opts.Name, Cause: context.Cause(ctx)}
	case errors.Is(err, batch.ErrClosed):
		return fmt.Errorf("model %q: %w", m.opts.Name, engine.ErrClosed)
	case ctx.Err() != nil:
		return &engine.DeadlineError{Model: m.opts.Name, Cause: context.Cause(ctx), Ran: true}
	}
	return err
}

// run is the queue's runner: the rows of all jobs in one session run,
// padded to the longest (or as the tokenizer pads), then pooled. ctx ends
// when no job of the batch is wanted any more, which stops the run.
func (m *Model) run(ctx context.Context, jobs []*job) ([][][]float32, error) {
	now := time.Now()
	var rows [][]int
	for _, j := range jobs {
		j.wait = now.Sub(j.queued)
		if m.queueWait != nil {
			m.queueWait.Update(j.wait.Seconds())
		}
		rows = append(rows, j.rows...)
	}
	longest := 0
	for _, r := range rows {
		longest = max(longest, len(r))
	}
	pad := m.pad
	if pad == nil {
		pad = &tokenizer.Padding{PadID: m.padID}
	}
	width := pad.Length(longest)
	b, w := len(rows), width
	ids, mask := make([]int64, 0, b*w), make([]int64, 0, b*w)
	for _, r := range rows {
		p, msk := pad.Pad(r, width)
		for k := range p {
			ids, mask = append(ids, int64(p[k])), append(mask, int64(msk[k]))
		}
	}
	inputs := make([]ort.Value, len(m.inputs))
	defer func() {
		for _, v := range inputs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	shape := ort.NewShape(int64(b), int64(w))
	for i, name := range m.inputs {
		data := ids
		switch name {
		case "attention_mask":
			data = mask
		case "token_type_ids":
			data = make([]int64, b*w)
		}
		v, err := intTensor(shape, data, m.types[i])
		if err != nil {
			return nil, fmt.Errorf("model %q: cannot build input %q: %w", m.opts.Name, name, err)
		}
		inputs[i] = v
	}
	outputs := []ort.Value{nil}
	s := <-m.sessions
	if !slices.ContainsFunc(jobs, func(j *job) bool { return j.ctx.Err() == nil }) {
		// Every request ended while the batch waited for a session.
		// (Asked of each job, as ctx learns of it a moment later.)
		m.sessions <- s
		return nil, fmt.Errorf("%w: %w", batch.ErrExpired, context.Cause(jobs[0].ctx))
	}
	start := m.opts.Clock()
	stopped, err := s.Run(ctx, inputs, outputs)
	took := m.opts.Clock().Sub(start)
	m.sessions <- s
	if outputs[0] != nil {
		defer outputs[0].Destroy()
	}
	if stopped {
		// A stopped run's time says nothing of how long a run takes.
		if m.terminated != nil {
			m.terminated.Inc()
		}
		return nil, fmt.Errorf("model %q: the run was stopped, as no request of its batch still waited for it: %w", m.opts.Name, err)
	}
	if err == nil {
		m.service.Observe(took)
	}
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", m.opts.Name, err)
	}
	if m.inferTime != nil {
		m.inferTime.Update(took.Seconds())
		m.batchSize.Update(float64(b))
	}
	out, ok := outputs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, fmt.Errorf("model %q: output is %T, not float32", m.opts.Name, outputs[0])
	}
	pooled, err := m.pool(out.GetData(), out.GetShape(), mask, b, w)
	if err != nil {
		return nil, err
	}
	results := make([][][]float32, len(jobs))
	off := 0
	for k, j := range jobs {
		results[k] = pooled[off : off+len(j.rows)]
		off += len(j.rows)
	}
	return results, nil
}

// pool turns the output of a run into one vector per row.
func (m *Model) pool(data []float32, shape ort.Shape, mask []int64, b, w int) ([][]float32, error) {
	if m.pooled {
		if len(shape) != 2 || int(shape[0]) != b {
			return nil, fmt.Errorf("model %q: pooled output has shape %v for %d rows", m.opts.Name, shape, b)
		}
		h := int(shape[1])
		m.noteDims(h)
		out := make([][]float32, b)
		for r := range out {
			out[r] = slices.Clone(data[r*h : (r+1)*h])
		}
		return out, nil
	}
	if len(shape) != 3 || int(shape[0]) != b || int(shape[1]) != w {
		return nil, fmt.Errorf("model %q: output has shape %v for %d rows of %d tokens", m.opts.Name, shape, b, w)
	}
	h := int(shape[2])
	m.noteDims(h)
	out := make([][]float32, b)
	for r := range out {
		vec := make([]float64, h)
		n := 0.0
		for t := range w {
			if mask[r*w+t] == 0 {
				continue
			}
			row := data[(r*w+t)*h : (r*w+t+1)*h]
			for d, x := range row {
				vec[d] += float64(x)
			}
			n++
			if m.opts.Pooling == "cls" {
				// The first attended token is [CLS], wherever padding
				// puts it.
				break
			}
		}
		out[r] = make([]float32, h)
		for d := range vec {
			out[r][d] = float32(vec[d] / max(n, 1))
		}
	}
	return out, nil
}

func (m *Model) noteDims(h int) {
	m.dimsMu.Lock()
	defer m.dimsMu.Unlock()
	if m.dims == 0 {
		m.dims = h
	}
}

func intTensor(shape ort.Shape, data []int64, t ort.TensorElementDataType) (ort.Value, error) {
	if t == ort.TensorElementDataTypeInt64 {
		return ort.NewTensor(shape, data)
	}
	d32 := make([]int32, len(data))
	for i, x := range data {
		d32[i] = int32(x)
	}
	return ort.NewTensor(shape, d32)
}

// Close stops taking requests, finishes the queued ones and releases the
// sessions.
func (m *Model) Close() {
	m.queue.Close()
	m.destroy()
}

func (m *Model) destroy() {
	for _, s := range m.all {
		s.Destroy()
	}
	m.all = nil
}
