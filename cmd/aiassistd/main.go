// Command aiassistd is the aiassist daemon: one config file, one binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aiassist/aiassist/daemon"
	"github.com/aiassist/aiassist/daemon/alert"
	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/schema"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfig = "/etc/aiassist/config.cue"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// stdin is where encrypt and decrypt read; tests replace it.
var stdin io.Reader = os.Stdin

func usage(w io.Writer) {
	fmt.Fprintf(w, `usage: aiassistd <command> [flags]

commands:
  serve   -config FILE   serve the API (default config %s)
  check   -config FILE   validate a config file; exit 0 if valid, 1 if not
  reload  -config FILE   make the running daemon reload the config through its
          [-socket PATH] admin socket (reload.admin_socket); exit 0 if the
                         reload worked or changed nothing, 1 with the error if not
  version [-config FILE] print the daemon's and ONNX Runtime's versions (the
                         library runtime.library picks); exit 1 if the config
                         is invalid, or missing when -config names it
  keygen  -name NAME [-days 90] [-models a,b] [-limit CLASS]
                         make an API key: the key on the first line, then a CUE
                         snippet to append to the config (it holds the hash)
  keygen  -master-key FILE
                         write a new secrets key (mode 0600) for enc:v1: values
  token   -config FILE -sub USER [-scope model:call] [-ttl 1h] [-models a,b]
                         mint an HS256 JWT with the config's auth.jwt.hs256_secret
  encrypt [-key FILE | -config FILE]
                         read a secret on stdin, print its enc:v1: form
  decrypt [-key FILE | -config FILE]
                         read log lines on stdin, print them with the sealed
                         prompt_enc/response_enc fields (logging.encrypt_prompts)
                         opened as prompt/response
  rules   -config FILE   print the alert thresholds as a Prometheus rule file
                         (Prometheus and vmalert load it unchanged)
  pull    hf://ORG/REPO[@REVISION] [-variant fp32|fp16|q4|int8|...]
          [-dir DIR] [-name NAME] [-endpoint URL]
                         download a model's ONNX export from a hub ($HF_ENDPOINT,
                         token in $HF_TOKEN) into DIR/NAME (default
                         /var/lib/aiassist/models), verified and resumable;
                         print the config snippet that serves it
  export kubernetes -config FILE [-image IMAGE] [-namespace NS]
          [-models-claim PVC] [-secret NAME] [-max-replicas N] [-prometheus URL]
                         print Kubernetes manifests (Deployment, Service,
                         ConfigMap, PodDisruptionBudget, HPA, KEDA ScaledObject)
  quantize -in FILE -out FILE [-per-channel] [-exclude name,...] [-min-elements N]
                         write the dynamic INT8 form of an FP32 ONNX model and
                         print what was rewritten, what was skipped and why
`, defaultConfig)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "keygen":
		return keygen(args, stdout, stderr, time.Now())
	case "token":
		return mintToken(args, stdout, stderr)
	case "encrypt":
		return encrypt(args, stdin, stdout, stderr)
	case "decrypt":
		return decrypt(args, stdin, stdout, stderr)
	case "rules":
		return rules(args, stdout, stderr)
	case "pull":
		return pull(args, stdout, stderr)
	case "export":
		return export(args, stdout, stderr)
	case "man":
		return man(args, stdout, stderr)
	case "quantize":
		return quantizeModel(args, stdout, stderr)
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfig, "config file")
	var socket *string
	if cmd == "reload" {
		socket = fs.String("socket", "", "admin socket of the daemon (default: reload.admin_socket of the config)")
	}
	switch cmd {
	case "serve", "check", "version", "reload":
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
		if err == nil {
			// What a reload would open: model files, certificates, keys.
			err = daemon.Check(cfg)
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: invalid\n%v\n", *configPath, err)
			return 1
		}
		for _, w := range cfg.Warnings() {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
		fmt.Fprintf(stdout, "%s: ok (%d listeners, %d models)\n", cfg.Path, len(cfg.Listeners), len(cfg.Models))
		return 0
	case "reload":
		return reload(*configPath, *socket, stdout, stderr)
	case "version":
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
		return printVersion(*configPath, explicit, stdout, stderr)
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

// printVersion prints the daemon's version and that of the ONNX Runtime
// library the config picks. An invalid config is reported after the
// versions that could be found without it, and fails the command: the
// library printed is then not the one the daemon would load. A missing
// config is an error only when -config named it (explicit), so that
// version works on a machine with no config at the default path.
func printVersion(configPath string, explicit bool, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "aiassistd %s\n", version)
	library := ""
	cfg, cfgErr := schema.Load(configPath)
	switch {
	case cfgErr == nil:
		library = cfg.Runtime.Library
	case !explicit && errors.Is(cfgErr, fs.ErrNotExist):
		cfgErr = nil
	}
	code := 0
	if rt, err := engine.Init(engine.RuntimeOptions{Library: library}); err != nil {
		fmt.Fprintf(stdout, "onnxruntime: not loaded: %v\n", err)
		code = 1
	} else {
		fmt.Fprintf(stdout, "onnxruntime %s (%s)\n", rt.Version(), rt.Library())
	}
	if cfgErr != nil {
		fmt.Fprintf(stderr, "%s: invalid (the ONNX Runtime above was looked for without its runtime.library):\n%v\n", configPath, cfgErr)
		code = 1
	}
	return code
}

// reload asks the running daemon to reload through its admin socket and
// prints the outcome.
func reload(configPath, socket string, stdout, stderr io.Writer) int {
	if socket == "" {
		cfg, err := schema.Load(configPath)
		if err != nil {
			fmt.Fprintf(stderr, "%s: invalid, so the daemon would not reload it:\n%v\n", configPath, err)
			return 1
		}
		socket = cfg.Reload.AdminSocket
		if socket == "" {
			fmt.Fprintf(stderr, "aiassistd: %s sets no reload.admin_socket; set it, or send SIGHUP (systemctl reload aiassist)\n", cfg.Path)
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := daemon.RequestReload(ctx, socket)
	if err != nil && res.Result == "" {
		fmt.Fprintf(stderr, "aiassistd: %v\n", err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd: reload failed; the daemon serves generation %d as before:\n%v\n", res.Generation, err)
		return 1
	}
	fmt.Fprintf(stdout, "reload: %s, serving generation %d\n", res.Result, res.Generation)
	return 0
}

// rules prints the config's alert thresholds as a Prometheus rule file.
func rules(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rules", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfig, "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := schema.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid\n%v\n", *configPath, err)
		return 1
	}
	b, err := alert.Rules(daemon.AlertOptions(cfg))
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd rules: %v\n", err)
		return 1
	}
	stdout.Write(b)
	return 0
}
