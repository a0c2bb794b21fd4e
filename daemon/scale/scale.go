// Package scale decides how many instances a model runs on one machine:
// schedules raise a floor for their windows, CPU and queue targets move
// the count between the floor and the most, and every model's additions
// share one budget of cores. One Controller per model looks at its
// signals on a clock, decides, and adds or removes instances through the
// model's Pool.
//
// The rules, with the band that keeps a noisy signal from flapping the
// count:
//   - out by OutStep once a target was exceeded at every look for the
//     whole For window;
//   - in by InStep once Cooldown has passed since the last change and,
//     at every look for the whole For window, every target would stay
//     below Band (90 %) of its value with the load spread over the
//     smaller count — so a count that would go straight back out does
//     not go in;
//   - up to the floor at once when a schedule's window opens, and into
//     [floor, Max] at once when a reload moves the bounds.
//
// After each change both windows start again.
package scale

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Band is the share of a target the load, spread over the smaller count,
// must stay below for a step in.
const Band = 0.9

// Pool is a model's instances.
type Pool interface {
	Instances() int
	AddInstance(ctx context.Context) error
	RemoveInstance(ctx context.Context) error
}

// Signals are what a controller looks at; a nil func is a signal not
// measured.
type Signals struct {
	// CPU is the process's CPU time so far, in seconds (ProcessCPU).
	CPU func() (float64, error)
	// Queue is the number of requests waiting in the model's queue.
	Queue func() int
}

// Clock is the controller's time.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Policy is a model's scaling policy.
type Policy struct {
	Min, Max  int
	Schedules []Schedule
	// CPUPercent is the process's CPU time per second as a percent of
	// the cores the model's instances may use (instances × Threads); 0
	// is off.
	CPUPercent float64
	// QueuePerInstance is the queue depth per instance; 0 is off.
	QueuePerInstance float64
	For              time.Duration
	OutStep, InStep  int
	Cooldown         time.Duration
}

// Floor is the least count at now: Min, or the instances of an open
// schedule window if more.
func (p Policy) Floor(now time.Time) (int, bool) {
	floor, scheduled := p.Min, false
	for _, s := range p.Schedules {
		if s.Instances > floor && s.Active(now) {
			floor, scheduled = s.Instances, true
		}
	}
	return min(floor, p.Max), scheduled
}

// Budget is the cores that the instances of all models may take. Used
// reports the cores taken now; Reserve holds cores for an addition until
// Release, so that two controllers cannot both take the last core.
type Budget struct {
	Cores int
	Used  func() int

	mu      sync.Mutex
	pending int
}

// Reserve takes up to n cores in steps of step and returns how many it
// took.
func (b *Budget) Reserve(n, step int) int {
	if b == nil {
		return n
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Cores <= 0 {
		return n
	}
	used := b.pending
	if b.Used != nil {
		used += b.Used()
	}
	free := max(b.Cores-used, 0)
	got := min(n, free/step*step)
	b.pending += got
	return got
}

// SetCores changes the budget, as a reload does.
func (b *Budget) SetCores(n int) {
	b.mu.Lock()
	b.Cores = n
	b.mu.Unlock()
}

// Release gives back cores Reserve took, once the instances they were for
// are added (and so counted by Used) or have failed.
func (b *Budget) Release(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.pending = max(b.pending-n, 0)
	b.mu.Unlock()
}

// Options configures New.
type Options struct {
	Model   string
	Pool    Pool
	Threads int // cores one instance takes: the model's intra_op_threads
	Policy  Policy
	Signals Signals
	Budget  *Budget
	Clock   Clock        // nil: the real clock
	Logger  *slog.Logger // nil: discarded
	// Metrics receives aiassist_instances_desired, _current and
	// aiassist_scaling_decisions_total; nil keeps them unexported.
	Metrics *metrics.Set
	// ChangeTimeout bounds one addition or removal (a removal waits for
	// the instance to drain). Default: 5m.
	ChangeTimeout time.Duration
}

// Controller runs one model's policy.
type Controller struct {
	opts Options

	policy atomic.Pointer[Policy] // swapped by Update, even during a change
	mu     sync.Mutex             // guards the state below; held by Tick

	lastChange time.Time
	aboveSince time.Time // first look of the run above a target; zero if not
	lowSince   time.Time // first look of the run below the band; zero if not
	lastCPU    float64
	lastAt     time.Time
	refused    string // the reason of the last refusal, said once

	desired atomic.Int64

	ctx     context.Context
	cancel  context.CancelFunc
	started atomic.Bool
	done    chan struct{}
}

// New returns a controller; Start runs it on its clock, or Tick steps it.
func New(opts Options) *Controller {
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Threads < 1 {
		opts.Threads = 1
	}
	if opts.ChangeTimeout <= 0 {
		opts.ChangeTimeout = 5 * time.Minute
	}
	c := &Controller{opts: opts, done: make(chan struct{})}
	c.policy.Store(&opts.Policy)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.lastChange = opts.Clock.Now()
	c.desired.Store(int64(opts.Pool.Instances()))
	if set := opts.Metrics; set != nil {
		label := `{model=` + strconv.Quote(opts.Model) + `}`
		set.GetOrCreateGauge("aiassist_instances_desired"+label, func() float64 { return float64(c.desired.Load()) })
		set.GetOrCreateGauge("aiassist_instances_current"+label, func() float64 { return float64(opts.Pool.Instances()) })
	}
	return c
}

// Interval is how often the controller looks: every second, or four times
// per For window when that is shorter, but at most every 100ms.
func (p Policy) Interval() time.Duration {
	return min(time.Second, max(p.For/4, 100*time.Millisecond))
}

// Start runs the controller until Stop.
func (c *Controller) Start() {
	if !c.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer close(c.done)
		for {
			every := c.policy.Load().Interval()
			select {
			case <-c.ctx.Done():
				return
			case <-c.opts.Clock.After(every):
			}
			c.Tick()
		}
	}()
}

// Stop ends the controller's loop and a change in progress, and waits.
// It may be called without Start.
func (c *Controller) Stop() {
	c.cancel()
	if c.started.Load() {
		<-c.done
	}
	// A Tick called directly finishes too.
	c.mu.Lock()
	defer c.mu.Unlock()
}

// Update applies a reloaded policy. The count does not change by itself:
// the next look moves it only if the new bounds or floor need it, and the
// windows and cooldown run on.
func (c *Controller) Update(p Policy) {
	c.policy.Store(&p)
}

// Desired is the count the controller last decided on.
func (c *Controller) Desired() int { return int(c.desired.Load()) }

// Decision is what one look decided.
type Decision struct {
	From, To  int
	Direction string // "out", "in", or "hold" when a wanted change was refused
	Reason    string // schedule, bounds, cpu, queue, low_load, budget, error
}

// Tick looks at the signals once, decides and applies the decision. It
// returns the decision, or a zero one when nothing was wanted.
func (c *Controller) Tick() Decision {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Clock.Now()
	p := *c.policy.Load()
	n := c.opts.Pool.Instances()
	floor, scheduled := p.Floor(now)
	cpu, cpuOK := c.cpuPercent(now, n)
	queue, queueOK := 0.0, false
	if c.opts.Signals.Queue != nil && p.QueuePerInstance > 0 {
		queue, queueOK = float64(c.opts.Signals.Queue())/float64(max(n, 1)), true
	}
	cpuOK = cpuOK && p.CPUPercent > 0

	outReason := ""
	switch {
	case cpuOK && cpu > p.CPUPercent:
		outReason = "cpu"
	case queueOK && queue > p.QueuePerInstance:
		outReason = "queue"
	}
	// The load spread over the count after a step in.
	to := max(n-p.InStep, floor)
	low := to < n
	if low {
		spread := float64(n) / float64(to)
		if cpuOK && cpu*spread >= Band*p.CPUPercent {
			low = false
		}
		if queueOK && queue*spread >= Band*p.QueuePerInstance {
			low = false
		}
		if p.CPUPercent > 0 && !cpuOK {
			// A CPU target without a reading holds the count.
			low = false
		}
	}
	c.aboveSince = since(c.aboveSince, outReason != "", now)
	c.lowSince = since(c.lowSince, low, now)

	d := Decision{From: n, To: n}
	switch {
	case n < floor:
		d.To, d.Direction, d.Reason = floor, "out", "bounds"
		if scheduled {
			d.Reason = "schedule"
		}
	case n > p.Max:
		d.To, d.Direction, d.Reason = p.Max, "in", "bounds"
	case outReason != "" && now.Sub(c.aboveSince) >= p.For && n < p.Max:
		d.To, d.Direction, d.Reason = min(n+p.OutStep, p.Max), "out", outReason
	case low && now.Sub(c.lowSince) >= p.For && now.Sub(c.lastChange) >= p.Cooldown:
		d.To, d.Direction, d.Reason = to, "in", "low_load"
	default:
		c.desired.Store(int64(n))
		return Decision{}
	}
	return c.apply(now, d)
}

// since keeps the start of a run of looks for which cond holds.
func since(start time.Time, cond bool, now time.Time) time.Time {
	switch {
	case !cond:
		return time.Time{}
	case start.IsZero():
		return now
	}
	return start
}

// cpuPercent is the process's CPU time per second since the last look, as
// a percent of the cores n instances may use.
func (c *Controller) cpuPercent(now time.Time, n int) (float64, bool) {
	if c.opts.Signals.CPU == nil {
		return 0, false
	}
	v, err := c.opts.Signals.CPU()
	if err != nil {
		return 0, false
	}
	prev, at := c.lastCPU, c.lastAt
	c.lastCPU, c.lastAt = v, now
	dt := now.Sub(at).Seconds()
	if at.IsZero() || dt <= 0 {
		return 0, false
	}
	return (v - prev) / dt / float64(max(n, 1)*c.opts.Threads) * 100, true
}

// apply makes the change d wants, as far as the budget lets it.
func (c *Controller) apply(now time.Time, d Decision) Decision {
	log := c.opts.Logger.With("model", c.opts.Model, "from", d.From, "reason", d.Reason)
	// Desired is what the policy wants, even when the budget or an error
	// keeps the count below it.
	c.desired.Store(int64(d.To))
	if d.To > d.From {
		want := (d.To - d.From) * c.opts.Threads
		got := c.opts.Budget.Reserve(want, c.opts.Threads)
		defer c.opts.Budget.Release(got)
		if got < want {
			d.To = d.From + got/c.opts.Threads
			if d.To == d.From {
				return c.refuse(d, "budget", log, "no core of the budget is free for another instance; lower other models' instances or raise runtime.cores")
			}
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.ChangeTimeout)
	defer cancel()
	reached := d.From
	var err error
	for reached != d.To && err == nil {
		if d.To > reached {
			if err = c.opts.Pool.AddInstance(ctx); err == nil {
				reached++
			}
		} else if err = c.opts.Pool.RemoveInstance(ctx); err == nil {
			reached--
		}
	}
	if reached != d.From {
		c.lastChange, c.aboveSince, c.lowSince, c.refused = now, time.Time{}, time.Time{}, ""
		c.count(d.Direction, d.Reason)
		log.Info("scaled", "direction", d.Direction, "to", reached, "wanted", d.To)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) && c.ctx.Err() != nil {
			return Decision{From: d.From, To: reached, Direction: d.Direction, Reason: d.Reason}
		}
		return c.refuse(Decision{From: reached, To: reached, Reason: d.Reason}, "error", log, err.Error())
	}
	d.To = reached
	return d
}

// refuse counts and logs, once until the next change, a change that could
// not be made.
func (c *Controller) refuse(d Decision, why string, log *slog.Logger, msg string) Decision {
	d.To, d.Direction, d.Reason = d.From, "hold", why
	if c.refused != why {
		c.refused = why
		c.count(d.Direction, why)
		log.Warn("scaling refused", "direction", "hold", "refused", why, "detail", msg)
	}
	return d
}

func (c *Controller) count(direction, reason string) {
	if c.opts.Metrics == nil {
		return
	}
	c.opts.Metrics.GetOrCreateCounter(`aiassist_scaling_decisions_total{model=` + strconv.Quote(c.opts.Model) +
		`,direction="` + direction + `",reason="` + reason + `"}`).Inc()
}
