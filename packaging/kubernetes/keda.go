package kubernetes

import (
	"strconv"
	"strings"

	"github.com/aiassist/aiassist/schema"
)

// ScaledObject is the part of KEDA's keda.sh/v1alpha1 ScaledObject that
// Render writes. KEDA publishes no Go module light enough to depend on;
// the fields and their JSON names are those of its CRD, and the tests
// decode the output strictly into a copy of this type built on
// k8s.io/api's metadata and HPA behavior.
type ScaledObject struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec is a ScaledObject's spec.
type ScaledObjectSpec struct {
	ScaleTargetRef  ScaleTarget     `json:"scaleTargetRef"`
	MinReplicaCount *int32          `json:"minReplicaCount,omitempty"`
	MaxReplicaCount *int32          `json:"maxReplicaCount,omitempty"`
	Advanced        *AdvancedConfig `json:"advanced,omitempty"`
	Triggers        []ScaleTriggers `json:"triggers"`
}

// ScaleTarget names the Deployment KEDA scales.
type ScaleTarget struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Name       string `json:"name"`
}

// AdvancedConfig is the HPA KEDA manages.
type AdvancedConfig struct {
	HorizontalPodAutoscalerConfig *HPAConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
}

// HPAConfig names the HPA KEDA takes over and its behavior.
type HPAConfig struct {
	Name     string       `json:"name,omitempty"`
	Behavior *hpaBehavior `json:"behavior,omitempty"`
}

// ScaleTriggers is one trigger: cron, cpu or prometheus here.
type ScaleTriggers struct {
	Type       string            `json:"type"`
	Name       string            `json:"name,omitempty"`
	MetricType string            `json:"metricType,omitempty"`
	Metadata   map[string]string `json:"metadata"`
}

// transferHPA makes KEDA (2.12 and later) take over the HPA Render writes
// rather than run a second one on the same Deployment.
const transferHPA = "scaledobject.keda.sh/transfer-hpa-ownership"

// scaledObject scales the Deployment on the models' schedules (cron
// triggers, in their zones) and queue targets (prometheus triggers), and
// on their CPU target as the HPA does, when a model has a schedule or a
// queue target.
func (r *renderer) scaledObject() *ScaledObject {
	var triggers []ScaleTriggers
	for _, m := range r.scaled() {
		per := max(m.StartInstances(), 1)
		for i, s := range m.Scaling.Schedules {
			// Each pod starts with min_instances: the window's instances
			// need this many pods.
			pods := (s.Instances + per - 1) / per
			triggers = append(triggers, ScaleTriggers{
				Type: "cron",
				Name: triggerName(m.Name, "schedule-"+strconv.Itoa(i)),
				Metadata: map[string]string{
					"timezone":        s.Timezone,
					"start":           s.Cron,
					"end":             s.Until,
					"desiredReplicas": strconv.Itoa(max(pods, 1)),
				},
			})
		}
		if q := m.Scaling.Target.QueuePerInstance; q > 0 {
			series := "aiassist_queue_depth"
			if m.Kind == schema.KindCausalLM {
				series = "aiassist_generation_queue_depth"
			}
			triggers = append(triggers, ScaleTriggers{
				Type:       "prometheus",
				Name:       triggerName(m.Name, "queue"),
				MetricType: "AverageValue",
				Metadata: map[string]string{
					"serverAddress": r.opts.Prometheus,
					"query":         `sum(` + series + `{namespace="` + r.opts.Namespace + `",model=` + strconv.Quote(m.Name) + `})`,
					"threshold":     strconv.FormatFloat(q*float64(per), 'f', -1, 64),
				},
			})
		}
	}
	if len(triggers) == 0 {
		return nil
	}
	annotations := map[string]string{}
	var hpaName string
	if percent, _, ok := r.cpuTarget(); ok {
		triggers = append(triggers, ScaleTriggers{
			Type:       "cpu",
			Name:       "cpu",
			MetricType: "Utilization",
			Metadata:   map[string]string{"value": strconv.Itoa(int(percent))},
		})
		annotations[transferHPA] = "true"
		hpaName = r.opts.Name
	}
	meta := r.meta(r.opts.Name)
	if len(annotations) > 0 {
		meta.Annotations = annotations
	}
	return &ScaledObject{
		TypeMeta:   TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject"},
		ObjectMeta: meta,
		Spec: ScaledObjectSpec{
			ScaleTargetRef:  ScaleTarget{APIVersion: "apps/v1", Kind: "Deployment", Name: r.opts.Name},
			MinReplicaCount: ptr(int32(1)),
			MaxReplicaCount: ptr(r.maxReplicas()),
			Advanced:        &AdvancedConfig{HorizontalPodAutoscalerConfig: &HPAConfig{Name: hpaName, Behavior: r.behavior()}},
			Triggers:        triggers,
		},
	}
}

// triggerName is a trigger's name: the model's name and what it is, in
// the lowercase letters, digits and '-' KEDA's names allow.
func triggerName(model, what string) string {
	n := strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			return c
		case c >= 'A' && c <= 'Z':
			return c + 'a' - 'A'
		}
		return '-'
	}, model+"-"+what)
	return n[:min(len(n), 63)]
}
