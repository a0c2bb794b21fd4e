package daemon

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/api"
	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/schema"
)

// state is one configuration generation: the config, the models it
// serves and the API view of them. Requests hold a reference while they
// run, so a replaced state is closed only after its last request.
type state struct {
	cfg    *schema.Config
	api    *api.State
	models map[string]*loadedModel
	refs   atomic.Int64
}

// loadedModel is an open model and the metric set holding its series.
type loadedModel struct {
	spec  schema.Model
	model *engine.TensorModel
	set   *metrics.Set
}

func (m *loadedModel) close() {
	m.model.Close()
	metrics.UnregisterSet(m.set, true)
}

// modelOptions translates the config's model into engine options.
func modelOptions(cfg *schema.Config, m schema.Model, set *metrics.Set) engine.TensorModelOptions {
	return engine.TensorModelOptions{
		Name:           m.Name,
		Path:           m.Path,
		Instances:      m.Instances,
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

// buildState opens every model of cfg, reusing those of old whose
// settings did not change. On error it closes what it opened and old is
// untouched.
func buildState(rt *engine.Runtime, cfg *schema.Config, old *state, generation uint64) (*state, error) {
	st := &state{cfg: cfg, models: map[string]*loadedModel{}}
	var opened []*loadedModel
	for _, name := range cfg.ModelNames() {
		spec := cfg.Models[name]
		if old != nil {
			if prev := old.models[name]; prev != nil && sameModel(prev.spec, spec, old.cfg, cfg) {
				st.models[name] = prev
				continue
			}
		}
		set := metrics.NewSet()
		m, err := engine.LoadTensorModel(rt, modelOptions(cfg, spec, set))
		if err != nil {
			for _, o := range opened {
				o.close()
			}
			return nil, fmt.Errorf("models.%s: %w", name, err)
		}
		lm := &loadedModel{spec: spec, model: m, set: set}
		metrics.RegisterSet(set)
		opened = append(opened, lm)
		st.models[name] = lm
	}
	st.api = &api.State{
		Generation:     generation,
		Models:         map[string]*engine.TensorModel{},
		RequestTimeout: cfg.Server.RequestTimeout,
		AccessLog:      cfg.Logging.AccessLog,
	}
	if cfg.Metrics.Enabled {
		st.api.MetricsPath = cfg.Metrics.Path
	}
	for name, lm := range st.models {
		st.api.Models[name] = lm.model
	}
	return st, nil
}

func sameModel(a, b schema.Model, ca, cb *schema.Config) bool {
	return a == b && ca.Runtime.InterOpThreads == cb.Runtime.InterOpThreads
}

// closeUnused closes the models of old that next does not serve. It waits
// for old's in-flight requests first.
func closeUnused(old, next *state) {
	for old.refs.Load() > 0 {
		time.Sleep(2 * time.Millisecond)
	}
	for name, lm := range old.models {
		if next == nil || next.models[name] != lm {
			lm.close()
		}
	}
}
