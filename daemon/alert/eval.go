package alert

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// EvaluatorOptions are what the evaluator needs from the daemon.
type EvaluatorOptions struct {
	// Gather writes the daemon's metrics in the Prometheus text format, as
	// /metrics serves them: func(w io.Writer) { metrics.WritePrometheus(w, true) }.
	Gather func(w io.Writer)
	// Metrics receives aiassist_alert_firing{alert} and
	// aiassist_alert_notifications_total{result}. Required.
	Metrics *metrics.Set
	// Logger gets "alert firing" and "alert resolved" lines. Required.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now. Tests drive a fake one.
	Now func() time.Time
	// Step is how often Run evaluates, and the resolution of the sliding
	// windows. Default 5s.
	Step time.Duration
	// ExternalLabels are added to every webhook alert, like Prometheus'
	// external_labels (e.g. instance: the host name), so a receiver can
	// tell servers apart.
	ExternalLabels map[string]string
	// GeneratorURL, when set, is sent with every webhook alert.
	GeneratorURL string
}

// Alert states, as Prometheus names them.
const (
	StatePending  = "pending"
	StateFiring   = "firing"
	StateInactive = "inactive"
)

// Status is one alert instance as the evaluator sees it.
type Status struct {
	Name        string
	Labels      map[string]string // the series' labels (e.g. model, key), without alertname and severity
	State       string
	Value       float64
	Annotations map[string]string
	ActiveAt    time.Time
	FiredAt     time.Time
	ResolvedAt  time.Time
}

// resolvedRetention is how long a resolved alert is still re-sent, as in
// Prometheus, so a receiver that missed the first resolve hears it later.
const resolvedRetention = 15 * time.Minute

// maxGather bounds one read of the daemon's metrics.
const maxGather = 16 << 20

// Evaluator computes the alert rules over the daemon's own metrics at a
// fixed step, keeping sliding windows in a bounded ring.
type Evaluator struct {
	gather   func(io.Writer)
	set      *metrics.Set
	log      *slog.Logger
	now      func() time.Time
	step     time.Duration
	external map[string]string
	genURL   string

	mu       sync.Mutex
	opts     Options
	rules    []compiled
	ring     ring
	prev     map[string]float64 // counter values at the last gather, by series
	primed   bool
	alerts   map[string]*instanceState
	firing   map[string]*metrics.Gauge
	notify   *notifier
	lastErr  string
	buf      limitedBuffer
	cpuCores map[string]float64
}

type compiled struct {
	rule
	summary, description *template.Template
}

// instance is one result of a rule's expression: a label set and a value;
// active says whether the value crosses the threshold.
type instance struct {
	labels []label
	value  float64
	active bool
}

type instanceState struct {
	rule        string
	labels      []label
	state       string
	value       float64
	annotations map[string]string
	activeAt    time.Time
	firedAt     time.Time
	resolvedAt  time.Time
	lastSentAt  time.Time
}

// NewEvaluator checks opts and returns an evaluator; Run drives it, or a
// test calls Eval after moving its clock.
func NewEvaluator(opts Options, eo EvaluatorOptions) (*Evaluator, error) {
	if eo.Gather == nil || eo.Metrics == nil || eo.Logger == nil {
		return nil, errors.New("alert: EvaluatorOptions needs Gather, Metrics and Logger")
	}
	if eo.Now == nil {
		eo.Now = time.Now
	}
	if eo.Step <= 0 {
		eo.Step = 5 * time.Second
	}
	e := &Evaluator{
		gather: eo.Gather, set: eo.Metrics, log: eo.Logger, now: eo.Now, step: eo.Step,
		external: eo.ExternalLabels, genURL: eo.GeneratorURL,
		prev: map[string]float64{}, alerts: map[string]*instanceState{}, firing: map[string]*metrics.Gauge{},
	}
	e.buf.max = maxGather
	for _, n := range Names {
		// GetOrCreate: a daemon that rebuilds its evaluator reuses the gauges.
		g := e.set.GetOrCreateGauge(`aiassist_alert_firing{alert="`+n+`"}`, nil)
		g.Set(0)
		e.firing[n] = g
	}
	if err := e.Update(opts); err != nil {
		return nil, err
	}
	return e, nil
}

// Update applies new thresholds, as on a config reload: alert states and
// window history are kept, so a reload neither forgets a firing alert nor
// resets its windows. A changed webhook is replaced; the old one's queue is
// dropped.
func (e *Evaluator) Update(opts Options) error {
	o, err := opts.normalize()
	if err != nil {
		return err
	}
	rs := rules(o)
	cs := make([]compiled, len(rs))
	for i, r := range rs {
		s, err := parseTemplate(r.name+" summary", r.summary)
		if err != nil {
			return err
		}
		d, err := parseTemplate(r.name+" description", r.description)
		if err != nil {
			return err
		}
		cs[i] = compiled{r, s, d}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.notify == nil || e.opts.Webhook != o.Webhook {
		if e.notify != nil {
			e.notify.close()
			e.notify = nil
		}
		if o.Webhook.URL != "" {
			e.notify = newNotifier(o.Webhook, e.set, e.log, nil)
		}
	}
	e.opts, e.rules = o, cs
	longest := max(o.ErrorRate.Window, o.LatencyP95.Window, o.CPU.Window)
	// At most ~720 slots whatever the window, so memory stays bounded.
	slot := max(e.step, longest/720)
	e.ring.resize(slot, int(longest/slot)+2)
	return nil
}

// Close stops the webhook sender; posts still queued are dropped.
func (e *Evaluator) Close() {
	e.mu.Lock()
	n := e.notify
	e.notify = nil
	e.mu.Unlock()
	if n != nil {
		n.close()
	}
}

// Run evaluates every Step until ctx is done.
func (e *Evaluator) Run(ctx context.Context) {
	t := time.NewTicker(e.step)
	defer t.Stop()
	for {
		e.Eval()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Alerts returns the pending, firing and recently resolved instances,
// sorted by name and labels.
func (e *Evaluator) Alerts() []Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Status, 0, len(e.alerts))
	for _, a := range e.alerts {
		out = append(out, Status{
			Name: a.rule, Labels: labelMap(a.labels), State: a.state, Value: a.value, Annotations: a.annotations,
			ActiveAt: a.activeAt, FiredAt: a.firedAt, ResolvedAt: a.resolvedAt,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return labelsKey(labelsOf(out[i].Labels)) < labelsKey(labelsOf(out[j].Labels))
	})
	return out
}

// needed are the metric names the rules read.
var needed = map[string]bool{
	RequestsSeries: true, DurationBucketSeries: true, QueueDepthSeries: true, GenQueueDepthSeries: true,
	ReloadOKSeries: true, KeyExpirySeries: true, CPUSecondsSeries: true, CPUCoresSeries: true,
}

var counters = map[string]bool{RequestsSeries: true, DurationBucketSeries: true, CPUSecondsSeries: true}

// Eval reads the metrics once, advances the windows and the alert states,
// and queues webhook posts. It never blocks on the webhook.
func (e *Evaluator) Eval() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.buf.Reset()
	e.gather(&e.buf)
	text := e.buf.Bytes()
	if e.buf.overflow {
		// The cut may have split a line; a shortened number must not be read.
		text = text[:bytes.LastIndexByte(text, '\n')+1]
	}
	samples, err := parseExposition(text, func(n string) bool { return needed[n] })
	if err == nil && e.buf.overflow {
		err = errors.New("the metrics output is larger than 16 MiB; the evaluator read only its start")
	}
	e.reportErr(err)

	gauges := map[string][]sample{}
	cur := slotData{}
	next := make(map[string]float64, len(e.prev))
	for _, s := range samples {
		if !counters[s.name] {
			gauges[s.name] = append(gauges[s.name], s)
			continue
		}
		if math.IsNaN(s.value) || math.IsInf(s.value, 0) || s.value < 0 {
			continue
		}
		id := s.name + "\xfe" + labelsKey(s.labels)
		next[id] = s.value
		if !e.primed {
			continue
		}
		// Like Prometheus' rate: a drop is a reset, the new value the increase.
		// A series first seen after the start has counted from zero.
		inc := s.value
		if p, ok := e.prev[id]; ok && s.value >= p {
			inc = s.value - p
		}
		cur.add(s, inc)
	}
	e.prev = next
	if e.primed {
		e.ring.add(now, cur)
	}
	e.primed = true

	v := &view{now: now, gauges: gauges, ring: &e.ring}
	var send []amAlert
	for _, r := range e.rules {
		send = append(send, e.advance(r, r.eval(v), now)...)
	}
	if len(send) > 0 && e.notify != nil {
		e.notify.enqueue(send)
	}
}

func (e *Evaluator) reportErr(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != e.lastErr && msg != "" {
		e.log.Warn("alert evaluator cannot read every metric", "err", msg)
	}
	e.lastErr = msg
}

// advance runs the pending -> firing -> resolved state machine of one rule
// the way Prometheus' AlertingRule.Eval does, and returns the alerts due to
// be sent.
func (e *Evaluator) advance(r compiled, res []instance, now time.Time) []amAlert {
	seen := map[string]instance{}
	for _, in := range res {
		seen[labelsKey(in.labels)] = in
	}
	prefix := r.name + "\xfd"
	for _, in := range res {
		if !in.active {
			continue
		}
		k := prefix + labelsKey(in.labels)
		a := e.alerts[k]
		if a == nil || a.state == StateInactive {
			a = &instanceState{rule: r.name, labels: in.labels, state: StatePending, activeAt: now}
			e.alerts[k] = a
		}
		a.value = in.value
		d := templateData{Labels: labelMap(in.labels), ExternalLabels: e.external, Value: in.value}
		a.annotations = map[string]string{"summary": expand(r.summary, d), "description": expand(r.description, d)}
	}
	firing := 0.0
	var send []amAlert
	for k, a := range e.alerts {
		if a.rule != r.name {
			continue
		}
		in, ok := seen[labelsKey(a.labels)]
		if !ok || !in.active {
			switch {
			case a.state == StatePending:
				delete(e.alerts, k)
				continue
			case a.state == StateFiring:
				a.state, a.resolvedAt = StateInactive, now
				attrs := []any{"alert", r.name, "threshold", r.threshold, "firing_seconds", now.Sub(a.firedAt).Seconds()}
				if ok && finite(in.value) {
					attrs = append(attrs, "value", in.value)
				}
				e.log.Info("alert resolved", append(attrs, labelAttrs(a.labels)...)...)
			case now.Sub(a.resolvedAt) > resolvedRetention:
				delete(e.alerts, k)
				continue
			}
		}
		if a.state == StatePending && now.Sub(a.activeAt) >= r.hold {
			a.state, a.firedAt = StateFiring, now
			attrs := []any{"alert", r.name, "severity", r.severity, "value", a.value, "threshold", r.threshold}
			e.log.Warn("alert firing", append(attrs, labelAttrs(a.labels)...)...)
		}
		if a.state == StateFiring {
			firing = 1
		}
		if e.notify != nil && e.needsSending(a, now) {
			a.lastSentAt = now
			send = append(send, e.toAM(r, a, now))
		}
	}
	e.firing[r.name].Set(firing)
	return send
}

func (e *Evaluator) needsSending(a *instanceState, now time.Time) bool {
	if a.state == StatePending {
		return false
	}
	if a.resolvedAt.After(a.lastSentAt) {
		return true
	}
	return a.lastSentAt.Add(e.notify.opts.ResendEvery).Before(now)
}

// toAM is the Alertmanager API v2 form of a. A firing alert ends at a time
// a few resends ahead, so the receiver resolves it by itself if the daemon
// dies; a resolved one ends when it resolved.
func (e *Evaluator) toAM(r compiled, a *instanceState, now time.Time) amAlert {
	ls := map[string]string{}
	for k, v := range e.external {
		ls[k] = v
	}
	for _, l := range a.labels {
		ls[l.name] = l.value
	}
	ls["alertname"], ls["severity"] = r.name, r.severity
	end := a.resolvedAt
	if a.state == StateFiring {
		end = now.Add(4 * max(e.notify.opts.ResendEvery, e.step))
	}
	return amAlert{Labels: ls, Annotations: a.annotations, StartsAt: a.firedAt, EndsAt: end, GeneratorURL: e.genURL}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// reservedLogKeys are keys of the log line a label must not overwrite.
var reservedLogKeys = map[string]bool{"alert": true, "severity": true, "value": true, "threshold": true, "firing_seconds": true, "time": true, "level": true, "msg": true}

func labelAttrs(ls []label) []any {
	var out []any
	for _, l := range ls {
		if !reservedLogKeys[l.name] {
			out = append(out, l.name, l.value)
		}
	}
	return out
}

// labelsKey is a canonical form of ls, sorted by name, with quoted values
// so that no value can contain the separator.
func labelsKey(ls []label) string {
	s := make([]label, len(ls))
	copy(s, ls)
	sort.Slice(s, func(i, j int) bool { return s[i].name < s[j].name })
	var b []byte
	for i, l := range s {
		if i > 0 {
			b = append(b, '\xff')
		}
		b = append(b, l.name...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, l.value)
	}
	return string(b)
}

func labelsFromKey(k string) []label {
	if k == "" {
		return nil
	}
	var ls []label
	for _, p := range strings.Split(k, "\xff") {
		n, q, _ := strings.Cut(p, "=")
		v, _ := strconv.Unquote(q) // written by labelsKey
		ls = append(ls, label{n, v})
	}
	return ls
}

func labelMap(ls []label) map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.name] = l.value
	}
	return m
}

func labelsOf(m map[string]string) []label {
	ls := make([]label, 0, len(m))
	for k, v := range m {
		ls = append(ls, label{k, v})
	}
	return ls
}

// without returns ls minus the named labels.
func without(ls []label, names ...string) []label {
	var out []label
outer:
	for _, l := range ls {
		for _, n := range names {
			if l.name == n {
				continue outer
			}
		}
		out = append(out, l)
	}
	return out
}

// limitedBuffer keeps at most max bytes and says whether it dropped any;
// a writer the daemon passes must not grow memory without bound.
type limitedBuffer struct {
	b        []byte
	max      int
	overflow bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); len(p) > room {
		l.b = append(l.b, p[:max(room, 0)]...)
		l.overflow = true
		return len(p), nil
	}
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *limitedBuffer) Reset() {
	// A buffer that once grew large is not kept for the next round.
	if cap(l.b) > 1<<20 {
		l.b = nil
	}
	l.b, l.overflow = l.b[:0], false
}

func (l *limitedBuffer) Bytes() []byte { return l.b }

// slotData is what one step added to the counters, grouped the way the
// rules aggregate them.
type slotData struct {
	requests map[string]float64 // by labels without route, model, code
	errors   map[string]float64 // 5xx only, same grouping
	buckets  map[bucketKey]float64
	cpu      map[string]float64 // by all labels
}

type bucketKey struct {
	group string // labels without route and le
	le    float64
}

func (d *slotData) add(s sample, inc float64) {
	switch s.name {
	case RequestsSeries:
		if s.label("model") == "" {
			return
		}
		g := labelsKey(without(s.labels, "route", "model", "code"))
		addTo(&d.requests, g, inc)
		if c := s.label("code"); len(c) == 3 && c[0] == '5' {
			addTo(&d.errors, g, inc)
		}
	case DurationBucketSeries:
		le, err := strconv.ParseFloat(s.label("le"), 64)
		if err != nil || math.IsNaN(le) {
			return
		}
		if d.buckets == nil {
			d.buckets = map[bucketKey]float64{}
		}
		d.buckets[bucketKey{labelsKey(without(s.labels, "route", "le")), le}] += inc
	case CPUSecondsSeries:
		addTo(&d.cpu, labelsKey(s.labels), inc)
	}
}

func addTo(m *map[string]float64, k string, v float64) {
	if *m == nil {
		*m = map[string]float64{}
	}
	(*m)[k] += v
}

// ring keeps the per-step increases of the longest window, one slot per
// step; several evaluations within one step share a slot.
type ring struct {
	slot  time.Duration
	slots []timedSlot
	start int // index of the oldest slot
	n     int
}

type timedSlot struct {
	at   time.Time // last evaluation merged into the slot
	data slotData
}

func (r *ring) resize(slot time.Duration, size int) {
	if r.slot == slot && len(r.slots) == size {
		return
	}
	old := r.all()
	if len(old) > size {
		old = old[len(old)-size:]
	}
	r.slot, r.slots, r.start, r.n = slot, make([]timedSlot, size), 0, 0
	for _, s := range old {
		r.slots[r.n] = s
		r.n++
	}
}

func (r *ring) all() []timedSlot {
	out := make([]timedSlot, 0, r.n)
	for i := 0; i < r.n; i++ {
		out = append(out, r.slots[(r.start+i)%len(r.slots)])
	}
	return out
}

func (r *ring) add(now time.Time, d slotData) {
	if r.n > 0 {
		last := &r.slots[(r.start+r.n-1)%len(r.slots)]
		if last.at.Truncate(r.slot).Equal(now.Truncate(r.slot)) {
			last.at = now
			last.data.merge(d)
			return
		}
	}
	if r.n == len(r.slots) {
		r.start = (r.start + 1) % len(r.slots)
		r.n--
	}
	r.slots[(r.start+r.n)%len(r.slots)] = timedSlot{at: now, data: d}
	r.n++
}

func (d *slotData) merge(o slotData) {
	for k, v := range o.requests {
		addTo(&d.requests, k, v)
	}
	for k, v := range o.errors {
		addTo(&d.errors, k, v)
	}
	for k, v := range o.cpu {
		addTo(&d.cpu, k, v)
	}
	for k, v := range o.buckets {
		if d.buckets == nil {
			d.buckets = map[bucketKey]float64{}
		}
		d.buckets[k] += v
	}
}

// sum adds up the slots evaluated within (now-w, now]: the increase that
// Prometheus' rate(x[w]) divides by w.
func (r *ring) sum(now time.Time, w time.Duration) slotData {
	var out slotData
	from := now.Add(-w)
	for i := 0; i < r.n; i++ {
		s := r.slots[(r.start+i)%len(r.slots)]
		if s.at.After(from) && !s.at.After(now) {
			out.merge(s.data)
		}
	}
	return out
}

// view is what a rule's in-process expression reads.
type view struct {
	now    time.Time
	gauges map[string][]sample
	ring   *ring
}

// errorRate: sum without (route, model, code) (rate(requests{model!="",code=~"5.."}))
// / sum without (route, model, code) (rate(requests{model!=""})).
func (v *view) errorRate(o ErrorRateOptions) []instance {
	d := v.ring.sum(v.now, o.Window)
	var out []instance
	for g, total := range d.requests {
		if total <= 0 {
			continue // 0/0: no value, as in PromQL
		}
		r := d.errors[g] / total
		out = append(out, instance{labels: labelsFromKey(g), value: r, active: r > o.Above})
	}
	return out
}

// latency: histogram_quantile(0.95, sum without (route) (rate(bucket{model...}))).
func (v *view) latency(o LatencyOptions) []instance {
	d := v.ring.sum(v.now, o.Window)
	groups := map[string][]bucket{}
	for k, c := range d.buckets {
		groups[k.group] = append(groups[k.group], bucket{upper: k.le, count: c})
	}
	var out []instance
	for g, bs := range groups {
		ls := labelsFromKey(g)
		model := labelMap(ls)["model"]
		if o.Model != "" && model != o.Model || o.Model == "" && model == "" {
			continue
		}
		q := bucketQuantile(0.95, bs)
		if math.IsNaN(q) {
			continue
		}
		out = append(out, instance{labels: ls, value: q, active: q > o.Above.Seconds()})
	}
	return out
}

// queueDepth: queue_depth > above or generation_queue_depth > above. As
// with PromQL's "or", the right side only adds label sets the left lacks.
func (v *view) queueDepth(o QueueDepthOptions) []instance {
	byKey := map[string]instance{}
	for _, name := range []string{QueueDepthSeries, GenQueueDepthSeries} {
		for _, s := range v.gauges[name] {
			k := labelsKey(s.labels)
			in := instance{labels: s.labels, value: s.value, active: s.value > o.Above}
			if prev, ok := byKey[k]; ok && (prev.active || !in.active) {
				continue
			}
			byKey[k] = in
		}
	}
	out := make([]instance, 0, len(byKey))
	for _, in := range byKey {
		out = append(out, in)
	}
	return out
}

// reloadFailed: last_reload_successful == 0.
func (v *view) reloadFailed() []instance {
	var out []instance
	for _, s := range v.gauges[ReloadOKSeries] {
		out = append(out, instance{labels: s.labels, value: s.value, active: s.value == 0})
	}
	return out
}

// keyExpiring: expiry_timestamp - time() < within.
func (v *view) keyExpiring(o KeyExpiringOptions) []instance {
	now := float64(v.now.UnixNano()) / 1e9
	var out []instance
	for _, s := range v.gauges[KeyExpirySeries] {
		left := s.value - now
		out = append(out, instance{labels: s.labels, value: left, active: left < o.Within.Seconds()})
	}
	return out
}

// cpu: rate(process_cpu_seconds_total[w]) / aiassist_cpu_cores, matched on
// all labels as PromQL's one-to-one division does.
func (v *view) cpu(o CPUOptions) []instance {
	d := v.ring.sum(v.now, o.Window)
	cores := map[string]float64{}
	for _, s := range v.gauges[CPUCoresSeries] {
		cores[labelsKey(s.labels)] = s.value
	}
	var out []instance
	for g, secs := range d.cpu {
		c, ok := cores[g]
		if !ok || c <= 0 {
			continue
		}
		r := secs / o.Window.Seconds() / c
		out = append(out, instance{labels: labelsFromKey(g), value: r, active: r > o.Above})
	}
	return out
}
