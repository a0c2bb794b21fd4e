package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiassist/aiassist/engine/batch"
	"github.com/aiassist/aiassist/engine/internal/onnxfile"
)

// IOInfo describes a model input or output as the model declares it.
// A dimension of -1 is dynamic.
type IOInfo struct {
	Name     string
	DataType DataType
	Shape    []int64
}

// BatchOptions configures dynamic batching of a tensor model.
type BatchOptions struct {
	Enabled       bool
	MaxBatchSize  int
	MaxQueueDelay time.Duration
	MaxQueueSize  int
}

// TensorModelOptions configures LoadTensorModel.
type TensorModelOptions struct {
	Name           string
	Path           string
	Instances      int
	IntraOpThreads int
	InterOpThreads int
	// MaxInstances is the most instances AddInstance may reach; below
	// Instances it is Instances.
	MaxInstances int
	Batching     BatchOptions
	// Metrics receives the model's series; nil keeps them unexported.
	Metrics *metrics.Set
	// Clock times the runs the model's service time is measured from;
	// nil is time.Now. Tests give a fake one, so that the admission that
	// follows from the measurements is deterministic.
	Clock func() time.Time
}

// TensorModel is an ONNX graph served with KServe-style tensors. Requests
// go through a bounded queue; with batching on, compatible requests are
// concatenated along dimension 0 and run as one.
type TensorModel struct {
	opts      TensorModelOptions
	inputs    []IOInfo
	outputs   []IOInfo
	batched   bool
	instances []*Session // guarded by pool.mu once loaded
	free      chan *Session
	pool      tensorPool
	queue     *batch.Queue[*request, []Tensor]
	// service is the run time of a batch, which admission estimates from.
	service    ServiceTime
	batchSize  *metrics.PrometheusHistogram
	inferTime  *metrics.PrometheusHistogram
	queueWait  *metrics.PrometheusHistogram // from queueing to the run's start
	terminated *metrics.Counter             // runs ONNX Runtime was told to stop
	refused    *metrics.Counter             // requests refused by deadline-aware admission
}

// Stats are what Infer tells about one request's way through the queue;
// WithStats asks for them.
type Stats struct {
	// QueueWait is the time from queueing to the start of the run.
	QueueWait time.Duration
}

type statsKey struct{}

// WithStats returns a context under which Infer fills in the returned
// Stats before it returns.
func WithStats(ctx context.Context) (context.Context, *Stats) {
	st := &Stats{}
	return context.WithValue(ctx, statsKey{}, st), st
}

type request struct {
	inputs []Tensor // in model input order
	rows   int64
	ctx    context.Context
	queued time.Time // when it entered the queue
}

// batchBuckets are powers of two; batch sizes are counts of rows.
var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// inferenceBuckets suit one session run, in seconds.
var inferenceBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// CheckModelFile checks, without ONNX Runtime, the files LoadTensorModel
// reads: path is a readable, non-empty regular file that parses as an ONNX
// model, and the external data files its tensors name (model.onnx.data)
// are readable too. The error names the file at fault.
func CheckModelFile(path string) error {
	_, err := onnxfile.Files(path)
	return err
}

// TensorModelFiles returns the files LoadTensorModel reads for the model at
// path: the ONNX file and the external data files it names, each checked
// as CheckModelFile does. Its list is what identifies the model.
func TensorModelFiles(path string) ([]string, error) {
	return onnxfile.Files(path)
}

// LoadTensorModel opens opts.Instances sessions of the model at opts.Path.
func LoadTensorModel(rt *Runtime, opts TensorModelOptions) (*TensorModel, error) {
	if rt == nil {
		return nil, errors.New("ONNX Runtime is not initialised")
	}
	start := time.Now()
	opts.Instances = max(opts.Instances, 1)
	// The same check as CheckModelFile, so that check and load agree, and
	// a missing or empty file gets a clearer message than ONNX Runtime's.
	if err := CheckModelFile(opts.Path); err != nil {
		return nil, fmt.Errorf("cannot load model %q: %w", opts.Name, err)
	}
	ins, outs, err := ort.GetInputOutputInfo(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q from %q: %w", opts.Name, opts.Path, err)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	m := &TensorModel{opts: opts}
	if m.inputs, err = describe(ins); err != nil {
		return nil, fmt.Errorf("model %q input: %w", opts.Name, err)
	}
	if m.outputs, err = describe(outs); err != nil {
		return nil, fmt.Errorf("model %q output: %w", opts.Name, err)
	}
	m.batched = opts.Batching.Enabled && opts.Batching.MaxBatchSize > 1 && dynamicFirstDim(m.inputs) && dynamicFirstDim(m.outputs)
	if err := m.checkHalfOutputs(); err != nil {
		return nil, fmt.Errorf("model %q: %w", opts.Name, err)
	}

	so, err := NewSessionOptions(opts.IntraOpThreads, opts.InterOpThreads)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	m.opts.MaxInstances = max(opts.MaxInstances, opts.Instances)
	m.free = make(chan *Session, m.opts.MaxInstances)
	for range opts.Instances {
		s, err := ort.NewDynamicAdvancedSession(opts.Path, names(m.inputs), names(m.outputs), so)
		if err != nil {
			m.destroySessions()
			return nil, fmt.Errorf("cannot open a session for model %q: %w", opts.Name, err)
		}
		in := NewSession(s)
		m.instances = append(m.instances, in)
		m.free <- in
	}
	qo := batch.Options{MaxBatchSize: 1, MaxQueueSize: opts.Batching.MaxQueueSize}
	if m.batched {
		qo.MaxBatchSize = opts.Batching.MaxBatchSize
		qo.MaxQueueDelay = opts.Batching.MaxQueueDelay
	}
	if qo.MaxQueueSize < 1 {
		qo.MaxQueueSize = 1024
	}
	m.opts.Batching.MaxQueueSize = qo.MaxQueueSize // the limit a LimitError reports
	m.queue = batch.New(qo, opts.Instances, m.runBatch)
	loaded := time.Since(start).Seconds()
	if set := opts.Metrics; set != nil {
		label := `{model=` + strconv.Quote(opts.Name) + `}`
		m.batchSize = set.NewPrometheusHistogramExt("aiassist_batch_size"+label, batchBuckets)
		m.inferTime = set.NewPrometheusHistogramExt("aiassist_inference_duration_seconds"+label, inferenceBuckets)
		m.queueWait = set.NewPrometheusHistogramExt("aiassist_model_queue_wait_seconds"+label, inferenceBuckets)
		set.NewGauge("aiassist_queue_depth"+label, func() float64 { return float64(m.queue.Len()) })
		set.NewGauge("aiassist_model_instances"+label, func() float64 { return float64(m.Instances()) })
		set.NewGauge("aiassist_model_load_seconds"+label, func() float64 { return loaded })
		m.terminated = set.NewCounter("aiassist_model_runs_terminated_total" + label)
		m.refused = set.NewCounter(`aiassist_model_admission_refused_total{model=` + strconv.Quote(opts.Name) + `,reason="deadline"}`)
	}
	return m, nil
}

func describe(infos []ort.InputOutputInfo) ([]IOInfo, error) {
	out := make([]IOInfo, 0, len(infos))
	for _, in := range infos {
		if in.OrtValueType != ort.ONNXTypeTensor {
			return nil, fmt.Errorf("%q is a %s; only tensors are supported", in.Name, in.OrtValueType)
		}
		dt, ok := dataTypeFromORT(in.DataType)
		if !ok {
			return nil, fmt.Errorf("%q has element type %s, which is not supported", in.Name, in.DataType)
		}
		out = append(out, IOInfo{Name: in.Name, DataType: dt, Shape: slices.Clone([]int64(in.Dimensions))})
	}
	return out, nil
}

func dynamicFirstDim(infos []IOInfo) bool {
	for _, in := range infos {
		if len(in.Shape) == 0 || in.Shape[0] >= 0 {
			return false
		}
	}
	return true
}

func names(infos []IOInfo) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Name
	}
	return out
}

// Name is the configured model name.
func (m *TensorModel) Name() string { return m.opts.Name }

// Inputs describes the model's inputs.
func (m *TensorModel) Inputs() []IOInfo { return m.inputs }

// Outputs describes the model's outputs.
func (m *TensorModel) Outputs() []IOInfo { return m.outputs }

// Batched reports whether requests are batched dynamically.
func (m *TensorModel) Batched() bool { return m.batched }

// Infer runs the model on inputs and returns the outputs named in outputs
// (all outputs if none are named), at most until ctx ends: a request whose
// ctx ends while queued is never run, and a run is stopped once the ctx of
// every request in its batch has ended. The input tensors' data must not
// be changed until Infer returns. Inputs that do not fit the model give
// errors wrapping ErrInvalidInput; a full queue a *LimitError; a request
// that by the measured run time and the queue ahead would end after ctx's
// deadline an *AdmissionError, at once; a ctx that ends while queued or
// running a *DeadlineError; a closed model ErrClosed.
func (m *TensorModel) Infer(ctx context.Context, inputs []Tensor, outputs []string) ([]Tensor, error) {
	req, key, err := m.prepare(inputs)
	if err != nil {
		return nil, err
	}
	want, err := m.selectOutputs(outputs)
	if err != nil {
		return nil, err
	}
	if err := m.admit(ctx); err != nil {
		return nil, err
	}
	req.ctx, req.queued = ctx, time.Now()
	res, err := m.queue.Submit(ctx, key, int(req.rows), req)
	if err != nil {
		return nil, m.queueError(ctx, err)
	}
	if ctx.Err() != nil {
		// Its batch ran on for others past this request's deadline; a
		// late answer is not one it can use.
		return nil, &DeadlineError{Model: m.opts.Name, Cause: context.Cause(ctx), Ran: true}
	}
	out := make([]Tensor, len(want))
	for i, idx := range want {
		out[i] = res[idx]
	}
	return out, nil
}

// queueError turns the batch queue's errors into the engine's typed ones,
// which name the model and the setting that bounded it.
func (m *TensorModel) queueError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, batch.ErrQueueFull):
		return &LimitError{Model: m.opts.Name, Setting: "batching.max_queue_size", Limit: m.opts.Batching.MaxQueueSize}
	case errors.Is(err, batch.ErrExpired):
		return &DeadlineError{Model: m.opts.Name, Cause: context.Cause(ctx)}
	case errors.Is(err, batch.ErrClosed):
		return fmt.Errorf("model %q: %w", m.opts.Name, ErrClosed)
	case ctx.Err() != nil:
		// The run failed because it was stopped, or for another reason
		// after the deadline: either way the request's time is up.
		return &DeadlineError{Model: m.opts.Name, Cause: context.Cause(ctx), Ran: true}
	}
	return err
}

// admit refuses a request that, by the measured run time of a batch and
// the requests queued ahead of it, would end after ctx's deadline. The
// queue ahead is counted in whole rounds of batches across the instances,
// rounded down, as if every queued request were one row: what a
// running batch still needs is left out. So the estimate leans low, and
// with fewer than MinSamples runs measured nothing is refused.
func (m *TensorModel) admit(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		return nil
	}
	run, ok := m.service.Estimate()
	if !ok {
		return nil
	}
	perRound := m.Instances()
	if m.batched {
		perRound *= m.opts.Batching.MaxBatchSize
	}
	wait := time.Duration(m.queue.Len()/perRound) * run
	err := CheckDeadline(ctx, m.opts.Name, wait, run)
	if err != nil && m.refused != nil {
		m.refused.Inc()
	}
	return err
}

func (m *TensorModel) selectOutputs(requested []string) ([]int, error) {
	if len(requested) == 0 {
		idx := make([]int, len(m.outputs))
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	idx := make([]int, 0, len(requested))
	for _, name := range requested {
		i := slices.IndexFunc(m.outputs, func(o IOInfo) bool { return o.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("%w: model %q has no output %q; it has %s", ErrInvalidInput, m.opts.Name, name, strings.Join(names(m.outputs), ", "))
		}
		idx = append(idx, i)
	}
	return idx, nil
}

// prepare orders and checks the inputs against the model and computes the
// batching key: requests batch together only if every non-batch dimension
// agrees.
func (m *TensorModel) prepare(inputs []Tensor) (*request, string, error) {
	if len(inputs) != len(m.inputs) {
		return nil, "", fmt.Errorf("%w: model %q takes %d inputs (%s), got %d", ErrInvalidInput, m.opts.Name, len(m.inputs), strings.Join(names(m.inputs), ", "), len(inputs))
	}
	req := &request{inputs: make([]Tensor, len(m.inputs)), rows: -1}
	var key strings.Builder
	for i, want := range m.inputs {
		j := slices.IndexFunc(inputs, func(t Tensor) bool { return t.Name == want.Name })
		if j < 0 {
			return nil, "", fmt.Errorf("%w: model %q needs input %q", ErrInvalidInput, m.opts.Name, want.Name)
		}
		t := inputs[j]
		if err := t.Validate(); err != nil {
			return nil, "", fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		if t.DataType != want.DataType {
			return nil, "", fmt.Errorf("%w: input %q must be %s, got %s", ErrInvalidInput, want.Name, want.DataType, t.DataType)
		}
		if len(t.Shape) != len(want.Shape) {
			return nil, "", fmt.Errorf("%w: input %q must have shape %s, got %v", ErrInvalidInput, want.Name, shapeString(want.Shape), t.Shape)
		}
		for d, n := range want.Shape {
			if n >= 0 && t.Shape[d] != n {
				return nil, "", fmt.Errorf("%w: input %q must have shape %s, got %v", ErrInvalidInput, want.Name, shapeString(want.Shape), t.Shape)
			}
		}
		if len(t.Data) == 0 {
			return nil, "", fmt.Errorf("%w: input %q is empty", ErrInvalidInput, want.Name)
		}
		if m.batched {
			if req.rows >= 0 && t.Shape[0] != req.rows {
				return nil, "", fmt.Errorf("%w: inputs disagree on the batch dimension: %q has %d rows, others %d", ErrInvalidInput, want.Name, t.Shape[0], req.rows)
			}
			req.rows = t.Shape[0]
			for _, d := range t.Shape[1:] {
				key.WriteString(strconv.FormatInt(d, 10))
				key.WriteByte(',')
			}
			key.WriteByte(';')
		}
		req.inputs[i] = t
	}
	if !m.batched {
		req.rows = 1
	} else if req.rows > int64(m.opts.Batching.MaxBatchSize) {
		return nil, "", fmt.Errorf("%w: batch of %d rows exceeds max_batch_size %d of model %q", ErrInvalidInput, req.rows, m.opts.Batching.MaxBatchSize, m.opts.Name)
	}
	return req, key.String(), nil
}

func shapeString(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		if d < 0 {
			parts[i] = "-1"
		} else {
			parts[i] = strconv.FormatInt(d, 10)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// runBatch concatenates the requests along dimension 0, runs one session
// and splits the outputs back. It runs on a queue worker; ctx ends when no
// request of the batch wants the result any more, which stops the run.
func (m *TensorModel) runBatch(ctx context.Context, reqs []*request) ([][]Tensor, error) {
	var total int64
	now := time.Now()
	for _, r := range reqs {
		total += r.rows
		if !r.queued.IsZero() {
			wait := now.Sub(r.queued)
			if m.queueWait != nil {
				m.queueWait.Update(wait.Seconds())
			}
			// The submitter reads it after Submit returns, which the
			// queue orders after this run.
			if st, ok := r.ctx.Value(statsKey{}).(*Stats); ok {
				st.QueueWait = wait
			}
		}
	}
	inputs := make([]ort.Value, len(m.inputs))
	var bufs []*[]byte
	defer func() {
		for _, v := range inputs {
			if v != nil {
				v.Destroy()
			}
		}
		// The run is over and its input tensors are gone: the batch
		// buffers serve the next batch.
		for _, b := range bufs {
			batchBuffers.Put(b)
		}
	}()
	for i, info := range m.inputs {
		var shape []int64
		var data []byte
		if len(reqs) == 1 {
			shape, data = reqs[0].inputs[i].Shape, reqs[0].inputs[i].Data
		} else {
			shape = slices.Clone(reqs[0].inputs[i].Shape)
			shape[0] = total
			size := 0
			for _, r := range reqs {
				size += len(r.inputs[i].Data)
			}
			buf := batchBuffers.Get().(*[]byte)
			bufs = append(bufs, buf)
			data = slices.Grow((*buf)[:0], size)
			for _, r := range reqs {
				data = append(data, r.inputs[i].Data...)
			}
			*buf = data
		}
		v, err := ort.NewCustomDataTensor(ort.NewShape(shape...), data, ortTypes[info.DataType])
		if err != nil {
			return nil, fmt.Errorf("cannot build input %q: %w", info.Name, err)
		}
		inputs[i] = v
	}
	outputs, err := m.outputTensors(total)
	if err != nil {
		return nil, fmt.Errorf("model %q: cannot allocate the outputs: %w", m.opts.Name, err)
	}
	defer func() {
		for _, v := range outputs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	in := <-m.free
	if !slices.ContainsFunc(reqs, func(r *request) bool { return r.ctx.Err() == nil }) {
		// Every request ended while the batch waited for a session.
		// (Asked of each request, as ctx learns of it a moment later.)
		m.free <- in
		return nil, fmt.Errorf("%w: %w", batch.ErrExpired, context.Cause(reqs[0].ctx))
	}
	start := m.opts.Clock()
	stopped, err := in.Run(ctx, inputs, outputs)
	took := m.opts.Clock().Sub(start)
	m.free <- in
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
	if m.inferTime != nil {
		m.inferTime.Update(took.Seconds())
		m.batchSize.Update(float64(total))
	}
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", m.opts.Name, err)
	}
	results := make([][]Tensor, len(reqs))
	for i := range results {
		results[i] = make([]Tensor, len(m.outputs))
	}
	for o, v := range outputs {
		t, err := tensorFromValue(m.outputs[o].Name, v)
		if err != nil {
			return nil, err
		}
		if len(reqs) == 1 {
			results[0][o] = t
			continue
		}
		if len(t.Shape) == 0 || t.Shape[0] != total {
			return nil, fmt.Errorf("model %q: output %q has shape %v, not %d rows; it cannot be batched (set batching.enabled: false)", m.opts.Name, t.Name, t.Shape, total)
		}
		rowBytes := int64(len(t.Data)) / total
		var off int64
		for i, r := range reqs {
			shape := slices.Clone(t.Shape)
			shape[0] = r.rows
			n := r.rows * rowBytes
			results[i][o] = Tensor{Name: t.Name, DataType: t.DataType, Shape: shape, Data: t.Data[off : off+n : off+n]}
			off += n
		}
	}
	return results, nil
}

// batchBuffers hold the inputs of batches of more than one request,
// reused from batch to batch rather than allocated for each.
var batchBuffers = sync.Pool{New: func() any { return new([]byte) }}

// tensorFromValue views an output ONNX Runtime allocated as bytes. The
// typed tensors keep their data in Go memory, which stays valid after the
// ORT value is destroyed.
func tensorFromValue(name string, v ort.Value) (Tensor, error) {
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		return viewTensor(name, FP32, t), nil
	case *ort.Tensor[float64]:
		return viewTensor(name, FP64, t), nil
	case *ort.Tensor[int32]:
		return viewTensor(name, Int32, t), nil
	case *ort.Tensor[int64]:
		return viewTensor(name, Int64, t), nil
	case *ort.Tensor[bool]:
		return viewTensor(name, Bool, t), nil
	case *ort.Tensor[uint8]:
		return viewTensor(name, Uint8, t), nil
	case *ort.Tensor[int8]:
		return viewTensor(name, Int8, t), nil
	case *ort.Tensor[int16]:
		return viewTensor(name, Int16, t), nil
	case *ort.Tensor[uint16]:
		return viewTensor(name, Uint16, t), nil
	case *ort.Tensor[uint32]:
		return viewTensor(name, Uint32, t), nil
	case *ort.Tensor[uint64]:
		return viewTensor(name, Uint64, t), nil
	case *ort.CustomDataTensor: // allocated by outputTensors
		if dt, ok := dataTypeFromORT(ort.TensorElementDataType(t.DataType())); ok {
			return Tensor{Name: name, DataType: dt, Shape: []int64(t.GetShape()), Data: t.GetData()}, nil
		}
	}
	return Tensor{}, fmt.Errorf("output %q has an unsupported type %T", name, v)
}

func viewTensor[T ort.TensorData](name string, dt DataType, t *ort.Tensor[T]) Tensor {
	d := t.GetData()
	var b []byte
	if len(d) > 0 {
		b = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), len(d)*dt.Size())
	}
	return Tensor{Name: name, DataType: dt, Shape: []int64(t.GetShape()), Data: b}
}

// Close stops taking requests, finishes the queued ones and releases the
// sessions.
func (m *TensorModel) Close() {
	m.pool.close()
	m.queue.Close()
	m.destroySessions()
}

func (m *TensorModel) destroySessions() {
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	for _, in := range m.instances {
		in.Destroy()
	}
	m.instances = nil
}
