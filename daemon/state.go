package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/api"
	"github.com/aiassist/aiassist/daemon/cache"
	"github.com/aiassist/aiassist/daemon/gate"
	"github.com/aiassist/aiassist/daemon/limit"
	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/embed"
	"github.com/aiassist/aiassist/engine/generate"
	"github.com/aiassist/aiassist/schema"
)

// state is one configuration generation: the config, the models it
// serves and the API view of them. Requests hold a reference while they
// run, so a replaced state is closed only after its last request.
type state struct {
	cfg    *schema.Config
	api    *api.State
	models map[string]*loadedModel
	// access are the identities of accessFiles(cfg) when loaded.
	access []fileID
	refs   atomic.Int64
}

// loadedModel is an open model, the metric set holding its series, and
// the identity of the file it was loaded from.
type loadedModel struct {
	spec  schema.Model
	model *engine.TensorModel // a tensor model, or nil
	gen   *generate.Model     // a causal-lm model, or nil
	emb   *embed.Model        // an embedding model, or nil
	set   *metrics.Set
	file  fileID
	// loadedAt is when the load began, loadTime how long it took.
	loadedAt time.Time
	loadTime time.Duration
}

// fileID tells whether a model file was replaced at the same path: a
// copy, a rename over it or an in-place write all change one of these.
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

func statFile(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	id := fileID{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := statSys(fi); ok {
		id.dev, id.ino = st.dev, st.ino
	}
	return id, nil
}

// close releases the model's sessions and drops its series. It runs only
// once no state that serves the model has requests in flight.
func (m *loadedModel) close() {
	if m.model != nil {
		m.model.Close()
	}
	if m.gen != nil {
		m.gen.Close()
	}
	if m.emb != nil {
		m.emb.Close()
	}
	metrics.UnregisterSet(m.set, true)
}

// modelOptions translates the config's model into engine options.
func modelOptions(cfg *schema.Config, m schema.Model, set *metrics.Set) engine.TensorModelOptions {
	return engine.TensorModelOptions{
		Name:           m.Name,
		Path:           m.Path,
		Instances:      startInstances(m),
		MaxInstances:   maxInstances,
		IntraOpThreads: m.IntraOpThreads,
		InterOpThreads: cfg.Runtime.InterOpThreads,
		Batching: engine.BatchOptions{
			Enabled:       m.Batching.Enabled,
			MaxBatchSize:  m.Batching.MaxBatchSize,
			MaxQueueDelay: m.Batching.MaxQueueDelay,
			MaxQueueSize:  m.Batching.MaxQueueSize,
		},
		Metrics: set,
	}
}

// buildState opens and warms every model of cfg that old does not serve
// with the same settings from the same file, and reuses the others. On
// error it closes what it opened and old is untouched. The new models'
// metric sets are registered only by publish, so a replaced model's
// series are never exported twice.
func buildState(logger *slog.Logger, rt *engine.Runtime, set *metrics.Set, cfg *schema.Config, old *state, generation uint64) (*state, error) {
	// Before anything reads them, so a file replaced during the load is
	// seen as changed by the next one.
	st := &state{cfg: cfg, models: map[string]*loadedModel{}, access: statFiles(accessFiles(cfg))}
	var opened []*loadedModel
	fail := func(err error) (*state, error) {
		for _, o := range opened {
			o.close()
		}
		return nil, err
	}
	for _, name := range cfg.ModelNames() {
		spec := cfg.Models[name]
		file, err := statModel(spec)
		if err != nil {
			return fail(fmt.Errorf("models.%s.path: cannot open model file: %w", name, err))
		}
		if old != nil {
			if prev := old.models[name]; prev != nil && sameModel(prev, spec, file, old.cfg, cfg) {
				st.models[name] = prev
				continue
			}
		}
		set := metrics.NewSet()
		lm := &loadedModel{spec: spec, set: set, file: file, loadedAt: time.Now()}
		// The quantized form, if the model asks for one (quantize.go).
		load, err := loadSpec(logger, cfg, spec)
		if err != nil {
			return fail(fmt.Errorf("models.%s: %w", name, err))
		}
		if spec.Kind == schema.KindCausalLM {
			lm.gen, err = generate.Load(rt, generateOptions(cfg, load, set))
		} else if spec.Kind == schema.KindEmbedding {
			lm.emb, err = embed.Load(rt, embedOptions(cfg, load, set))
		} else {
			lm.model, err = engine.LoadTensorModel(rt, modelOptions(cfg, load, set))
		}
		if err != nil {
			return fail(fmt.Errorf("models.%s: %w", name, err))
		}
		lm.loadTime = time.Since(lm.loadedAt)
		opened = append(opened, lm)
		st.models[name] = lm
	}
	var oldGate *gate.Gate
	var oldLimits *limit.Limiter
	var oldCache *cache.Cache
	if old != nil {
		oldGate, oldLimits, oldCache = old.api.Gate, old.api.Limits, old.api.Cache
	}
	g, err := buildGate(cfg, oldGate, logger, set)
	if err != nil {
		return fail(err)
	}
	limits, err := buildLimits(cfg, oldLimits, set)
	if err != nil {
		return fail(err)
	}
	prompts, err := buildPrompts(cfg)
	if err != nil {
		return fail(err)
	}
	if err := warmUp(logger, opened, cfg.Server.RequestTimeout); err != nil {
		return fail(err)
	}
	st.api = &api.State{
		Generation:     generation,
		Models:         map[string]*engine.TensorModel{},
		Generators:     map[string]*generate.Model{},
		Embedders:      map[string]*embed.Model{},
		DefaultModel:   defaultModel(cfg),
		Prompts:        prompts,
		RequestTimeout: cfg.Server.RequestTimeout,
		AccessLog:      cfg.Logging.AccessLog,
		NoUI:           !cfg.UI.Enabled,
		Gate:           g,
		Limits:         limits,
	}
	if cfg.Metrics.Enabled {
		st.api.MetricsPath = cfg.Metrics.Path
	}
	for name, m := range cfg.Models {
		if m.RequestTimeout > 0 {
			if st.api.ModelTimeouts == nil {
				st.api.ModelTimeouts = map[string]time.Duration{}
			}
			st.api.ModelTimeouts[name] = m.RequestTimeout
		}
	}
	for name, lm := range st.models {
		if lm.gen != nil {
			st.api.Generators[name] = lm.gen
		} else if lm.emb != nil {
			st.api.Embedders[name] = lm.emb
		} else {
			st.api.Models[name] = lm.model
		}
	}
	buildCache(cfg, st, oldCache, set)
	return st, nil
}

func sameModel(prev *loadedModel, spec schema.Model, file fileID, ca, cb *schema.Config) bool {
	// Whether the model is cached needs no new sessions.
	old := prev.spec
	old.NoCache = spec.NoCache
	return sameSpec(old, spec) && prev.file == file && ca.Runtime.InterOpThreads == cb.Runtime.InterOpThreads
}

// filesChanged reports whether a file st was loaded from — a model's, a
// certificate, a key — has been replaced, removed or rewritten since.
func filesChanged(st *state) bool {
	if !slices.Equal(statFiles(accessFiles(st.cfg)), st.access) {
		return true
	}
	for _, lm := range st.models {
		if id, err := statModel(lm.spec); err != nil || id != lm.file {
			return true
		}
	}
	return false
}

// warmUp runs one inference on each new model, the models in parallel, so
// the first request after a reload does not pay for ONNX Runtime's lazy
// initialisation, and a model that loads but cannot run fails the reload
// instead of the requests. A tensor model is warmed with a zero input of
// batch 1 (or of its fixed first dimension) through its queue, which adds
// no delay as the new queue has seen no larger batch; one with an input
// whose other dimensions are dynamic is not warmed, as no input shape is
// known to be valid. A causal-lm model generates one token from token 0.
func warmUp(logger *slog.Logger, models []*loadedModel, timeout time.Duration) error {
	errs := make([]error, len(models))
	var wg sync.WaitGroup
	for i, lm := range models {
		if lm.gen != nil {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				// Token 0 is in every vocabulary.
				if _, err := lm.gen.GenerateIDs(ctx, []int{0}, generate.Request{MaxTokens: 1}, nil); err != nil {
					errs[i] = fmt.Errorf("models.%s: the warm-up generation of one token failed: %w", lm.spec.Name, err)
				}
			})
			continue
		}
		if lm.emb != nil {
			wg.Go(func() { errs[i] = warmEmbedding(lm.emb, timeout) })
			continue
		}
		inputs, reason := warmInputs(lm.model.Inputs())
		if inputs == nil {
			logger.Info("model not warmed up", "model", lm.spec.Name, "reason", reason)
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if _, err := lm.model.Infer(ctx, inputs, nil); err != nil {
				errs[i] = fmt.Errorf("models.%s: the warm-up inference on a zero input failed: %w", lm.spec.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// maxWarmBytes bounds the zero input of a warm-up; a model whose fixed
// input is larger is not warmed.
const maxWarmBytes = 64 << 20

func warmInputs(infos []engine.IOInfo) ([]engine.Tensor, string) {
	inputs := make([]engine.Tensor, len(infos))
	for i, in := range infos {
		shape := make([]int64, len(in.Shape))
		n := int64(1)
		for d, dim := range in.Shape {
			switch {
			case dim >= 0:
				shape[d] = dim
			case d == 0:
				shape[d] = 1
			default:
				return nil, fmt.Sprintf("input %q has the dynamic dimension %d, so no input shape is known to be valid", in.Name, d)
			}
			n *= shape[d]
		}
		size := n * int64(in.DataType.Size())
		if size > maxWarmBytes {
			return nil, fmt.Sprintf("input %q would take %d bytes", in.Name, size)
		}
		inputs[i] = engine.Tensor{Name: in.Name, DataType: in.DataType, Shape: shape, Data: make([]byte, size)}
	}
	return inputs, ""
}

// publish makes the metric series of next's new models and its keys'
// expiry visible, and hides those of old's models that next does not serve
// and of old's keys. It runs at the swap.
func publish(old, next *state) {
	publishCache(old, next)
	if old != nil {
		metrics.UnregisterSet(old.api.Gate.KeyMetrics(), false)
	}
	metrics.RegisterSet(next.api.Gate.KeyMetrics())
	if old != nil {
		for name, lm := range old.models {
			if next.models[name] != lm {
				metrics.UnregisterSet(lm.set, false)
			}
		}
	}
	for name, lm := range next.models {
		if old == nil || old.models[name] != lm {
			metrics.RegisterSet(lm.set)
		}
	}
}

// discard closes the models of a state that was built but never served.
func discard(next, old *state) {
	for name, lm := range next.models {
		if old == nil || old.models[name] != lm {
			lm.close()
		}
	}
}

// closeUnused closes the models of old that next does not serve. The
// caller has waited for old's requests.
func closeUnused(old, next *state) {
	for name, lm := range old.models {
		if next == nil || next.models[name] != lm {
			lm.close()
		}
	}
}

// waitRefs waits until the state's requests are done or ctx ends, and
// reports whether they are done.
func waitRefs(ctx context.Context, st *state) bool {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for st.refs.Load() > 0 {
		select {
		case <-ctx.Done():
			return st.refs.Load() == 0
		case <-t.C:
		}
	}
	return true
}
