package daemon

import (
	"slices"
	"time"

	"github.com/aiassist/aiassist/daemon/api"
	"github.com/aiassist/aiassist/daemon/gate"
	"github.com/aiassist/aiassist/daemon/observe"
	"github.com/aiassist/aiassist/schema"
)

// statusDoc is what /status.json serves: the operator's view of the
// daemon, read by the status page and by scripts. Field names are part of
// the API.
type statusDoc struct {
	Time          time.Time        `json:"time"`
	Live          bool             `json:"live"`
	Ready         bool             `json:"ready"`
	Version       string           `json:"version"`
	ONNXRuntime   string           `json:"onnxruntime"`
	StartedAt     time.Time        `json:"started_at"`
	UptimeSeconds float64          `json:"uptime_seconds"`
	Generation    uint64           `json:"generation"`
	LastReload    reloadStatus     `json:"last_reload"`
	Models        []modelStatus    `json:"models"`
	Listeners     []listenerStatus `json:"listeners"`
	Alerts        []alertStatus    `json:"alerts"`
	KeysExpiring  []gate.KeyExpiry `json:"keys_expiring"`
	Traffic       observe.Totals   `json:"traffic"`
}

// reloadStatus is the last load of the config: the first one at start,
// or the last reload.
type reloadStatus struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	Result string    `json:"result"` // success, unchanged or failure
	// Error is the first line of a failed reload's error, with the
	// file:line:col of a bad config.
	Error string `json:"error,omitempty"`
}

type modelStatus struct {
	Name            string  `json:"name"`
	Kind            string  `json:"kind"`
	Path            string  `json:"path"`
	Instances       int     `json:"instances"`
	QueueDepth      int     `json:"queue_depth"`
	ActiveSequences *int    `json:"active_sequences,omitempty"` // causal-lm only
	MaxSequences    int     `json:"max_sequences,omitempty"`
	LoadedAt        string  `json:"loaded_at"`
	LoadSeconds     float64 `json:"load_seconds"`
	Quantization    string  `json:"quantization"`
}

type listenerStatus struct {
	Address string `json:"address"`
	TLS     bool   `json:"tls"`
}

type alertStatus struct {
	Name     string            `json:"name"`
	State    string            `json:"state"`
	Labels   map[string]string `json:"labels,omitempty"`
	Value    float64           `json:"value"`
	Summary  string            `json:"summary,omitempty"`
	ActiveAt time.Time         `json:"active_at"`
	FiredAt  *time.Time        `json:"fired_at,omitempty"`
}

// recordStart keeps the first load of the config for the status page;
// reload records the later ones.
func (d *Daemon) recordStart() {
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	d.lastLoad = reloadStatus{Time: time.Now().UTC(), Source: "start", Result: resultSuccess}
}

// statusOf builds the status document; st is the state the request holds.
func (d *Daemon) statusOf(st *api.State) any {
	now := time.Now()
	doc := statusDoc{
		Time: now.UTC(), Live: true, Ready: d.ready.Load(), Version: d.opts.Version, ONNXRuntime: d.rt.Version(),
		StartedAt: d.started.UTC(), UptimeSeconds: now.Sub(d.started).Seconds(), Generation: st.Generation,
		Traffic: d.api.Traffic(), Models: []modelStatus{}, Listeners: []listenerStatus{}, Alerts: []alertStatus{}, KeysExpiring: []gate.KeyExpiry{},
	}
	d.statusMu.Lock()
	doc.LastReload = d.lastLoad
	d.statusMu.Unlock()
	// The request's state is open while it runs; d.current may be newer,
	// but then it is open too.
	cur := d.current.Load()
	if cur == nil {
		return doc
	}
	for _, name := range cur.cfg.ModelNames() {
		lm := cur.models[name]
		if lm == nil {
			continue
		}
		ms := modelStatus{Name: name, Kind: string(lm.spec.Kind), Path: lm.spec.Path,
			LoadedAt: lm.loadedAt.UTC().Format(time.RFC3339), LoadSeconds: lm.loadTime.Seconds(), Quantization: quantizationOf(lm.spec)}
		switch {
		case lm.gen != nil:
			n := lm.gen.ActiveSequences()
			ms.ActiveSequences, ms.MaxSequences, ms.QueueDepth, ms.Instances = &n, lm.gen.MaxSequences(), lm.gen.QueueDepth(), lm.gen.Instances()
		case lm.model != nil:
			ms.QueueDepth, ms.Instances = lm.model.QueueDepth(), lm.model.Instances()
		}
		doc.Models = append(doc.Models, ms)
	}
	for _, e := range d.net.Endpoints() {
		doc.Listeners = append(doc.Listeners, listenerStatus{Address: e.Addr.String(), TLS: e.TLS != nil})
	}
	if d.alerts != nil {
		for _, a := range d.alerts.Alerts() {
			as := alertStatus{Name: a.Name, State: a.State, Labels: a.Labels, Value: a.Value, Summary: a.Annotations["summary"], ActiveAt: a.ActiveAt}
			if !a.FiredAt.IsZero() {
				t := a.FiredAt
				as.FiredAt = &t
			}
			doc.Alerts = append(doc.Alerts, as)
		}
		slices.SortFunc(doc.Alerts, func(a, b alertStatus) int { return a.ActiveAt.Compare(b.ActiveAt) })
	}
	if st.Gate != nil {
		doc.KeysExpiring = append(doc.KeysExpiring, st.Gate.ExpiringKeys(cur.cfg.Alerts.KeyExpiring.Within)...)
	}
	return doc
}

// quantizationOf is the form the model runs in: "none" or "int8".
func quantizationOf(m schema.Model) string {
	if m.Quantization == "" {
		return schema.QuantizationNone
	}
	return m.Quantization
}
