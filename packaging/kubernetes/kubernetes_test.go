package kubernetes

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/aiassist/aiassist/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// manifests are the decoded documents of one rendering, each decoded
// strictly: a field the official type lacks fails the test.
type manifests struct {
	configMap *corev1.ConfigMap
	dep       *appsv1.Deployment
	svc       *corev1.Service
	pdb       *policyv1.PodDisruptionBudget
	hpa       *autoscalingv2.HorizontalPodAutoscaler
	keda      *ScaledObject
}

func decode(t *testing.T, out []byte) manifests {
	t.Helper()
	var m manifests
	docs := strings.Split(string(out), "\n---\n")
	if !strings.HasPrefix(docs[0], "#") {
		t.Fatalf("the output does not start with its comment header: %q", docs[0])
	}
	for _, doc := range docs[1:] {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatal(err)
		}
		var into any
		switch head.APIVersion + " " + head.Kind {
		case "v1 ConfigMap":
			m.configMap = &corev1.ConfigMap{}
			into = m.configMap
		case "apps/v1 Deployment":
			m.dep = &appsv1.Deployment{}
			into = m.dep
		case "v1 Service":
			m.svc = &corev1.Service{}
			into = m.svc
		case "policy/v1 PodDisruptionBudget":
			m.pdb = &policyv1.PodDisruptionBudget{}
			into = m.pdb
		case "autoscaling/v2 HorizontalPodAutoscaler":
			m.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
			into = m.hpa
		case "keda.sh/v1alpha1 ScaledObject":
			m.keda = &ScaledObject{}
			into = m.keda
		default:
			t.Fatalf("unexpected object %s %s", head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("%s does not decode strictly: %v", head.Kind, err)
		}
		// What decodes must write back the same: nothing was dropped.
		again, err := yaml.Marshal(into)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(again)) != strings.TrimSpace(doc) {
			t.Errorf("%s does not round-trip:\n%s\nwant:\n%s", head.Kind, again, doc)
		}
	}
	if m.configMap == nil || m.dep == nil || m.svc == nil || m.pdb == nil {
		t.Fatalf("missing objects: %+v", m)
	}
	return m
}

func render(t *testing.T, file string, opts Options) ([]byte, []string, *schema.Config) {
	t.Helper()
	cfg, err := schema.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := Render(cfg, src, opts)
	if err != nil {
		t.Fatal(err)
	}
	return out, warnings, cfg
}

// TestGolden renders the examples and compares them with testdata;
// -update rewrites them.
func TestGolden(t *testing.T) {
	for _, name := range []string{"config", "secure"} {
		t.Run(name, func(t *testing.T) {
			out, _, _ := render(t, filepath.Join("..", "..", "examples", name+".cue"), Options{})
			golden := filepath.Join("testdata", name+".yaml")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("the manifests of examples/%s.cue differ from %s (run go test -update if the change is meant):\n%s", name, golden, out)
			}
			decode(t, out)
		})
	}
}

// TestExampleConfig checks what the seed's policy in examples/config.cue
// becomes: the HPA's target and scale-down window, and KEDA's cron
// trigger in the schedule's zone and its queue trigger.
func TestExampleConfig(t *testing.T) {
	out, warnings, cfg := render(t, "../../examples/config.cue", Options{Image: "aiassist:1.2.3", Namespace: "ml"})
	m := decode(t, out)
	sc := cfg.Models["tiny-llama"].Scaling

	if m.hpa == nil {
		t.Fatal("no HorizontalPodAutoscaler for a cpu_percent target")
	}
	h := m.hpa.Spec
	if h.Metrics[0].Resource.Name != corev1.ResourceCPU || *h.Metrics[0].Resource.Target.AverageUtilization != 80 {
		t.Errorf("HPA metric = %+v, want CPU at 80 %%", h.Metrics[0].Resource)
	}
	if got := *h.Behavior.ScaleDown.StabilizationWindowSeconds; got != int32(sc.Cooldown.Seconds()) {
		t.Errorf("scale-down stabilization = %ds, want the cooldown %v", got, sc.Cooldown)
	}
	if h.ScaleTargetRef.Name != "aiassist" || h.ScaleTargetRef.Kind != "Deployment" || h.MaxReplicas != 4 {
		t.Errorf("HPA target %+v max %d", h.ScaleTargetRef, h.MaxReplicas)
	}

	if m.keda == nil {
		t.Fatal("no ScaledObject for a config with schedules")
	}
	var crons, proms int
	for _, tr := range m.keda.Spec.Triggers {
		switch tr.Type {
		case "cron":
			crons++
			want := map[string]string{"timezone": "Asia/Shanghai", "start": "0 9 * * 1-5", "end": "0 18 * * 1-5", "desiredReplicas": "2"}
			for k, v := range want {
				if tr.Metadata[k] != v {
					t.Errorf("cron trigger %s = %q, want %q", k, tr.Metadata[k], v)
				}
			}
		case "prometheus":
			proms++
			if !strings.Contains(tr.Metadata["query"], `aiassist_generation_queue_depth{namespace="ml",model="tiny-llama"}`) || tr.Metadata["threshold"] != "8" {
				t.Errorf("prometheus trigger = %v", tr.Metadata)
			}
		}
	}
	if crons != len(sc.Schedules) || proms != 1 {
		t.Errorf("%d cron and %d prometheus triggers, want %d and 1", crons, proms, len(sc.Schedules))
	}
	if m.keda.Annotations[transferHPA] != "true" || m.keda.Spec.Advanced.HorizontalPodAutoscalerConfig.Name != m.hpa.Name {
		t.Errorf("the ScaledObject does not take over the HPA %q: %+v", m.hpa.Name, m.keda.ObjectMeta)
	}

	c := m.dep.Spec.Template.Spec.Containers[0]
	if c.Image != "aiassist:1.2.3" || m.dep.Namespace != "ml" {
		t.Errorf("image %q namespace %q", c.Image, m.dep.Namespace)
	}
	// The config is served from the ConfigMap, unchanged.
	src, _ := os.ReadFile("../../examples/config.cue")
	if m.configMap.Data["config.cue"] != string(src) {
		t.Error("the ConfigMap does not hold the config file as it is")
	}
	// examples/config.cue listens on loopback and names its models
	// relative to itself: both are said.
	joined := strings.Join(warnings, "\n")
	if !strings.Contains(joined, "loopback") || !regexp.MustCompile(`config\.cue:\d+:\d+: models."demo-mlp".path`).MatchString(joined) {
		t.Errorf("warnings = %s", joined)
	}
}

// TestDeploymentHardening checks the pod against the systemd unit's
// hardening, the probes, the drain and the resources.
func TestDeploymentHardening(t *testing.T) {
	out, _, cfg := render(t, "../../examples/secure.cue", Options{})
	m := decode(t, out)
	pod := m.dep.Spec.Template.Spec
	c := pod.Containers[0]
	sc := c.SecurityContext
	if !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext = %+v", sc)
	}
	if !*pod.SecurityContext.RunAsNonRoot || *pod.SecurityContext.RunAsUser == 0 {
		t.Errorf("pod securityContext = %+v", pod.SecurityContext)
	}
	if c.ReadinessProbe.HTTPGet.Path != "/v2/health/ready" || c.LivenessProbe.HTTPGet.Path != "/v2/health/live" || c.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("probes: ready %+v live %+v", c.ReadinessProbe.HTTPGet, c.LivenessProbe.HTTPGet)
	}
	stop := c.Lifecycle.PreStop.Sleep.Seconds
	if grace := *pod.TerminationGracePeriodSeconds; float64(grace) <= float64(stop)+cfg.Server.ShutdownGrace.Seconds() {
		t.Errorf("terminationGracePeriodSeconds %d is not above preStop %ds + shutdown_grace %v", grace, stop, cfg.Server.ShutdownGrace)
	}
	// demo-mlp starts 2 instances and may reach 4; tiny-llama has 1.
	req, lim := c.Resources.Requests[corev1.ResourceCPU], c.Resources.Limits[corev1.ResourceCPU]
	if req.Value() != 3 || lim.Value() != 5 {
		t.Errorf("cpu requests %s limits %s, want 3 and 5", req.String(), lim.String())
	}
	mreq, mlim := c.Resources.Requests[corev1.ResourceMemory], c.Resources.Limits[corev1.ResourceMemory]
	if mreq.Cmp(mlim) >= 0 || mreq.Value() < 128<<20 {
		t.Errorf("memory requests %s limits %s", mreq.String(), mlim.String())
	}
	// The TLS files and the JWT key come from the Secret at the paths the
	// config names; the master key through the init container's copy.
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm.Name + ":" + vm.SubPath
	}
	for p, want := range map[string]string{
		"/etc/aiassist/tls/cert.pem":      "secrets:tls_cert.pem",
		"/etc/aiassist/tls/key.pem":       "secrets:tls_key.pem",
		"/etc/aiassist/jwt/idp-es256.pem": "secrets:jwt_idp-es256.pem",
		"/etc/aiassist/master.key":        "keys:master.key",
		"/etc/aiassist/config":            "config:",
	} {
		if mounts[p] != want {
			t.Errorf("mount at %s = %q, want %q", p, mounts[p], want)
		}
	}
	if len(pod.InitContainers) != 1 || !strings.Contains(strings.Join(pod.InitContainers[0].Command, " "), "chmod 0400 /keys/master.key") || !*pod.InitContainers[0].SecurityContext.RunAsNonRoot {
		t.Errorf("init containers = %+v", pod.InitContainers)
	}
	if c.Args[2] != "/etc/aiassist/config/config.cue" {
		t.Errorf("args = %v", c.Args)
	}
	if m.keda != nil {
		t.Error("a ScaledObject for a config without schedules or queue targets")
	}
	if m.hpa == nil || *m.hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds != 1200 {
		t.Errorf("HPA = %+v, want a scale-down window of the cooldown 20m", m.hpa)
	}
	if m.svc.Spec.Ports[0].Port != 8443 || m.pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("service %+v pdb %+v", m.svc.Spec.Ports, m.pdb.Spec)
	}
}
