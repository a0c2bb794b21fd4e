package daemon_test

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// BenchmarkReload measures a reload from SIGHUP to the new generation
// serving (aiassist_config_generation moves only after the new state,
// listeners and server settings are in place), as systemctl reload or
// kill -HUP would start it:
//
//	go test -run '^$' -bench Reload -benchtime 50x ./daemon
//
// config-only changes server.request_timeout; model-swap-* replaces the
// model file at the same path, so the model is loaded and warmed again.
// The file is written with the timer stopped.
func BenchmarkReload(b *testing.B) {
	requireBinary(b)
	dir := b.TempDir()
	demo := filepath.Join(dir, "demo.onnx")
	medium := filepath.Join(dir, "medium.onnx")
	writeDemo(b, demo)
	mediumMLP := modelgen.NewMLP([]int{256, 1024, 1024, 256}, 3) // 1.3M parameters, 5 MB
	if err := modelgen.WriteFile(medium, mediumMLP.Model(modelgen.MLPOptions{})); err != nil {
		b.Fatal(err)
	}
	port := freePort(b)
	cfg := filepath.Join(dir, "config.cue")
	render := func(i int) string {
		return fmt.Sprintf(`listeners: [{port: %d}]
logging: access_log: false
reload: watch: false
server: request_timeout: "%ds"
models: demo: {kind: "tensor", path: "demo.onnx"}
models: medium: {kind: "tensor", path: "medium.onnx"}
`, port, 30+i%1000)
	}
	writeConfig(b, cfg, render(0))
	p := start(b, cfg)
	gen := 1
	p.until("generation 1", func() bool { return p.metrics(port)["aiassist_config_generation"] == 1 })
	n := 0
	run := func(b *testing.B, change func()) {
		for range b.N {
			b.StopTimer()
			change()
			gen++
			b.StartTimer()
			p.signal(syscall.SIGHUP)
			for p.metrics(port)["aiassist_config_generation"] != float64(gen) {
			}
		}
	}
	b.Run("config-only", func(b *testing.B) {
		run(b, func() { n++; writeConfig(b, cfg, render(n)) })
	})
	b.Run("model-swap-demo", func(b *testing.B) {
		run(b, func() { writeDemo(b, demo) })
	})
	b.Run("model-swap-5MB", func(b *testing.B) {
		run(b, func() {
			if err := modelgen.WriteFile(medium, mediumMLP.Model(modelgen.MLPOptions{})); err != nil {
				b.Fatal(err)
			}
		})
	})
}
