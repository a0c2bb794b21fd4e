package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aiassist/aiassist/engine"
)

// binDir holds the aiassistd binary that the tests build once.
var binDir string

func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "aiassistd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

const testVersion = "v9.8.7-test"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the real aiassistd once, with a known version.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "aiassistd")
		out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestCheckExamples runs `check` on every example config, subfolders
// included, as an operator would before copying one.
func TestCheckExamples(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../../examples", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".cue") {
			files = append(files, path)
		}
		return err
	})
	if err != nil || len(files) < 3 {
		t.Fatalf("found %d configs under ../../examples (%q), want at least 3: %v", len(files), files, err)
	}
	for _, f := range files {
		t.Run(strings.TrimPrefix(f, "../../examples/"), func(t *testing.T) {
			code, out, errOut := runCmd("check", "-config", f)
			if code == 0 && strings.Contains(out, ": ok (") {
				return
			}
			// check opens the files a config names. Two kinds cannot be
			// here: the benchmarks' big models, which examples/bench/run.sh
			// and generate.sh generate (100 and 400 MB), and a server's own
			// files under /etc/aiassist (certificates, keys) that
			// secure.cue names. Every other problem fails the test.
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			for _, line := range lines[1:] {
				generated := strings.Contains(line, "/examples/models/big-mlp/") || strings.Contains(line, "/examples/models/bench-llama")
				if !strings.Contains(line, "no such file or directory") || !strings.Contains(line, "/etc/aiassist/") && !generated {
					t.Errorf("check %s = %d\nstdout: %s\nstderr: %s", f, code, out, errOut)
					break
				}
			}
		})
	}
}

// badConfigs says, for each ../../schema/testdata/*.bad.cue, one message
// `check` must print for it. The schema's own TestBad holds the full lines.
var badConfigs = map[string]string{
	"unknown-field.bad.cue":         "logging.colour: field not allowed",
	"port-out-of-bound.bad.cue":     "listeners.0.port: invalid value 70000",
	"missing-path.bad.cue":          "models.demo.path: field is required but not present",
	"bad-kind.bad.cue":              `models.demo.kind: invalid value "llm"`,
	"bad-duration.bad.cue":          `server.request_timeout: invalid duration "30 seconds"`,
	"duration-overflow.bad.cue":     `server.shutdown_grace: invalid duration "9999999999h"`,
	"duration-bounds.bad.cue":       `server.request_timeout: invalid duration "0s": must be above zero`,
	"default-model-unknown.bad.cue": `default_model: model "dmeo" is not configured`,
	"default-model-tensor.bad.cue":  `default_model: model "demo" is a "tensor" model`,
	"duplicate-listener.bad.cue":    `listeners.1: duplicate listener "127.0.0.1:8080"`,
	"overlapping-listener.bad.cue":  `listeners.1: listener "0.0.0.0:8080" overlaps listeners.0`,
	"no-listeners.bad.cue":          "listeners: at least one listener is required",
	"bad-address.bad.cue":           `listeners.0.address: invalid value "my-host"`,
	"syntax-error.bad.cue":          "expected '}', found 'EOF'",
	"bad-model-name.bad.cue":        `models."demo model": field not allowed`,
	"bad-level.bad.cue":             `logging.level: invalid value "trace"`,
	"bad-metrics-path.bad.cue":      `metrics.path: invalid value "metrics"`,
	"bad-admin-socket.bad.cue":      `reload.admin_socket: invalid value "admin.sock"`,
	"model-not-struct.bad.cue":      "models.demo: invalid value 3 (must be struct)",
	"many-errors.bad.cue":           "models.demo.instances: invalid value 65",
	"lm-batching.bad.cue":           "models.chat.batching: field not allowed",
	"lm-truncate.bad.cue":           `models.chat.truncate: invalid value "right"`,
	"tensor-lm-fields.bad.cue":      "models.demo.max_sequences: field not allowed",
	"empty.bad.cue":                 "empty.bad.cue:1:1: models: the config declares no model",
	"comments-only.bad.cue":         "comments-only.bad.cue:1:1: models: the config declares no model",
	"models-empty.bad.cue":          "models-empty.bad.cue:1:9: models: the config declares no model",
	"truncated-clean.bad.cue":       "truncated-clean.bad.cue:1:1: models: the config declares no model",
	"truncated.bad.cue":             "truncated.bad.cue:6:9: string literal not terminated",
	"metrics-path-route.bad.cue":    `metrics.path: "/v1/generate" is under /v1/`,
	"exposed.bad.cue":               `listeners.1.address: listener "0.0.0.0:8081" is not loopback, and no credential is configured`,
	"open-contradiction.bad.cue":    "auth.open: open: true contradicts the credentials configured",
	"require-auth.bad.cue":          "metrics.require_auth: require_auth: true needs a credential",
	"api-key-refs.bad.cue":          `auth.api_keys."team-a".models.1: model "qwen" is not configured`,
	"api-key-fields.bad.cue":        `auth.api_keys.ok.hash: invalid hash`,
	"jwt-secret.bad.cue":            "auth.jwt.hs256_secret: a plain secret is shorter than 32 bytes",
	"jwt-enc.bad.cue":               `auth.jwt.hs256_secret: the value after "enc:v1:" is not base64`,
	"jwt-no-key.bad.cue":            "auth.jwt: jwt has no key to verify tokens with",
	"secret-conflict.bad.cue":       "auth.jwt.hs256_secret: conflicting values (secret, not shown) and (secret, not shown)",
	"tls.bad.cue":                   `listeners.1.tls.min_version: invalid value "1.1"`,
	"access.bad.cue":                `access.allow_ips.1: "10.0.0.1/8" has address bits set past its /8 prefix`,
	"limits.bad.cue":                "limits.global.requests_per_second: invalid value 0",
	"limit-class.bad.cue":           "limits.classes.bronze.burst: burst needs requests_per_second",
	"model-timeout.bad.cue":         `models.quick.request_timeout: invalid duration "500ms": must be from "1s" to "5m"`,
	"abuse.bad.cue":                 `abuse.auth_failures.window: invalid duration "0s"`,
	"alerts.bad.cue":                "alerts.error_rate.above: invalid value 1.5 (out of bound <=1)",
	"alert-checks.bad.cue":          `alerts.latency_p95.model: model "qwen" is not configured`,
	"alerts-webhook.bad.cue":        `alerts.webhook.url: "http:///api/v2/alerts" has no host`,
	"webhook-twice.bad.cue":         "alerts.webhook.url: conflicting values (secret, not shown) and (secret, not shown)",
	"logging.bad.cue":               "logging.prompt_max_bytes: invalid value 8 (out of bound >=16)",
	"redact.bad.cue":                `logging.redact.1: invalid regular expression "(unclosed": missing closing )`,
}

var position = regexp.MustCompile(`\.bad\.cue:\d+:\d+: `)

// TestCheckBad runs `check` on every bad config of the schema's tests:
// exit 1, messages led by file:line:col, and the expected message.
func TestCheckBad(t *testing.T) {
	files, err := filepath.Glob("../../schema/testdata/*.bad.cue")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			want, ok := badConfigs[name]
			if !ok {
				t.Fatalf("no expected message for %s; add one to badConfigs", name)
			}
			code, out, errOut := runCmd("check", "-config", f)
			if code != 1 {
				t.Errorf("exit %d, want 1\nstdout: %s", code, out)
			}
			if !position.MatchString(errOut) {
				t.Errorf("stderr has no file:line:col:\n%s", errOut)
			}
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr does not say %q:\n%s", want, errOut)
			}
			if !strings.HasPrefix(errOut, f+": invalid\n") {
				t.Errorf("stderr does not start with %q:\n%s", f+": invalid", errOut)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	f := func(args []string, code int, stdout, stderr string) {
		t.Helper()
		c, out, errOut := runCmd(args...)
		if c != code || !strings.Contains(out, stdout) || !strings.Contains(errOut, stderr) {
			t.Errorf("%q = %d\nstdout: %s\nstderr: %s", args, c, out, errOut)
		}
	}
	f(nil, 2, "", "usage: aiassistd")
	f([]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`)
	f([]string{"help"}, 0, "usage: aiassistd", "")
	f([]string{"check", "-nope"}, 2, "", "flag provided but not defined")
	f([]string{"check", "-config", filepath.Join(t.TempDir(), "missing.cue")}, 1, "", "missing.cue")
}

// libraryPath is the ONNX Runtime library the test process finds; the
// binary is pointed at it through the config.
func libraryPath(t *testing.T) string {
	t.Helper()
	p, err := engine.FindLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func TestVersion(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.cue")
	writeFile(t, cfg, fmt.Sprintf("runtime: library: %q\nmodels: demo: {kind: \"tensor\", path: \"demo.onnx\"}\n", libraryPath(t)))
	out, err := exec.Command(binary(t), "version", "-config", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[0] != "aiassistd "+testVersion ||
		!regexp.MustCompile(`^onnxruntime \d+\.\d+\.\d+ \(.*libonnxruntime\.so.*\)$`).MatchString(lines[1]) {
		t.Errorf("version printed:\n%s", out)
	}
}

// TestVersionBadConfig runs the real binary: with an invalid config,
// version still prints the versions it can find, then reports the config's
// problems with file:line:col on stderr and exits 1, rather than ignoring
// the config.
func TestVersionBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "config.cue")
	writeFile(t, bad, fmt.Sprintf("runtime: library: %q\nlogging: colour: \"red\"\nmodels: {}\n", libraryPath(t)))
	versions := regexp.MustCompile(`^aiassistd ` + regexp.QuoteMeta(testVersion) + `\nonnxruntime \d+\.\d+\.\d+ \(.*libonnxruntime\.so.*\)\n$`)
	f := func(config string, wantErr ...string) {
		t.Helper()
		cmd := exec.Command(binary(t), "version", "-config", config)
		// The config's runtime.library is not used, so point the search
		// at the library the tests use.
		cmd.Env = append(os.Environ(), "ONNXRUNTIME_LIB="+libraryPath(t))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("version -config %s: exit %d (%v), want 1", config, code, err)
		}
		if !versions.MatchString(stdout.String()) {
			t.Errorf("version -config %s printed:\n%s", config, stdout.String())
		}
		for _, w := range wantErr {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("version -config %s: stderr does not say %q:\n%s", config, w, stderr.String())
			}
		}
	}
	f(bad, bad+": invalid", bad+":2:10: logging.colour: field not allowed")
	f(filepath.Join(dir, "missing.cue"), "missing.cue", "no such file")
	writeFile(t, bad, "")
	f(bad, bad+":1:1: models: the config declares no model")

	// Without -config, a missing default config is no error: version
	// works on a machine that has none.
	if _, err := os.Stat(defaultConfig); err == nil {
		t.Logf("%s exists; not testing version without it", defaultConfig)
		return
	}
	cmd := exec.Command(binary(t), "version")
	cmd.Env = append(os.Environ(), "ONNXRUNTIME_LIB="+libraryPath(t))
	out, err := cmd.CombinedOutput()
	if err != nil || !versions.Match(out) {
		t.Errorf("version without -config and without %s: %v\n%s", defaultConfig, err, out)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a port that was free a moment ago. The schema does not
// allow port 0, so the daemon cannot be asked to pick one.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestServe runs the real binary: it serves a config, answers health and
// inference requests, and on SIGTERM logs "stopped" and exits 0.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	model, err := filepath.Abs("../../examples/models/demo-mlp/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	writeFile(t, cfg, fmt.Sprintf(`listeners: [{address: "127.0.0.1", port: %d}]
runtime: library: %q
models: "demo-mlp": {
	kind: "tensor"
	path: %q
	batching: {max_batch_size: 8, max_queue_delay: "1ms"}
}
`, port, libraryPath(t), model))
	cmd, exited, stderr := startServe(t, cfg, port)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(base+"/v2/models/demo-mlp/infer", "application/json",
		strings.NewReader(`{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[0,0,0,0]]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"shape":[2,3]`)) {
		t.Errorf("infer = %d %s", resp.StatusCode, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want 0\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve still running 30s after SIGTERM\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no \"stopped\" log line:\n%s", stderr.String())
	}
}

// startServe runs the real binary on cfg and waits, at most 30s, until it
// is ready on port. The process is killed when the test ends, if it has
// not exited by then.
func startServe(t *testing.T, cfg string, port int) (*exec.Cmd, <-chan error, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "-config", cfg)
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 10 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := client.Get(base + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd, exited, stderr
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited before it was ready: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadRefusesEmptyConfig runs the real binary: a config file that an
// editor truncated, or that was saved empty, only comments, cut short or
// with models: {}, is refused by `check` and by the reload, with its
// file:line:col, and the daemon goes on serving its models on its
// listener rather than dropping them all and moving to 127.0.0.1:8080.
func TestReloadRefusesEmptyConfig(t *testing.T) {
	dir := t.TempDir()
	model, err := filepath.Abs("../../examples/models/demo-mlp/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	socket := filepath.Join(dir, "admin.sock")
	cfg := filepath.Join(dir, "config.cue")
	good := fmt.Sprintf(`listeners: [{address: "127.0.0.1", port: %d}]
runtime: library: %q
reload: {watch: false, admin_socket: %q}
models: "demo-mlp": {kind: "tensor", path: %q}
`, port, libraryPath(t), socket, model)
	writeFile(t, cfg, good)
	_, _, stderr := startServe(t, cfg, port)

	infer := func() {
		t.Helper()
		client := &http.Client{Timeout: 10 * time.Second}
		resp, err := client.Post("http://127.0.0.1:"+strconv.Itoa(port)+"/v2/models/demo-mlp/infer", "application/json",
			strings.NewReader(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`))
		if err != nil {
			t.Fatalf("infer after a refused reload: %v\n%s", err, stderr.String())
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("infer after a refused reload = %d %s", resp.StatusCode, body)
		}
	}
	for _, c := range []struct{ name, src, want string }{
		{"empty", "", ":1:1: models: the config declares no model"},
		{"comments only", "// listeners: [{port: 8080}]\n\n", ":1:1: models: the config declares no model"},
		{"models: {}", good[:strings.Index(good, "models:")] + "models: {}\n", ":4:9: models: the config declares no model"},
		{"cut short", good[:len(good)-20], ":4:"},
		{"cut before models", good[:strings.Index(good, "models:")], ":1:1: models: the config declares no model"},
	} {
		writeFile(t, cfg, c.src)
		code, out, errOut := runCmd("check", "-config", cfg)
		if code != 1 || !strings.Contains(errOut, cfg+c.want) {
			t.Errorf("%s: check = %d, want 1 and %q\nstdout: %s\nstderr: %s", c.name, code, cfg+c.want, out, errOut)
		}
		cmd := exec.Command(binary(t), "reload", "-socket", socket)
		res, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(res), "serves generation 1 as before") || !strings.Contains(string(res), cfg+c.want) {
			t.Errorf("%s: reload = %d, want 1, generation 1 kept and %q:\n%s", c.name, code, cfg+c.want, res)
		}
		infer()
	}
	// The good file reloads as unchanged: nothing was applied meanwhile.
	writeFile(t, cfg, good)
	out, err := exec.Command(binary(t), "reload", "-socket", socket).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "reload: unchanged, serving generation 1") {
		t.Errorf("reload of the good config: %v\n%s", err, out)
	}
}

// TestServeBadConfig: serve refuses a bad config with file:line:col and
// exit 1, before opening anything.
func TestServeBadConfig(t *testing.T) {
	bad := "../../schema/testdata/unknown-field.bad.cue"
	cmd := exec.Command(binary(t), "serve", "-config", bad)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d (%v), want 1\n%s", code, err, out)
	}
	if !regexp.MustCompile(`unknown-field\.bad\.cue:\d+:\d+: logging\.colour: field not allowed`).Match(out) {
		t.Errorf("output has no file:line:col message:\n%s", out)
	}
}

// syncBuffer collects a child's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
