package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// The tests in this package run the real aiassistd binary, built once by
// TestMain, with the real ONNX Runtime, on loopback.

var (
	binary  string // the built aiassistd
	ortLib  string // libonnxruntime.so
	skipWhy string // why the binary tests cannot run; "" if they can
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	for _, c := range []string{os.Getenv("ONNXRUNTIME_LIB"), "../build/onnxruntime/libonnxruntime.so"} {
		if _, err := os.Stat(c); c != "" && err == nil {
			ortLib, _ = filepath.Abs(c)
			break
		}
	}
	if ortLib == "" {
		skipWhy = "ONNX Runtime not found in $ONNXRUNTIME_LIB or ../build/onnxruntime; run packaging/fetch-onnxruntime.sh"
		if os.Getenv("CI") == "true" {
			// CI installs the library first: its absence there is a
			// failure, not a reason to skip every test of this package.
			fmt.Fprintln(os.Stderr, "CI=true: "+skipWhy)
			return 1
		}
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "aiassistd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "aiassistd")
	out, err := exec.Command("go", "build", "-o", binary, "../cmd/aiassistd").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot build aiassistd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func requireBinary(t testing.TB) {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeDemo writes the demo MLP (4 inputs, 3 outputs) to path.
func writeDemo(t testing.TB, path string) {
	t.Helper()
	if err := modelgen.WriteFile(path, modelgen.DemoMLP().Model(modelgen.MLPOptions{Name: "demo"})); err != nil {
		t.Fatal(err)
	}
}

// writeConfig replaces the config the way editors save: a new file
// renamed over the old one.
func writeConfig(t testing.TB, path, src string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// proc is a running aiassistd.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	log    *syncBuffer
	done   chan struct{}
	err    error
	client *http.Client
}

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

// start runs `aiassistd serve -config cfg` with env added to the test's
// environment. The process is killed at the end of the test if it still
// runs, and its log is shown if the test failed.
func start(t testing.TB, cfg string, env ...string) *proc {
	t.Helper()
	requireBinary(t)
	p := &proc{t: t, log: &syncBuffer{}, done: make(chan struct{}), client: &http.Client{Timeout: time.Minute}}
	p.cmd = exec.Command(binary, "serve", "-config", cfg)
	p.cmd.Env = append(append(os.Environ(), "ONNXRUNTIME_LIB="+ortLib), env...)
	p.cmd.Stderr = p.log
	p.cmd.Stdout = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("aiassistd log:\n%s", p.log.String())
		}
	})
	return p
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		p.t.Fatal("aiassistd did not exit")
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}

// until polls cond until it holds, and fails the test if it does not
// within a bound far above anything the daemon needs, or if the daemon
// exits. It asserts nothing about time.
func (p *proc) until(what string, cond func() bool) {
	p.t.Helper()
	end := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case <-p.done:
			p.t.Fatalf("aiassistd exited (%v) while waiting for %s", p.err, what)
		default:
		}
		if time.Now().After(end) {
			p.t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *proc) get(url string) (int, string, error) {
	resp, err := p.client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metrics returns the daemon's series by name with labels, such as
// `aiassist_config_reloads_total{result="failure"}`, or nil if it cannot
// be scraped.
func (p *proc) metrics(port int) map[string]float64 {
	code, body, err := p.get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil || code != 200 {
		return nil
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

const demoInput = `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`

// demoOutput is the demo MLP's answer to demoInput.
const demoOutput = `[0.32945338,-0.132892,0.21754086]`

// infer asks model on port for demoInput and checks the answer.
func infer(ctx context.Context, client *http.Client, port int, model string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/v2/models/%s/infer", port, model), strings.NewReader(demoInput))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || !strings.Contains(string(body), demoOutput) {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return nil
}
