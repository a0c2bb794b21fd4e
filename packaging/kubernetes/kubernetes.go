// Package kubernetes renders, from a loaded config, the manifests that run
// aiassistd on Kubernetes: a Deployment hardened as the systemd unit is, a
// Service, the config in a ConfigMap, a reference to the Secret that holds
// the master key and TLS files, a PodDisruptionBudget, a
// HorizontalPodAutoscaler for the models' CPU target, and, when a model
// has schedules or a queue target, a KEDA ScaledObject. The objects are
// the package's own small copies of the API types (objects.go), written
// as plain YAML for kubectl apply.
package kubernetes

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/embed"
	"github.com/aiassist/aiassist/engine/generate"
	"github.com/aiassist/aiassist/schema"
)

// Where things are in the pod.
const (
	// ConfigDir holds config.cue, and the Secret's files the config
	// names relative to itself: one projected volume, so that the
	// daemon's watch of the directory follows the ConfigMap's and the
	// Secret's ..data swaps alike. Other Secret files are mounted one by
	// one at the paths the config names.
	ConfigDir = "/etc/aiassist/config"
	// DefaultModelsDir is where the models volume is mounted when the
	// config's model paths share no other directory.
	DefaultModelsDir = "/var/lib/aiassist/models"
	// uid and gid of the daemon: any non-root id works, the image's
	// files being world-readable.
	runAs = 65532
	// preStopSeconds is how long a terminating pod keeps serving before
	// the daemon is told to stop: the time the endpoints controller and
	// the Service's proxies need to stop sending it requests. The daemon
	// then drains within server.shutdown_grace.
	preStopSeconds = 5
)

// Options configures Render.
type Options struct {
	// Image is the container image. Default: "aiassist:latest".
	Image string
	// Namespace of every object. Default: "default".
	Namespace string
	// Name of every object. Default: "aiassist".
	Name string
	// ModelsClaim is the PersistentVolumeClaim holding the models.
	// Default: "aiassist-models".
	ModelsClaim string
	// SecretName is the Secret with the master key and TLS files the
	// config names. Default: "aiassist-secrets".
	SecretName string
	// InitImage runs the init container that copies the master key with
	// the mode the daemon requires; it needs sh, cp and chmod.
	// Default: "busybox:1.37".
	InitImage string
	// MaxReplicas bounds the autoscalers. Default: the largest
	// max_instances of the models, at least 2.
	MaxReplicas int
	// Prometheus is the server KEDA's prometheus trigger asks for the
	// queue depth. Default: "http://prometheus.monitoring.svc:9090".
	Prometheus string
}

func (o *Options) defaults() {
	if o.Image == "" {
		o.Image = "aiassist:latest"
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Name == "" {
		o.Name = "aiassist"
	}
	if o.ModelsClaim == "" {
		o.ModelsClaim = "aiassist-models"
	}
	if o.SecretName == "" {
		o.SecretName = "aiassist-secrets"
	}
	if o.InitImage == "" {
		o.InitImage = "busybox:1.37"
	}
	if o.Prometheus == "" {
		o.Prometheus = "http://prometheus.monitoring.svc:9090"
	}
}

// Render returns the manifests for cfg, whose file's text is src, as YAML
// documents, and the warnings an operator should read first (a listener
// only on loopback, a model outside the models volume).
func Render(cfg *schema.Config, src []byte, opts Options) ([]byte, []string, error) {
	opts.defaults()
	r := &renderer{cfg: cfg, opts: opts, src: src}
	objs := []any{r.configMap(src)}
	dep, err := r.deployment()
	if err != nil {
		return nil, nil, err
	}
	objs = append(objs, dep, r.service(), r.pdb())
	if hpa := r.hpa(); hpa != nil {
		objs = append(objs, hpa)
	}
	if so := r.scaledObject(); so != nil {
		objs = append(objs, so)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "# Rendered by aiassistd export kubernetes from %s.\n", filepath.Base(cfg.Path))
	fmt.Fprintf(&out, "# The Secret %q and the PersistentVolumeClaim %q are yours to create.\n", opts.SecretName, opts.ModelsClaim)
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, nil, err
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return out.Bytes(), r.warnings, nil
}

type renderer struct {
	cfg      *schema.Config
	src      []byte
	served   *schema.Listener // the listener(), once chosen
	opts     Options
	warnings []string
}

func (r *renderer) warnf(format string, args ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

func (r *renderer) meta(name string) ObjectMeta {
	return ObjectMeta{Name: name, Namespace: r.opts.Namespace, Labels: r.labels()}
}

func (r *renderer) labels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": r.opts.Name}
}

func (r *renderer) configMap(src []byte) *configMap {
	return &configMap{
		TypeMeta:   TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: r.meta(r.opts.Name + "-config"),
		Data:       map[string]string{"config.cue": string(src)},
	}
}

// listener is the listener the Service and the probes use: the first
// that is not on loopback, else the first.
func (r *renderer) listener() schema.Listener {
	if r.served != nil {
		return *r.served
	}
	r.served = &r.cfg.Listeners[0]
	for i, l := range r.cfg.Listeners {
		if !loopback(l.Address) {
			r.served = &r.cfg.Listeners[i]
			return l
		}
	}
	l := r.cfg.Listeners[0]
	r.warnf("listeners: every listener is on loopback (%s): the kubelet's probes and the Service cannot reach the pod; add a listener with address \"\" or \"0.0.0.0\" (and auth or limits for it)", l.Address)
	return l
}

func loopback(addr string) bool {
	return addr == "localhost" || strings.HasPrefix(addr, "127.") || addr == "::1"
}

// inPod maps a file the config names to its path in the pod: a path the
// file writes relative (so under the config's directory) lands under
// ConfigDir as the daemon resolves it there; an absolute one stays.
func (r *renderer) inPod(p string) string {
	dir := filepath.Dir(r.cfg.Path)
	if rel, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(rel, "..") {
		return path.Join(ConfigDir, filepath.ToSlash(rel))
	}
	return p
}

// secretFile is a file the Secret holds: its key there and where the pod
// finds it.
type secretFile struct {
	key  string
	path string // absolute, in the pod
}

// secrets are the files the Secret holds: the listeners' certificates,
// keys and client CAs, the JWT key files, and, when a value needs it, the
// master key (returned apart: see deployment).
func (r *renderer) secrets() (files []secretFile, masterKey *secretFile) {
	seen := map[string]bool{}
	file := func(p string) secretFile {
		p = r.inPod(p)
		return secretFile{key: secretKey(p), path: p}
	}
	add := func(p string) {
		if p == "" || seen[p] {
			return
		}
		seen[p] = true
		files = append(files, file(p))
	}
	for _, l := range r.cfg.Listeners {
		if l.TLS != nil {
			add(l.TLS.Cert)
			add(l.TLS.Key)
			add(l.TLS.ClientCA)
		}
	}
	if j := r.cfg.Auth.JWT; j != nil {
		for _, k := range j.PublicKeys {
			add(k.File)
		}
		add(j.JWKSFile)
	}
	slices.SortFunc(files, func(a, b secretFile) int { return strings.Compare(a.path, b.path) })
	if bytes.Contains(r.src, []byte("enc:v1:")) || r.cfg.Logging.EncryptPrompts {
		mk := file(r.cfg.Secrets.KeyFile)
		if strings.HasPrefix(mk.path, ConfigDir+"/") {
			r.warnf("secrets.key_file: %s is in %s, the ConfigMap's read-only volume, where the daemon's own copy of the key cannot go; write it as an absolute path elsewhere, such as /etc/aiassist/master.key", mk.path, ConfigDir)
		} else {
			masterKey = &mk
		}
	}
	return files, masterKey
}

// secretKey is a file's key in the Secret: its path in the pod, less a
// leading /etc/aiassist/, with "/" written "_", as keys allow only
// letters, digits, '-', '_' and '.'.
func secretKey(p string) string {
	p = strings.TrimPrefix(p, ConfigDir+"/")
	p = strings.TrimPrefix(p, "/etc/aiassist/")
	return strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "_")
}

// modelsDir is where the models volume is mounted: the directory the
// model paths share. A model outside it is warned of.
func (r *renderer) modelsDir() string {
	var dirs []string
	for _, name := range r.cfg.ModelNames() {
		p := r.inPod(r.cfg.Models[name].Path)
		if strings.HasPrefix(p, ConfigDir+"/") {
			continue
		}
		dirs = append(dirs, path.Dir(p))
	}
	dir := commonDir(dirs)
	if dir == "" || dir == "/" || strings.HasPrefix(dir+"/", ConfigDir+"/") {
		dir = DefaultModelsDir
	}
	for _, name := range r.cfg.ModelNames() {
		m := r.cfg.Models[name]
		if p := r.inPod(m.Path); !strings.HasPrefix(p, dir+"/") {
			at := m.FieldPath("path")
			if pos := r.cfg.Pos(at); pos != "" {
				at = pos + ": " + at
			}
			r.warnf("%s: the pod would look for the model at %s, outside the models volume at %s; copy the model into the volume %q and write its path as an absolute path under %s", at, p, dir, r.opts.ModelsClaim, dir)
		}
	}
	return dir
}

func commonDir(dirs []string) string {
	if len(dirs) == 0 {
		return ""
	}
	common := dirs[0]
	for _, d := range dirs[1:] {
		for common != "/" && d != common && !strings.HasPrefix(d, common+"/") {
			common = path.Dir(common)
		}
	}
	return common
}

// sizes is what a model's files take on disk, or 0 if they cannot be
// read here.
func (r *renderer) size(m schema.Model) int64 {
	var files []string
	var err error
	switch m.Kind {
	case schema.KindCausalLM:
		files, err = generate.ModelFiles(m.Path)
	case schema.KindEmbedding:
		files, err = embed.ModelFiles(m.Path)
	default:
		files, err = engine.TensorModelFiles(m.Path)
	}
	if err != nil {
		r.warnf("%s: cannot read the model here to size the pod's memory (%v); 1 GiB is assumed", m.FieldPath("path"), errors.Unwrap(err))
		return 1 << 30
	}
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}

// maxOf is the most instances a model may run in one pod.
func maxOf(m schema.Model) int {
	if m.Scaling != nil {
		return m.Scaling.MaxInstances
	}
	return m.Instances
}

// resources: CPU requests are the cores the instances a pod starts with
// take (intra_op_threads each), limits those of its most instances;
// memory requests are 128 MiB and each model's files once per instance it
// starts with and once for loading, limits 256 MiB and twice the files per
// instance at the most, and once more.
func (r *renderer) resources() resources {
	var cpuReq, cpuLim int
	memReq, memLim := int64(128<<20), int64(256<<20)
	for _, name := range r.cfg.ModelNames() {
		m := r.cfg.Models[name]
		threads := max(m.IntraOpThreads, 1)
		cpuReq += threads * m.StartInstances()
		cpuLim += threads * maxOf(m)
		size := r.size(m)
		memReq += size * int64(m.StartInstances()+1)
		memLim += 2 * size * int64(maxOf(m)+1)
	}
	// Memory is rounded up to whole MiB.
	mib := func(n int64) string { return quantity((n+1<<20-1)>>20<<20, true) }
	return resources{
		Requests: map[string]string{"cpu": quantity(int64(cpuReq), false), "memory": mib(memReq)},
		Limits:   map[string]string{"cpu": quantity(int64(cpuLim), false), "memory": mib(memLim)},
	}
}

func (r *renderer) deployment() (*deployment, error) {
	l := r.listener()
	scheme := "HTTP"
	portName := "http"
	if l.TLS != nil {
		scheme, portName = "HTTPS", "https"
		if l.TLS.ClientCA != "" {
			r.warnf("listeners: the listener on port %d requires client certificates, which the kubelet's probes do not send; serve the probes on a listener without client_ca", l.Port)
		}
	}
	probe := func(p string, period int32) *probeSpec {
		return &probeSpec{
			HTTPGet:          &httpGetAction{Path: p, Port: portName, Scheme: scheme},
			PeriodSeconds:    period,
			TimeoutSeconds:   2,
			FailureThreshold: 3,
		}
	}
	grace := int64(math.Ceil(r.cfg.Server.ShutdownGrace.Seconds())) + preStopSeconds + 10
	modelsDir := r.modelsDir()
	secrets, masterKey := r.secrets()
	projected := []volumeProjection{{ConfigMap: &projection{
		Name:  r.opts.Name + "-config",
		Items: []keyToPath{{Key: "config.cue", Path: "config.cue"}},
	}}}
	mode := int32(0o440)
	var inConfig, apart []keyToPath
	var secretMounts []volumeMount
	for _, f := range secrets {
		if rel, ok := strings.CutPrefix(f.path, ConfigDir+"/"); ok {
			inConfig = append(inConfig, keyToPath{Key: f.key, Path: rel, Mode: &mode})
			continue
		}
		// One file at its path: a renewed one needs a rollout, as
		// a file mount does not follow the Secret.
		apart = append(apart, keyToPath{Key: f.key, Path: f.key, Mode: &mode})
		secretMounts = append(secretMounts, volumeMount{Name: "secrets", MountPath: f.path, SubPath: f.key, ReadOnly: true})
	}
	if len(inConfig) > 0 {
		projected = append(projected, volumeProjection{Secret: &projection{Name: r.opts.SecretName, Items: inConfig}})
	}
	yes, no := true, false
	uid := int64(runAs)
	startup := probe("/v2/health/ready", 5)
	// Loading large models takes a while, as TimeoutStartSec allows for
	// in the systemd unit: five minutes before liveness counts.
	startup.FailureThreshold = 60
	container := containerSpec{
		Name:  "aiassistd",
		Image: r.opts.Image,
		Args:  []string{"serve", "-config", ConfigDir + "/config.cue"},
		Ports: []containerPort{{Name: portName, ContainerPort: int32(l.Port), Protocol: "TCP"}},
		// The scaling controllers' core budget, GOMAXPROCS, follows the
		// container's CPU limit.
		Resources:      r.resources(),
		StartupProbe:   startup,
		ReadinessProbe: probe("/v2/health/ready", 5),
		LivenessProbe:  probe("/v2/health/live", 10),
		Lifecycle: &lifecycle{
			PreStop: &lifecycleHandler{Sleep: &sleepAction{Seconds: preStopSeconds}},
		},
		VolumeMounts: append([]volumeMount{
			{Name: "config", MountPath: ConfigDir, ReadOnly: true},
			{Name: "models", MountPath: modelsDir, ReadOnly: true},
			// The admin socket and ONNX Runtime's scratch files.
			{Name: "run", MountPath: "/run/aiassist"},
			{Name: "tmp", MountPath: "/tmp"},
		}, secretMounts...),
		SecurityContext:          hardened(),
		TerminationMessagePolicy: "FallbackToLogsOnError",
	}
	volumes := []volume{
		{Name: "config", Projected: &projectedVolumeSource{Sources: projected}},
		{Name: "models", PersistentVolumeClaim: &claimVolume{ClaimName: r.opts.ModelsClaim, ReadOnly: true}},
		{Name: "run", EmptyDir: &emptyDirVolume{Medium: "Memory"}},
		{Name: "tmp", EmptyDir: &emptyDirVolume{}},
	}
	var inits []containerSpec
	if masterKey != nil {
		// The kubelet gives a Secret's files to root, readable by the
		// pod's fsGroup, and the daemon refuses a key file that group or
		// others may read: an init container, as the daemon's user,
		// copies it into a memory volume with mode 0400.
		apart = append(apart, keyToPath{Key: masterKey.key, Path: masterKey.key, Mode: &mode})
		inits = append(inits, containerSpec{
			Name:    "master-key",
			Image:   r.opts.InitImage,
			Command: []string{"sh", "-c", "cp /secrets/" + masterKey.key + " /keys/master.key && chmod 0400 /keys/master.key"},
			VolumeMounts: []volumeMount{
				{Name: "secrets", MountPath: "/secrets", ReadOnly: true},
				{Name: "keys", MountPath: "/keys"},
			},
			Resources: resources{
				Limits: map[string]string{"cpu": "100m", "memory": "32Mi"},
			},
			SecurityContext:          hardened(),
			TerminationMessagePolicy: "FallbackToLogsOnError",
		})
		container.VolumeMounts = append(container.VolumeMounts, volumeMount{Name: "keys", MountPath: masterKey.path, SubPath: "master.key", ReadOnly: true})
		volumes = append(volumes, volume{Name: "keys", EmptyDir: &emptyDirVolume{Medium: "Memory"}})
	}
	if len(apart) > 0 {
		volumes = append(volumes, volume{Name: "secrets", Secret: &secretVolume{SecretName: r.opts.SecretName, Items: apart}})
	}
	annotations := map[string]string{}
	if r.cfg.Metrics.Enabled && !r.cfg.Metrics.RequireAuth {
		annotations["prometheus.io/scrape"] = "true"
		annotations["prometheus.io/port"] = strconv.Itoa(l.Port)
		annotations["prometheus.io/path"] = r.cfg.Metrics.Path
		if l.TLS != nil {
			annotations["prometheus.io/scheme"] = "https"
		}
	}
	return &deployment{
		TypeMeta:   TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: r.meta(r.opts.Name),
		Spec: deploymentSpec{
			// No replicas: the autoscaler owns the count, and an apply
			// does not reset it.
			Selector: &labelSelector{MatchLabels: r.labels()},
			Strategy: deploymentStrategy{
				Type: "RollingUpdate",
				RollingUpdate: &rollingUpdateSpec{
					MaxUnavailable: ptr(int32(0)),
					MaxSurge:       ptr(int32(1)),
				},
			},
			Template: podTemplateSpec{
				ObjectMeta: ObjectMeta{Labels: r.labels(), Annotations: annotations},
				Spec: podSpec{
					TerminationGracePeriodSeconds: &grace,
					AutomountServiceAccountToken:  &no,
					EnableServiceLinks:            &no,
					SecurityContext: &podSecurityContext{
						RunAsNonRoot:   &yes,
						RunAsUser:      &uid,
						RunAsGroup:     &uid,
						FSGroup:        &uid,
						SeccompProfile: &seccompProfile{Type: "RuntimeDefault"},
					},
					InitContainers: inits,
					Containers:     []containerSpec{container},
					Volumes:        volumes,
				},
			},
		},
	}, nil
}

func ptr[T any](v T) *T { return &v }

// hardened is the systemd unit's hardening as a container's
// securityContext: no root, no writes outside the volumes, no
// capabilities, no privilege escalation, the runtime's seccomp filter.
func hardened() *securityContext {
	yes, no := true, false
	return &securityContext{
		RunAsNonRoot:             &yes,
		ReadOnlyRootFilesystem:   &yes,
		AllowPrivilegeEscalation: &no,
		Privileged:               &no,
		Capabilities:             &capabilities{Drop: []string{"ALL"}},
		SeccompProfile:           &seccompProfile{Type: "RuntimeDefault"},
	}
}

func (r *renderer) service() *service {
	l := r.listener()
	name := "http"
	if l.TLS != nil {
		name = "https"
	}
	return &service{
		TypeMeta:   TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: r.meta(r.opts.Name),
		Spec: serviceSpec{
			Selector: r.labels(),
			Ports:    []servicePort{{Name: name, Port: int32(l.Port), TargetPort: name, Protocol: "TCP"}},
		},
	}
}

func (r *renderer) pdb() *podDisruptionBudget {
	return &podDisruptionBudget{
		TypeMeta:   TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: r.meta(r.opts.Name),
		Spec: pdbSpec{
			// One pod at a time may go, so a node drain proceeds even
			// with one replica, and never takes two at once.
			MaxUnavailable: ptr(int32(1)),
			Selector:       &labelSelector{MatchLabels: r.labels()},
		},
	}
}

// scaled are the models with a scaling block, sorted.
func (r *renderer) scaled() []schema.Model {
	var out []schema.Model
	for _, name := range r.cfg.ModelNames() {
		if m := r.cfg.Models[name]; m.Scaling != nil {
			out = append(out, m)
		}
	}
	return out
}

func (r *renderer) maxReplicas() int32 {
	if r.opts.MaxReplicas > 0 {
		return int32(r.opts.MaxReplicas)
	}
	n := 2
	for _, m := range r.scaled() {
		n = max(n, m.Scaling.MaxInstances)
	}
	return int32(n)
}

// cpuTarget is the lowest cpu_percent of the models, and the longest
// cooldown: one pod serves them all, so it scales for the most eager.
func (r *renderer) cpuTarget() (percent int32, cooldown time.Duration, ok bool) {
	for _, m := range r.scaled() {
		cooldown = max(cooldown, m.Scaling.Cooldown)
		if p := m.Scaling.Target.CPUPercent; p > 0 && (!ok || int32(math.Ceil(p)) < percent) {
			percent, ok = int32(math.Ceil(p)), true
		}
	}
	return percent, cooldown, ok
}

func (r *renderer) behavior() *hpaBehavior {
	_, cooldown, _ := r.cpuTarget()
	var window time.Duration
	for _, m := range r.scaled() {
		window = max(window, m.Scaling.Target.For)
	}
	return &hpaBehavior{
		ScaleUp:   &scalingRules{StabilizationWindowSeconds: ptr(int32(window.Seconds()))},
		ScaleDown: &scalingRules{StabilizationWindowSeconds: ptr(int32(cooldown.Seconds()))},
	}
}

// hpa scales the Deployment on CPU when a model has a cpu_percent.
func (r *renderer) hpa() *horizontalPodAutoscaler {
	percent, _, ok := r.cpuTarget()
	if !ok {
		return nil
	}
	return &horizontalPodAutoscaler{
		TypeMeta:   TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: r.meta(r.opts.Name),
		Spec: hpaSpec{
			ScaleTargetRef: targetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: r.opts.Name},
			MinReplicas:    ptr(int32(1)),
			MaxReplicas:    r.maxReplicas(),
			Metrics: []metricSpec{{
				Type: "Resource",
				Resource: &resourceMetricSource{
					Name:   "cpu",
					Target: metricTarget{Type: "Utilization", AverageUtilization: &percent},
				},
			}},
			Behavior: r.behavior(),
		},
	}
}
