package scale

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/robfig/cron/v3"
)

// fakeClock is set by the test; After is never used by Tick.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *fakeClock) After(time.Duration) <-chan time.Time { return make(chan time.Time) }

// fakePool counts instances; fail makes the next change fail.
type fakePool struct {
	n       int
	changes int
	fail    error
}

func (p *fakePool) Instances() int { return p.n }

func (p *fakePool) AddInstance(context.Context) error {
	if p.fail != nil {
		return p.fail
	}
	p.n++
	p.changes++
	return nil
}

func (p *fakePool) RemoveInstance(context.Context) error {
	if p.fail != nil {
		return p.fail
	}
	p.n--
	p.changes++
	return nil
}

func mustCron(t testing.TB, expr string) cron.Schedule {
	t.Helper()
	s, err := cron.ParseStandard(expr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type rig struct {
	t     *testing.T
	clock *fakeClock
	pool  *fakePool
	queue int
	cpu   float64 // seconds so far
	ctl   *Controller
	set   *metrics.Set
}

func newRig(t *testing.T, start time.Time, instances int, p Policy, budget *Budget) *rig {
	r := &rig{t: t, clock: &fakeClock{now: start}, pool: &fakePool{n: instances}, set: metrics.NewSet()}
	r.ctl = New(Options{
		Model:   "m",
		Pool:    r.pool,
		Threads: 1,
		Policy:  p,
		Signals: Signals{Queue: func() int { return r.queue }, CPU: func() (float64, error) { return r.cpu, nil }},
		Budget:  budget,
		Clock:   r.clock,
		Metrics: r.set,
	})
	return r
}

// run ticks once a second from the clock's time to until, and returns
// the count after each tick.
func (r *rig) run(until time.Time, each func(now time.Time)) {
	for now := r.clock.Now(); !now.After(until); now = now.Add(time.Second) {
		r.clock.set(now)
		if each != nil {
			each(now)
		}
		r.ctl.Tick()
	}
}

// at ticks once at t and returns the count.
func (r *rig) at(t time.Time) int {
	r.clock.set(t)
	r.ctl.Tick()
	return r.pool.n
}

func basePolicy() Policy {
	return Policy{Min: 1, Max: 4, For: 5 * time.Minute, OutStep: 1, InStep: 1, Cooldown: 30 * time.Minute}
}

// TestScheduleFloor: the seed's weekday morning schedule, in Shanghai,
// raises the floor at 09:00 there on a weekday (01:00 UTC), not at 09:00
// UTC nor on a Saturday, and the count goes back once the window closes.
func TestScheduleFloor(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	p := basePolicy()
	p.Schedules = []Schedule{{Start: mustCron(t, "0 9 * * 1-5"), Until: mustCron(t, "0 18 * * 1-5"), Instances: 2, Location: sh}}
	// Monday 30 November 2026.
	mon := func(h, m int) time.Time { return time.Date(2026, 11, 30, h, m, 0, 0, sh) }
	r := newRig(t, mon(7, 0), 1, p, nil)
	if n := r.at(mon(8, 59)); n != 1 {
		t.Fatalf("08:59 Shanghai: %d instances, want 1", n)
	}
	if n := r.at(mon(9, 0)); n != 2 {
		t.Fatalf("09:00 Shanghai (01:00 UTC): %d instances, want the schedule's 2", n)
	}
	if n := r.at(mon(17, 59)); n != 2 {
		t.Fatalf("17:59 Shanghai: %d instances, want 2", n)
	}
	// The window is closed at 18:00; the count goes back after a whole
	// for window of low load (the cooldown since 09:00 has long passed).
	if n := r.at(mon(18, 0)); n != 2 {
		t.Fatalf("18:00: %d instances, want 2 until the for window passed", n)
	}
	if n := r.at(mon(18, 5)); n != 1 {
		t.Fatalf("18:05: %d instances, want 1 after the window", n)
	}
	// 09:00 UTC is 17:00 in Shanghai on Monday: inside; 09:00 UTC on
	// Tuesday is 17:00 Tuesday there, inside too; but 09:00 Shanghai on
	// Saturday is not a weekday.
	sat := time.Date(2026, 12, 5, 9, 0, 0, 0, sh)
	if n := r.at(sat); n != 1 {
		t.Fatalf("Saturday 09:00: %d instances, want 1", n)
	}
	utc9 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) // Tuesday 17:00 in Shanghai
	if !p.Schedules[0].Active(utc9) {
		t.Errorf("Tuesday 09:00 UTC (17:00 Shanghai) should be inside the window")
	}
	if p.Schedules[0].Active(time.Date(2026, 12, 1, 0, 59, 0, 0, time.UTC)) {
		t.Errorf("Tuesday 00:59 UTC (08:59 Shanghai) should be outside the window")
	}
	if got := decisions(t, r.set); got[`direction="out",reason="schedule"`] != 1 || got[`direction="in",reason="low_load"`] != 1 {
		t.Errorf("decisions = %v, want one out for the schedule and one in", got)
	}
}

// TestScaleOutAfterForWindow: a queue above target scales out only once
// it stayed above for the whole for window; a dip restarts the window.
func TestScaleOutAfterForWindow(t *testing.T) {
	p := basePolicy()
	p.QueuePerInstance = 8
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := newRig(t, t0, 1, p, nil)
	r.queue = 20
	r.run(t0.Add(2*time.Minute), nil)
	r.queue = 3 // one look below: the window starts again
	r.at(t0.Add(2*time.Minute + time.Second))
	r.queue = 20
	t1 := t0.Add(2*time.Minute + 2*time.Second)
	r.clock.set(t1)
	r.run(t1.Add(5*time.Minute-time.Second), nil)
	if r.pool.n != 1 {
		t.Fatalf("%d instances 1s before the for window ended, want 1", r.pool.n)
	}
	if n := r.at(t1.Add(5 * time.Minute)); n != 2 {
		t.Fatalf("%d instances after a whole for window above target, want 2", n)
	}
	// 20 over 2 is 10, still above 8: the next step needs another whole
	// window.
	t2 := t1.Add(5 * time.Minute)
	r.clock.set(t2.Add(time.Second))
	r.run(t2.Add(5*time.Minute), nil)
	if r.pool.n != 2 {
		t.Fatalf("%d instances before the second window ended, want 2", r.pool.n)
	}
	if n := r.at(t2.Add(5*time.Minute + time.Second)); n != 3 {
		t.Fatalf("%d instances after a second window, want 3", r.pool.n)
	}
	if got := decisions(t, r.set); got[`direction="out",reason="queue"`] != 2 {
		t.Errorf("decisions = %v, want two outs for the queue", got)
	}
	if v := gauge(t, r.set, "aiassist_instances_current"); v != 3 {
		t.Errorf("aiassist_instances_current = %v, want 3", v)
	}
}

// TestScaleOutOnCPU: the process's CPU, as a percent of the cores the
// instances may use, scales out past its target.
func TestScaleOutOnCPU(t *testing.T) {
	p := basePolicy()
	p.CPUPercent = 80
	p.For = time.Minute
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := newRig(t, t0, 1, p, nil)
	cores := 0.95 // of one instance's one core
	r.run(t0.Add(time.Minute+time.Second), func(time.Time) { r.cpu += cores })
	if r.pool.n != 2 {
		t.Fatalf("%d instances after a minute at 95 %% CPU, want 2", r.pool.n)
	}
	// 0.95 cores over 2 instances is 47.5 %: no further step.
	t1 := r.clock.Now()
	r.run(t1.Add(10*time.Minute), func(time.Time) { r.cpu += cores })
	if r.pool.n != 2 {
		t.Fatalf("%d instances at 47.5 %%, want 2", r.pool.n)
	}
}

// TestScaleInAfterCooldown: a count goes in only once cooldown passed
// since the last change, one step at a time, and not while the load
// spread over one instance fewer would reach the band.
func TestScaleInAfterCooldown(t *testing.T) {
	p := basePolicy()
	p.QueuePerInstance = 8
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := newRig(t, t0, 3, p, nil) // New counts as the last change
	r.queue = 0
	r.run(t0.Add(30*time.Minute-time.Second), nil)
	if r.pool.n != 3 {
		t.Fatalf("%d instances before the cooldown passed, want 3", r.pool.n)
	}
	if n := r.at(t0.Add(30 * time.Minute)); n != 2 {
		t.Fatalf("%d instances once the cooldown passed, want 2", n)
	}
	// The next step waits for another cooldown.
	r.run(t0.Add(60*time.Minute-time.Second), nil)
	if r.pool.n != 2 {
		t.Fatalf("%d instances before the second cooldown, want 2", r.pool.n)
	}
	// 8 waiting over 2 is 4 each, below 8; but over 1 it is 8, above
	// the band's 7.2: the count stays.
	r.queue = 8
	r.run(t0.Add(2*time.Hour), nil)
	if r.pool.n != 2 {
		t.Fatalf("%d instances with the load at the band, want 2", r.pool.n)
	}
	r.queue = 7
	r.run(t0.Add(2*time.Hour+6*time.Minute), nil)
	if r.pool.n != 1 {
		t.Fatalf("%d instances with the load below the band, want 1", r.pool.n)
	}
	if got := decisions(t, r.set); got[`direction="in",reason="low_load"`] != 2 {
		t.Errorf("decisions = %v, want two ins", got)
	}
}

// TestBoundsAndBudget: the count never passes max, a reload that lowers
// max takes it down at once, and the core budget refuses what would pass
// it (counted and logged once).
func TestBoundsAndBudget(t *testing.T) {
	p := basePolicy()
	p.Max = 3
	p.QueuePerInstance = 1
	p.For = time.Minute
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := newRig(t, t0, 1, p, nil)
	r.queue = 100
	r.run(t0.Add(time.Hour), nil)
	if r.pool.n != 3 {
		t.Fatalf("%d instances under endless load, want max 3", r.pool.n)
	}
	p.Max = 2
	r.ctl.Update(p)
	if n := r.at(t0.Add(time.Hour + time.Second)); n != 2 {
		t.Fatalf("%d instances after max was lowered to 2, want 2", n)
	}
	p.Min, p.Max = 3, 4
	r.ctl.Update(p)
	if n := r.at(t0.Add(time.Hour + 2*time.Second)); n != 3 {
		t.Fatalf("%d instances after min was raised to 3, want 3", n)
	}

	// Budget: 4 cores, 2 per instance, another model holding 2.
	var r2 *rig
	budget := &Budget{Cores: 4, Used: func() int { return 2 + 2*r2.pool.n }}
	r2 = newRig(t, t0, 1, Policy{Min: 1, Max: 4, QueuePerInstance: 1, For: time.Second, OutStep: 2, InStep: 1, Cooldown: time.Hour}, budget)
	r2.ctl.opts.Threads = 2
	r2.queue = 100
	for i := range 10 {
		r2.at(t0.Add(time.Duration(i) * time.Second))
	}
	if r2.pool.n != 1 {
		t.Fatalf("%d instances with no core free, want 1", r2.pool.n)
	}
	if got := decisions(t, r2.set); got[`direction="hold",reason="budget"`] != 1 {
		t.Errorf("decisions = %v, want one budget refusal, counted once", got)
	}
	if d := r2.ctl.Desired(); d != 3 {
		t.Errorf("desired = %d, want the policy's 3 while the budget holds the count at 1", d)
	}
	// A core pair frees up: one step of two becomes one instance.
	budget.Used = func() int { return 2 * r2.pool.n }
	r2.at(t0.Add(20 * time.Second))
	if r2.pool.n != 2 {
		t.Fatalf("%d instances with 2 of 4 cores free, want 2", r2.pool.n)
	}
}

// atDecision ticks once at t and returns the decision.
func (r *rig) atDecision(t time.Time) Decision {
	r.clock.set(t)
	return r.ctl.Tick()
}

// TestPoolErrorHolds: a pool that cannot add holds the count and says so
// once.
func TestPoolErrorHolds(t *testing.T) {
	p := basePolicy()
	p.QueuePerInstance = 1
	p.For = time.Second
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := newRig(t, t0, 1, p, nil)
	r.pool.fail = errors.New("no memory")
	r.queue = 10
	for i := range 5 {
		d := r.atDecision(t0.Add(time.Duration(i) * time.Second))
		if d.Direction == "out" {
			t.Fatalf("decision %+v with a failing pool", d)
		}
	}
	if got := decisions(t, r.set); got[`direction="hold",reason="error"`] != 1 {
		t.Errorf("decisions = %v, want one error, counted once", got)
	}
}

// TestNoFlapping: a seeded random walk of the load around the target
// changes the count a bounded number of times, as ins need the cooldown
// and the band and outs a whole for window above the target; the same
// walk under a policy of 1s windows changes it many times more, which is
// what the bound guards against.
func TestNoFlapping(t *testing.T) {
	walk := func(p Policy) int {
		t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
		r := newRig(t, t0, 2, p, nil)
		rng := rand.New(rand.NewPCG(1, 2))
		load := 16.0 // 8 per instance at 2 instances: the target
		r.run(t0.Add(12*time.Hour), func(time.Time) {
			load += rng.NormFloat64()
			load = min(max(load, 4), 28)
			r.queue = int(load + 0.5)
		})
		return r.pool.changes
	}
	p := basePolicy()
	p.QueuePerInstance = 8
	// 12 hours hold at most 24 cooldowns, each with one step in and
	// what steps out follow; the walk needs far fewer.
	const most = 16
	got := walk(p)
	if got > most {
		t.Errorf("the count changed %d times in 12 hours of noise, want at most %d", got, most)
	}
	p.For, p.Cooldown = time.Second, time.Second
	if naive := walk(p); naive <= 4*most {
		t.Errorf("with 1s windows the count changed %d times; the walk does not test flapping", naive)
	}
	t.Logf("%d changes", got)
}

func decisions(t *testing.T, set *metrics.Set) map[string]float64 {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	out := map[string]float64{}
	for _, line := range strings.Split(b.String(), "\n") {
		rest, ok := strings.CutPrefix(line, `aiassist_scaling_decisions_total{model="m",`)
		if !ok {
			continue
		}
		labels, v, _ := strings.Cut(rest, "} ")
		var f float64
		for _, c := range v {
			f = f*10 + float64(c-'0')
		}
		out[labels] = f
	}
	return out
}

func gauge(t *testing.T, set *metrics.Set, name string) float64 {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+`{model="m"} `); ok {
			var f float64
			for _, c := range v {
				f = f*10 + float64(c-'0')
			}
			return f
		}
	}
	t.Fatalf("no %s in %s", name, b.String())
	return 0
}

func TestParseStat(t *testing.T) {
	line := []byte("4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 8 0 100 0 0\n")
	v, err := parseStat(line)
	if err != nil || v != 3.8 {
		t.Fatalf("parseStat = %v, %v; want 3.8 s (380 ticks)", v, err)
	}
	if _, err := parseStat([]byte("garbage")); err == nil {
		t.Error("parseStat of garbage succeeded")
	}
	if v, err := ProcessCPU(); err != nil || v < 0 {
		t.Errorf("ProcessCPU = %v, %v", v, err)
	}
}

// TestUpdateKeepsState: a reloaded policy changes nothing by itself —
// neither the count nor the window or cooldown under way.
func TestUpdateKeepsState(t *testing.T) {
	p := basePolicy()
	p.QueuePerInstance = 8
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := newRig(t, t0, 2, p, nil)
	r.queue = 40
	r.run(t0.Add(4*time.Minute), nil)
	p.Cooldown = time.Hour
	p.Max = 3
	r.ctl.Update(p)
	r.clock.set(t0.Add(4*time.Minute + time.Second))
	r.run(t0.Add(5*time.Minute-time.Second), nil)
	if r.pool.n != 2 || r.pool.changes != 0 {
		t.Fatalf("%d instances, %d changes right after the update; want 2 and none", r.pool.n, r.pool.changes)
	}
	// The window that began before the update ends on time.
	if n := r.at(t0.Add(5 * time.Minute)); n != 3 {
		t.Fatalf("%d instances when the for window begun before the update ended, want 3", n)
	}
}
