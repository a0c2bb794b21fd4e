package kubernetes

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// kedaScaledObject is ScaledObject as it was written on k8s.io/api's
// metadata and HPA behavior, the types KEDA's own ScaledObject is built
// on: the package's own copies of those must decode into it.
type kedaScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef  ScaleTarget `json:"scaleTargetRef"`
		MinReplicaCount *int32      `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32      `json:"maxReplicaCount,omitempty"`
		Advanced        *struct {
			HorizontalPodAutoscalerConfig *struct {
				Name     string                                         `json:"name,omitempty"`
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
		} `json:"advanced,omitempty"`
		Triggers []ScaleTriggers `json:"triggers"`
	} `json:"spec"`
}

// relativeConfig names its TLS files relative to itself, so that they
// reach the pod through the config's projected volume, and sizes a pod in
// thousands of cores: neither example does.
const relativeConfig = `
listeners: [{address: "", port: 8443, tls: {cert: "tls/cert.pem", key: "tls/key.pem", client_ca: "tls/ca.pem"}}]
auth: open: true
models: m: {kind: "tensor", path: "/srv/models/m.onnx", instances: 50, intra_op_threads: 20}
`

// TestAPITypes decodes every object Render writes, for both examples and
// a config that names its files relative to itself, strictly into
// k8s.io/api's types (KEDA's ScaledObject into the same on k8s.io/api's
// metadata), and writes each back: a field name the package's own types
// misspell, or an empty field the API types would leave out, fails.
func TestAPITypes(t *testing.T) {
	dir := t.TempDir()
	relative := filepath.Join(dir, "config.cue")
	if err := os.WriteFile(relative, []byte(relativeConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"../../examples/config.cue", "../../examples/secure.cue", relative} {
		name := strings.TrimSuffix(filepath.Base(file), ".cue")
		if file == relative {
			name = "relative"
		}
		t.Run(name, func(t *testing.T) {
			out, _, _ := render(t, file, Options{})
			docs := strings.Split(string(out), "\n---\n")[1:]
			kinds := map[string]bool{}
			for _, doc := range docs {
				js, err := yaml.YAMLToJSON([]byte(doc))
				if err != nil {
					t.Fatal(err)
				}
				var head metav1.TypeMeta
				if err := json.Unmarshal(js, &head); err != nil {
					t.Fatal(err)
				}
				kind := head.APIVersion + " " + head.Kind
				kinds[kind] = true
				var into any
				switch kind {
				case "v1 ConfigMap":
					into = &corev1.ConfigMap{}
				case "apps/v1 Deployment":
					into = &appsv1.Deployment{}
				case "v1 Service":
					into = &corev1.Service{}
				case "policy/v1 PodDisruptionBudget":
					into = &policyv1.PodDisruptionBudget{}
				case "autoscaling/v2 HorizontalPodAutoscaler":
					into = &autoscalingv2.HorizontalPodAutoscaler{}
				case "keda.sh/v1alpha1 ScaledObject":
					into = &kedaScaledObject{}
				default:
					t.Fatalf("%s: no API type to check it against; add one here", kind)
				}
				dec := json.NewDecoder(bytes.NewReader(js))
				dec.DisallowUnknownFields()
				if err := dec.Decode(into); err != nil {
					t.Fatalf("%s does not decode strictly into the API type: %v\n%s", kind, err, doc)
				}
				again, err := yaml.Marshal(into)
				if err != nil {
					t.Fatal(err)
				}
				if strings.TrimSpace(string(again)) != strings.TrimSpace(doc) {
					t.Errorf("%s as the API type writes it:\n%s\nRender wrote:\n%s", kind, again, doc)
				}
			}
			for _, want := range []string{"v1 ConfigMap", "apps/v1 Deployment", "v1 Service", "policy/v1 PodDisruptionBudget", "autoscaling/v2 HorizontalPodAutoscaler"} {
				if !kinds[want] && (want != "autoscaling/v2 HorizontalPodAutoscaler" || file != relative) {
					t.Errorf("no %s among %v", want, kinds)
				}
			}
			if file == relative {
				m := decode(t, out)
				sources := m.dep.Spec.Template.Spec.Volumes[0].Projected.Sources
				if len(sources) != 2 || sources[1].Secret == nil || len(sources[1].Secret.Items) != 3 {
					t.Errorf("the TLS files do not reach the config's projected volume: %+v", sources)
				}
			}
		})
	}
}

// TestQuantity holds quantity to resource.Quantity's canonical form.
func TestQuantity(t *testing.T) {
	var values []int64
	for _, base := range []int64{1, 3, 5, 7, 999, 1000, 1023, 1024, 1500, 1536, 4095} {
		for _, scale := range []int64{1, 10, 100, 1000, 1e4, 1e6, 1e9, 1e12, 1e15, 1 << 10, 1 << 20, 1 << 30, 1 << 40, 1 << 50} {
			if v := base * scale; v/scale == base {
				values = append(values, v, -v)
			}
		}
	}
	values = append(values, 0, 1<<60, 1e18, 9e18, math.MaxInt64, 128<<20, 129<<20, 104704<<20)
	for _, v := range values {
		for _, f := range []resource.Format{resource.DecimalSI, resource.BinarySI} {
			want := resource.NewQuantity(v, f).String()
			if got := quantity(v, f == resource.BinarySI); got != want {
				t.Errorf("quantity(%d, %s) = %q, want %q", v, f, got, want)
			}
		}
	}
}

// TestDaemonDeps checks that the daemon's binary holds no k8s.io package:
// their init code and type data cost every aiassistd serve 8.5 MB of
// resident memory.
func TestDaemonDeps(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/aiassistd")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/aiassistd: %v", err)
	}
	found := false
	for _, pkg := range strings.Fields(string(out)) {
		found = found || pkg == "github.com/aiassist/aiassist/packaging/kubernetes"
		if strings.HasPrefix(pkg, "k8s.io/") {
			t.Errorf("./cmd/aiassistd depends on %s; render manifests from this package's own types (objects.go)", pkg)
		}
	}
	if !found {
		t.Error("./cmd/aiassistd no longer depends on packaging/kubernetes; move this test where the export is")
	}
}
