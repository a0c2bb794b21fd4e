package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// podman runs podman on a storage of the test's own, so that the test
// neither sees nor leaves images and containers on the machine.
type podman struct {
	t    *testing.T
	env  []string
	args []string
}

// needTools fails in CI (whose .ci/run installs them) and skips elsewhere
// when podman, runc or skopeo is missing, and skips with podman's own
// words where it cannot run at all.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"podman", "runc", "skopeo"} {
		if _, err := exec.LookPath(tool); err != nil {
			why := tool + " is not installed (apt-get install podman runc skopeo): the container image cannot be run"
			if os.Getenv("CI") == "true" {
				t.Fatal("CI=true: " + why)
			}
			t.Skip(why)
		}
	}
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	needTools(t)
	// t.TempDir would fail the test if it could not remove the storage;
	// a leftover in /tmp is not worth failing for, so it is logged.
	dir, err := os.MkdirTemp("", "aiassist-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("cannot remove podman's test storage: %v", err)
		}
	})
	// crun, the default runtime, cannot set rlimits nor use the hybrid
	// cgroups of these machines; runc with cgroupfs and no default
	// ulimits can. The network is the host's, so that the test reaches
	// the container on 127.0.0.1 without a network backend.
	conf := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &podman{
		t:   t,
		env: append(os.Environ(), "CONTAINERS_CONF="+conf),
		args: []string{
			"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
			"--runtime", "runc", "--cgroup-manager=cgroupfs",
		},
	}
	if out, err := p.run("info"); err != nil {
		t.Skipf("podman cannot run here: %v: %s", err, out)
	}
	return p
}

// run runs podman with args and returns its combined output.
func (p *podman) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman", append(append([]string{}, p.args...), args...)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *podman) must(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// container is one `podman run -d` of the image, removed at cleanup.
type container struct {
	p    *podman
	name string
	port int
}

func (p *podman) start(image, name string, port int, extra ...string) *container {
	p.t.Helper()
	args := []string{"run", "-d", "--name", name, "--network", "host", "-e", "PORT=" + strconv.Itoa(port)}
	args = append(append(args, extra...), image)
	p.t.Cleanup(func() { p.run("rm", "-f", "-t", "0", name) })
	p.must(args...)
	return &container{p: p, name: name, port: port}
}

func (c *container) logs() string {
	out, _ := c.p.run("logs", c.name)
	return out
}

func (c *container) url(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(c.port) + path
}

// waitReady polls /v2/health/ready until it answers 200, the container
// stops, or a minute passes.
func (c *container) waitReady() {
	t := c.p.t
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := client.Get(c.url("/v2/health/ready"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if state, _ := c.p.run("inspect", "-f", "{{.State.Status}}", c.name); strings.TrimSpace(state) != "running" {
			t.Fatalf("container %s is %s before it was ready; its log:\n%s", c.name, strings.TrimSpace(state), c.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("container %s not ready within a minute; its log:\n%s", c.name, c.logs())
}

// waitLog waits up to 30s for a log line holding every one of parts.
func (c *container) waitLog(parts ...string) {
	t := c.p.t
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(c.logs(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("container %s logged no line with %q within 30s; its log:\n%s", c.name, parts, c.logs())
}

// generate posts a prompt to /v1/generate and returns the status and the
// decoded answer.
func (c *container) generate(body string) (int, map[string]any) {
	t := c.p.t
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post(c.url("/v1/generate"), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /v1/generate: %v; the container's log:\n%s", err, c.logs())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("POST /v1/generate: %d %q is not JSON: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, out
}

func (c *container) status(path string) int {
	t := c.p.t
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(c.url(path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stop runs `podman stop` (SIGTERM, then SIGKILL after 20s) and checks
// that the daemon drained and exited 0 on its own.
func (c *container) stop() {
	t := c.p.t
	t.Helper()
	c.p.must("stop", "-t", "20", c.name)
	code := strings.TrimSpace(c.p.must("inspect", "-f", "{{.State.ExitCode}}", c.name))
	if code != "0" {
		t.Errorf("container %s exited %s after podman stop, want 0; its log:\n%s", c.name, code, c.logs())
	}
	logs := c.logs()
	if !strings.Contains(logs, `"msg":"stopping"`) || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("container %s did not log its drain (stopping, stopped); its log:\n%s", c.name, logs)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestContainer inspects the image mkimage built the archive with skopeo, loads
// it with podman and runs it three ways: the default config (the demo
// models, /v2/health/ready and /v1/generate on 127.0.0.1); MODEL_PATH
// naming the demo decoder mounted at /models/tiny; and a config folder of
// the test's own mounted at /etc/aiassist, changed while it runs (the
// file watch reloads it) and then reloaded with SIGHUP. Each run ends with
// `podman stop`, which must drain and exit 0.
func TestContainer(t *testing.T) {
	p := newPodman(t)
	o := testOptions(t, "")
	arch, digest := sharedArchive(t)

	t.Run("skopeo inspect", func(t *testing.T) {
		inspect := func(args ...string) map[string]any {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, "skopeo", append([]string{"inspect"}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo inspect %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		ref := "oci-archive:" + arch + ":" + o.Version
		m := inspect(ref)
		if m["Digest"] != digest {
			t.Errorf("skopeo sees digest %v, mkimage made %s", m["Digest"], digest)
		}
		labels, _ := m["Labels"].(map[string]any)
		for k, want := range map[string]string{
			"org.opencontainers.image.version":  o.Version,
			"org.opencontainers.image.revision": o.Revision,
			"org.opencontainers.image.source":   o.Source,
			"org.opencontainers.image.licenses": o.Licenses,
			"org.opencontainers.image.title":    "aiassist",
		} {
			if labels[k] != want {
				t.Errorf("label %s = %v, want %q", k, labels[k], want)
			}
		}
		cfg, _ := inspect("--config", ref)["config"].(map[string]any)
		if cfg["User"] != "65532:65532" {
			t.Errorf("user %v, want 65532:65532", cfg["User"])
		}
		if got := fmt.Sprint(cfg["Entrypoint"]); got != "[/usr/bin/aiassistd serve -config /etc/aiassist/config.cue]" {
			t.Errorf("entrypoint %s", got)
		}
		// The docker-archive side of the same file names both tags.
		if m := inspect("docker-archive:" + arch + ":aiassist:latest"); m["Labels"] == nil {
			t.Errorf("docker-archive: no labels in %v", m)
		}
	})

	start := time.Now()
	out := p.must("load", "-i", arch)
	t.Logf("podman load took %.1fs", time.Since(start).Seconds())
	for _, tag := range []string{o.Version, "latest"} {
		if !strings.Contains(out, "aiassist:"+tag) {
			t.Fatalf("podman load did not name aiassist:%s:\n%s", tag, out)
		}
	}
	image := "aiassist:" + o.Version
	b := make([]byte, 4)
	rand.Read(b)
	prefix := "aiassist-test-" + hex.EncodeToString(b)

	t.Run("default config", func(t *testing.T) {
		p := &podman{t: t, env: p.env, args: p.args}
		c := p.start(image, prefix+"-demo", freePort(t))
		c.waitReady()
		code, ans := c.generate(`{"prompt":"Hello","max_tokens":4,"temperature":0}`)
		if code != http.StatusOK || ans["model"] != "tiny-llama" || ans["text"] == nil {
			t.Fatalf("POST /v1/generate: %d %v, want 200 from tiny-llama", code, ans)
		}
		if c.status("/v2/models/demo-mlp/ready") != http.StatusOK {
			t.Errorf("the demo MLP is not ready")
		}
		logs := c.logs()
		if !strings.Contains(logs, "auth.open is true") {
			t.Errorf("no warning that inference is open; the log:\n%s", logs)
		}
		if !strings.Contains(logs, `"onnxruntime_library":"/usr/lib/aiassist/libonnxruntime.so"`) {
			t.Errorf("ONNX Runtime not loaded from %s; the log:\n%s", LibraryDir, logs)
		}
		c.stop()
	})

	t.Run("MODEL_PATH", func(t *testing.T) {
		p := &podman{t: t, env: p.env, args: p.args}
		models, err := filepath.Abs("../../examples/models/tiny-llama")
		if err != nil {
			t.Fatal(err)
		}
		c := p.start(image, prefix+"-model", freePort(t), "-e", "MODEL_PATH=/models/tiny", "-v", models+":/models/tiny:ro")
		c.waitReady()
		code, ans := c.generate(`{"prompt":"Hello","max_tokens":4}`)
		if code != http.StatusOK || ans["model"] != "tiny" {
			t.Fatalf("POST /v1/generate: %d %v, want 200 from tiny", code, ans)
		}
		if c.status("/v2/models/demo-mlp/ready") == http.StatusOK {
			t.Errorf("the demo MLP is served although MODEL_PATH is set")
		}
		c.stop()
	})

	t.Run("mounted config reloads", func(t *testing.T) {
		p := &podman{t: t, env: p.env, args: p.args}
		etc := t.TempDir()
		// The daemon runs as 65532: the folder must be readable by it.
		if err := os.Chmod(etc, 0o755); err != nil {
			t.Fatal(err)
		}
		port := freePort(t)
		conf := func(watch bool, models ...string) string {
			s := fmt.Sprintf("listeners: [{address: \"0.0.0.0\", port: %d}]\nauth: open: true\nreload: watch: %v\n", port, watch)
			for _, m := range models {
				switch m {
				case "demo-mlp":
					s += `models: "demo-mlp": {kind: "tensor", path: "` + ModelsDir + `/demo-mlp/model.onnx"}` + "\n"
				case "tiny-llama":
					s += `models: "tiny-llama": {kind: "causal-lm", path: "` + ModelsDir + `/tiny-llama"}` + "\n"
				}
			}
			return s
		}
		write := func(src string) {
			// In place, as an operator's editor or a ConfigMap update
			// reaches a bind-mounted folder.
			if err := os.WriteFile(filepath.Join(etc, "config.cue"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(conf(true, "demo-mlp"))
		c := p.start(image, prefix+"-conf", port, "-v", etc+":/etc/aiassist:ro")
		c.waitReady()
		if code, _ := c.generate(`{"prompt":"Hello","max_tokens":2}`); code == http.StatusOK {
			t.Fatalf("POST /v1/generate answered 200 with no causal-lm model: the mounted config is not the one served")
		}

		// The file watch: the decoder appears, and watching stops.
		write(conf(false, "demo-mlp", "tiny-llama"))
		c.waitLog(`"msg":"reloaded"`, `"source":"file change"`)
		c.waitReady()
		if code, ans := c.generate(`{"prompt":"Hello","max_tokens":2}`); code != http.StatusOK {
			t.Fatalf("after the file change, POST /v1/generate: %d %v", code, ans)
		}

		// SIGHUP (docker kill -s HUP): the MLP goes.
		write(conf(false, "tiny-llama"))
		c.p.must("kill", "-s", "HUP", c.name)
		c.waitLog(`"msg":"reloaded"`, `"source":"SIGHUP"`)
		if got := c.status("/v2/models/demo-mlp/ready"); got == http.StatusOK {
			t.Errorf("after SIGHUP the removed demo-mlp is still ready")
		}
		c.stop()
	})

	p.run("rmi", "-f", "aiassist:"+o.Version, "aiassist:latest")
}
