package kubernetes

import "strconv"

// The Kubernetes objects Render writes, as the fields it sets and no
// more. They are ours rather than k8s.io/api's because those packages
// cost the daemon binary 10 MB and every idle aiassistd serve 8.5 MB of
// resident memory for a subcommand few runs use. The JSON names and
// omitempty follow the API types field by field; the tests decode every
// object strictly into k8s.io/api's types, so a misspelt name fails them.
// Int-or-string fields take the one form Render writes: a port name, or
// a count.

// TypeMeta is an object's apiVersion and kind.
type TypeMeta struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// ObjectMeta is an object's metadata.
type ObjectMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type configMap struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
}

type labelSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

type deployment struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       deploymentSpec `json:"spec"`
	// Status is written empty, as the API type writes it.
	Status struct{} `json:"status"`
}

type deploymentSpec struct {
	Selector *labelSelector     `json:"selector"`
	Template podTemplateSpec    `json:"template"`
	Strategy deploymentStrategy `json:"strategy"`
}

type deploymentStrategy struct {
	Type          string             `json:"type,omitempty"`
	RollingUpdate *rollingUpdateSpec `json:"rollingUpdate,omitempty"`
}

// rollingUpdateSpec's counts are int-or-string in the API.
type rollingUpdateSpec struct {
	MaxUnavailable *int32 `json:"maxUnavailable,omitempty"`
	MaxSurge       *int32 `json:"maxSurge,omitempty"`
}

type podTemplateSpec struct {
	ObjectMeta `json:"metadata"`
	Spec       podSpec `json:"spec"`
}

type podSpec struct {
	Volumes                       []volume            `json:"volumes,omitempty"`
	InitContainers                []containerSpec     `json:"initContainers,omitempty"`
	Containers                    []containerSpec     `json:"containers"`
	TerminationGracePeriodSeconds *int64              `json:"terminationGracePeriodSeconds,omitempty"`
	AutomountServiceAccountToken  *bool               `json:"automountServiceAccountToken,omitempty"`
	SecurityContext               *podSecurityContext `json:"securityContext,omitempty"`
	EnableServiceLinks            *bool               `json:"enableServiceLinks,omitempty"`
}

type podSecurityContext struct {
	RunAsUser      *int64          `json:"runAsUser,omitempty"`
	RunAsGroup     *int64          `json:"runAsGroup,omitempty"`
	RunAsNonRoot   *bool           `json:"runAsNonRoot,omitempty"`
	FSGroup        *int64          `json:"fsGroup,omitempty"`
	SeccompProfile *seccompProfile `json:"seccompProfile,omitempty"`
}

type seccompProfile struct {
	Type string `json:"type"`
}

type containerSpec struct {
	Name                     string           `json:"name"`
	Image                    string           `json:"image,omitempty"`
	Command                  []string         `json:"command,omitempty"`
	Args                     []string         `json:"args,omitempty"`
	Ports                    []containerPort  `json:"ports,omitempty"`
	Resources                resources        `json:"resources"`
	VolumeMounts             []volumeMount    `json:"volumeMounts,omitempty"`
	LivenessProbe            *probeSpec       `json:"livenessProbe,omitempty"`
	ReadinessProbe           *probeSpec       `json:"readinessProbe,omitempty"`
	StartupProbe             *probeSpec       `json:"startupProbe,omitempty"`
	Lifecycle                *lifecycle       `json:"lifecycle,omitempty"`
	TerminationMessagePolicy string           `json:"terminationMessagePolicy,omitempty"`
	SecurityContext          *securityContext `json:"securityContext,omitempty"`
}

type containerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
}

// resources maps "cpu" and "memory" to quantities written as the API
// writes them (see quantity).
type resources struct {
	Limits   map[string]string `json:"limits,omitempty"`
	Requests map[string]string `json:"requests,omitempty"`
}

type volumeMount struct {
	Name      string `json:"name"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
	MountPath string `json:"mountPath"`
	SubPath   string `json:"subPath,omitempty"`
}

type probeSpec struct {
	HTTPGet          *httpGetAction `json:"httpGet,omitempty"`
	TimeoutSeconds   int32          `json:"timeoutSeconds,omitempty"`
	PeriodSeconds    int32          `json:"periodSeconds,omitempty"`
	FailureThreshold int32          `json:"failureThreshold,omitempty"`
}

// httpGetAction's port is int-or-string in the API; Render names it.
type httpGetAction struct {
	Path   string `json:"path,omitempty"`
	Port   string `json:"port"`
	Scheme string `json:"scheme,omitempty"`
}

type lifecycle struct {
	PreStop *lifecycleHandler `json:"preStop,omitempty"`
}

type lifecycleHandler struct {
	Sleep *sleepAction `json:"sleep,omitempty"`
}

type sleepAction struct {
	Seconds int64 `json:"seconds"`
}

type securityContext struct {
	Capabilities             *capabilities   `json:"capabilities,omitempty"`
	Privileged               *bool           `json:"privileged,omitempty"`
	RunAsNonRoot             *bool           `json:"runAsNonRoot,omitempty"`
	ReadOnlyRootFilesystem   *bool           `json:"readOnlyRootFilesystem,omitempty"`
	AllowPrivilegeEscalation *bool           `json:"allowPrivilegeEscalation,omitempty"`
	SeccompProfile           *seccompProfile `json:"seccompProfile,omitempty"`
}

type capabilities struct {
	Drop []string `json:"drop,omitempty"`
}

type volume struct {
	Name                  string                 `json:"name"`
	EmptyDir              *emptyDirVolume        `json:"emptyDir,omitempty"`
	Secret                *secretVolume          `json:"secret,omitempty"`
	PersistentVolumeClaim *claimVolume           `json:"persistentVolumeClaim,omitempty"`
	Projected             *projectedVolumeSource `json:"projected,omitempty"`
}

type emptyDirVolume struct {
	Medium string `json:"medium,omitempty"`
}

type secretVolume struct {
	SecretName string      `json:"secretName,omitempty"`
	Items      []keyToPath `json:"items,omitempty"`
}

type claimVolume struct {
	ClaimName string `json:"claimName"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

type projectedVolumeSource struct {
	Sources []volumeProjection `json:"sources"`
}

type volumeProjection struct {
	Secret    *projection `json:"secret,omitempty"`
	ConfigMap *projection `json:"configMap,omitempty"`
}

// projection is a Secret's or a ConfigMap's files in a projected volume.
type projection struct {
	Name  string      `json:"name,omitempty"`
	Items []keyToPath `json:"items,omitempty"`
}

type keyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
	Mode *int32 `json:"mode,omitempty"`
}

type service struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       serviceSpec `json:"spec"`
	// Status is written empty, as the API type writes it.
	Status struct {
		LoadBalancer struct{} `json:"loadBalancer"`
	} `json:"status"`
}

type serviceSpec struct {
	Ports    []servicePort     `json:"ports,omitempty"`
	Selector map[string]string `json:"selector,omitempty"`
}

// servicePort's targetPort is int-or-string in the API; Render names it.
type servicePort struct {
	Name       string `json:"name,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Port       int32  `json:"port"`
	TargetPort string `json:"targetPort,omitempty"`
}

type podDisruptionBudget struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       pdbSpec `json:"spec"`
	// Status is written zero, as the API type writes it.
	Status struct {
		DisruptionsAllowed int32 `json:"disruptionsAllowed"`
		CurrentHealthy     int32 `json:"currentHealthy"`
		DesiredHealthy     int32 `json:"desiredHealthy"`
		ExpectedPods       int32 `json:"expectedPods"`
	} `json:"status"`
}

// pdbSpec's maxUnavailable is int-or-string in the API.
type pdbSpec struct {
	Selector       *labelSelector `json:"selector,omitempty"`
	MaxUnavailable *int32         `json:"maxUnavailable,omitempty"`
}

type horizontalPodAutoscaler struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       hpaSpec `json:"spec"`
	// Status is written zero, as the API type writes it.
	Status struct {
		CurrentMetrics  []struct{} `json:"currentMetrics"`
		DesiredReplicas int32      `json:"desiredReplicas"`
	} `json:"status"`
}

type hpaSpec struct {
	ScaleTargetRef targetRef    `json:"scaleTargetRef"`
	MinReplicas    *int32       `json:"minReplicas,omitempty"`
	MaxReplicas    int32        `json:"maxReplicas"`
	Metrics        []metricSpec `json:"metrics,omitempty"`
	Behavior       *hpaBehavior `json:"behavior,omitempty"`
}

type targetRef struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	APIVersion string `json:"apiVersion,omitempty"`
}

type metricSpec struct {
	Type     string                `json:"type"`
	Resource *resourceMetricSource `json:"resource,omitempty"`
}

type resourceMetricSource struct {
	Name   string       `json:"name"`
	Target metricTarget `json:"target"`
}

type metricTarget struct {
	Type               string `json:"type"`
	AverageUtilization *int32 `json:"averageUtilization,omitempty"`
}

// hpaBehavior is an HPA's behavior, in the HPA and in KEDA's
// ScaledObject alike.
type hpaBehavior struct {
	ScaleUp   *scalingRules `json:"scaleUp,omitempty"`
	ScaleDown *scalingRules `json:"scaleDown,omitempty"`
}

type scalingRules struct {
	StabilizationWindowSeconds *int32 `json:"stabilizationWindowSeconds,omitempty"`
}

// quantity writes n (cores or bytes) as resource.Quantity writes a whole
// number in its canonical form: with binary, in the largest of Ki, Mi,
// ... that keeps it whole, below 1024 plainly; else in the largest of k,
// M, ... that does.
func quantity(n int64, binary bool) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var digits int64
	var suffix string
	if binary && n >= 1024 {
		times := 0
		for n >= 1024 && n%1024 == 0 {
			n, times = n/1024, times+1
		}
		digits, suffix = n, []string{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}[times]
	} else {
		times := 0
		for n >= 1000 && n%1000 == 0 {
			n, times = n/1000, times+1
		}
		digits, suffix = n, []string{"", "k", "M", "G", "T", "P", "E"}[times]
	}
	s := strconv.FormatInt(digits, 10) + suffix
	if neg {
		s = "-" + s
	}
	return s
}
