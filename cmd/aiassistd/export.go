package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/aiassist/aiassist/packaging/kubernetes"
	"github.com/aiassist/aiassist/schema"
)

// export renders what runs the config elsewhere: for now, Kubernetes
// manifests on stdout, and the warnings about them on stderr.
func export(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "kubernetes" {
		fmt.Fprintln(stderr, "usage: aiassistd export kubernetes -config FILE [-image IMAGE] [-namespace NS] [-models-claim PVC] [-secret NAME] [-init-image IMAGE] [-max-replicas N] [-prometheus URL]")
		return 2
	}
	fs := flag.NewFlagSet("export kubernetes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfig, "config file")
	var opts kubernetes.Options
	fs.StringVar(&opts.Image, "image", "aiassist:latest", "container image")
	fs.StringVar(&opts.Namespace, "namespace", "default", "namespace of every object")
	fs.StringVar(&opts.ModelsClaim, "models-claim", "aiassist-models", "PersistentVolumeClaim that holds the models")
	fs.StringVar(&opts.SecretName, "secret", "aiassist-secrets", "Secret that holds the master key, TLS and JWT key files")
	fs.StringVar(&opts.InitImage, "init-image", "busybox:1.37", "image with sh, cp and chmod that copies the master key with mode 0400")
	fs.IntVar(&opts.MaxReplicas, "max-replicas", 0, "most pods the autoscalers run (default: the largest max_instances, at least 2)")
	fs.StringVar(&opts.Prometheus, "prometheus", "http://prometheus.monitoring.svc:9090", "Prometheus server KEDA asks for the queue depth")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := schema.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid\n%v\n", *configPath, err)
		return 1
	}
	src, err := os.ReadFile(cfg.Path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	out, warnings, err := kubernetes.Render(cfg, src, opts)
	if err != nil {
		fmt.Fprintf(stderr, "cannot render the manifests: %v\n", err)
		return 1
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
