package daemon

import (
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/aiassist/aiassist/daemon/scale"
	"github.com/aiassist/aiassist/schema"
)

// maxInstances is the most instances the engine lets a model reach, the
// schema's bound of max_instances: a reload may raise max_instances up to
// it without reopening the model.
const maxInstances = 64

// scaling runs one controller per served model with a scaling block. A
// controller lives as long as its loaded model: a reload that keeps the
// model (sameSpec) hands the controller the new policy and keeps its
// instances, windows and cooldown; one that replaces or drops the model
// stops it.
type scaling struct {
	mu     sync.Mutex
	ctls   map[*loadedModel]*scale.Controller
	budget *scale.Budget
}

// sameSpec reports whether a reload may keep a model loaded with spec a
// for spec b. Two scaling blocks may differ, and so may instances (which a
// scaling block makes unused): the controller applies the new policy to
// the running instances. Adding or removing a scaling block reopens the
// model, which then starts with the count the new spec says.
func sameSpec(a, b schema.Model) bool {
	if a.Scaling != nil && b.Scaling != nil {
		a.Scaling, b.Scaling = nil, nil
		a.Instances, b.Instances = 0, 0
	}
	return a == b
}

// scalingPart starts, updates and stops the controllers at the swap.
type scalingPart struct {
	d    *Daemon
	next *state
}

func (p scalingPart) Commit() { p.d.scaling.commit(p.d, p.next) }
func (p scalingPart) Abort()  {}

// policy translates a scaling block; the schema checked its cron
// expressions and zones.
func policy(s *schema.Scaling) (scale.Policy, error) {
	p := scale.Policy{
		Min: s.MinInstances, Max: s.MaxInstances,
		CPUPercent: s.Target.CPUPercent, QueuePerInstance: s.Target.QueuePerInstance,
		For: s.Target.For, OutStep: s.OutStep, InStep: s.InStep, Cooldown: s.Cooldown,
	}
	for _, sc := range s.Schedules {
		start, err := schema.ParseCron(sc.Cron)
		if err != nil {
			return p, err
		}
		until, err := schema.ParseCron(sc.Until)
		if err != nil {
			return p, err
		}
		loc, err := time.LoadLocation(sc.Timezone)
		if err != nil {
			return p, err
		}
		p.Schedules = append(p.Schedules, scale.Schedule{Start: start, Until: until, Instances: sc.Instances, Location: loc})
	}
	return p, nil
}

// budgetCores is the cores the controllers share: runtime.cores, or the
// cores the Go runtime runs on (GOMAXPROCS follows the CPU affinity and
// the cgroup's CPU limit).
func budgetCores(cfg *schema.Config) int {
	if cfg.Runtime.Cores > 0 {
		return cfg.Runtime.Cores
	}
	return runtime.GOMAXPROCS(0)
}

// pool is a loaded model's instances, either kind.
type pool interface {
	scale.Pool
	QueueDepth() int
}

func (lm *loadedModel) pool() pool {
	if lm.gen != nil {
		return lm.gen
	}
	return lm.model
}

// usedCores counts the cores the instances of st's models take.
func usedCores(st *state) int {
	n := 0
	for _, lm := range st.models {
		n += lm.pool().Instances() * max(lm.spec.IntraOpThreads, 1)
	}
	return n
}

func (s *scaling) commit(d *Daemon, next *state) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctls == nil {
		s.ctls = map[*loadedModel]*scale.Controller{}
		s.budget = &scale.Budget{Used: func() int { return usedCores(d.current.Load()) }}
	}
	cores := budgetCores(next.cfg)
	s.budget.SetCores(cores)
	warnBudget(d.logger, next.cfg, cores)
	keep := map[*loadedModel]bool{}
	for _, name := range next.cfg.ModelNames() {
		lm := next.models[name]
		if lm.spec.Scaling == nil {
			continue
		}
		p, err := policy(lm.spec.Scaling)
		if err != nil {
			d.logger.Error("scaling policy not applied", "model", name, "err", err)
			continue
		}
		keep[lm] = true
		if c := s.ctls[lm]; c != nil {
			c.Update(p)
			continue
		}
		pl := lm.pool()
		c := scale.New(scale.Options{
			Model:   name,
			Pool:    pl,
			Threads: max(lm.spec.IntraOpThreads, 1),
			Policy:  p,
			Signals: scale.Signals{CPU: scale.ProcessCPU, Queue: pl.QueueDepth},
			Budget:  s.budget,
			Logger:  d.logger,
			Metrics: lm.set,
			// A drain waits for the requests on the instance, which
			// the model's timeout bounds.
			ChangeTimeout: max(lm.spec.RequestTimeout, next.cfg.Server.RequestTimeout) + 10*time.Second,
		})
		s.ctls[lm] = c
		c.Start()
	}
	for lm, c := range s.ctls {
		if !keep[lm] {
			c.Stop()
			delete(s.ctls, lm)
		}
	}
}

// stop ends every controller, leaving the instances as they are.
func (s *scaling) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for lm, c := range s.ctls {
		c.Stop()
		delete(s.ctls, lm)
	}
}

// warnBudget says, at each load, when the models could take more cores
// than the budget: the controllers then stop adding instances at the
// budget (cap and warn), so a model may stay below its max_instances.
func warnBudget(logger *slog.Logger, cfg *schema.Config, cores int) {
	total, scaled := 0, []string{}
	for _, name := range cfg.ModelNames() {
		m := cfg.Models[name]
		n := m.Instances
		if m.Scaling != nil {
			n = m.Scaling.MaxInstances
			scaled = append(scaled, name)
		}
		total += n * max(m.IntraOpThreads, 1)
	}
	if len(scaled) == 0 || total <= cores {
		return
	}
	var at []string
	for _, name := range scaled {
		if pos := cfg.Pos(cfg.Models[name].FieldPath("scaling") + ".max_instances"); pos != "" {
			at = append(at, pos)
		}
	}
	logger.Warn("scaling is capped by the core budget", "cores_max", total, "budget_cores", cores, "at", strings.Join(at, ", "),
		"detail", fmt.Sprintf("at their max_instances (or instances) × intra_op_threads the models would take %d cores, above the budget of %d (runtime.cores, or the cores the process may use); the controllers add no instance past the budget; lower max_instances or set runtime.cores", total, cores))
}

// startInstances is the count a model is loaded with: instances, or with
// a scaling block the floor now — min_instances, or the instances of a
// schedule whose window is open — so that a start or a reopen inside
// office hours does not wait for the controller's first look.
func startInstances(m schema.Model) int {
	if m.Scaling == nil {
		return m.Instances
	}
	p, err := policy(m.Scaling)
	if err != nil {
		return m.Scaling.MinInstances
	}
	n, _ := p.Floor(time.Now())
	return n
}
