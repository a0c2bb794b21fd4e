// Command aiassistd is the aiassist daemon: one config file, one binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/aiassist/aiassist/daemon"
	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/schema"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfig = "/etc/aiassist/config.cue"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `usage: aiassistd <command> [flags]

commands:
  serve   -config FILE   serve the API (default config %s)
  check   -config FILE   validate a config file; exit 0 if valid, 1 if not
  version [-config FILE] print the daemon's and ONNX Runtime's versions
`, defaultConfig)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfig, "config file")
	switch cmd {
	case "serve", "check", "version":
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "aiassistd: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch cmd {
	case "check":
		cfg, err := schema.Load(*configPath)
		if err != nil {
			fmt.Fprintf(stderr, "%s: invalid\n%v\n", *configPath, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok (%d listeners, %d models)\n", cfg.Path, len(cfg.Listeners), len(cfg.Models))
		return 0
	case "version":
		fmt.Fprintf(stdout, "aiassistd %s\n", version)
		library := ""
		if cfg, err := schema.Load(*configPath); err == nil {
			library = cfg.Runtime.Library
		}
		rt, err := engine.Init(engine.RuntimeOptions{Library: library})
		if err != nil {
			fmt.Fprintf(stdout, "onnxruntime: not loaded: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "onnxruntime %s (%s)\n", rt.Version(), rt.Library())
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := daemon.Run(ctx, daemon.Options{ConfigPath: *configPath, Version: version, LogOutput: stderr})
	if err != nil {
		var se *schema.Error
		if errors.As(err, &se) {
			fmt.Fprintf(stderr, "aiassistd: invalid config:\n%v\n", err)
		} else {
			fmt.Fprintf(stderr, "aiassistd: %v\n", err)
		}
		return 1
	}
	return 0
}
