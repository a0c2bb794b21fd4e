package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/aiassist/aiassist/engine/hub"
)

// defaultModelsDir is where pull puts models unless -dir says otherwise;
// the package creates it for the aiassist user.
const defaultModelsDir = "/var/lib/aiassist/models"

// modelName is what the config accepts as a key of models.
var modelName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

// pull downloads a model from a hub and prints the config to serve it.
func pull(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pull", flag.ContinueOnError)
	fs.SetOutput(stderr)
	variant := fs.String("variant", "", "the export to fetch: fp32 (default), fp16, q4, int8, ..., or an ONNX Runtime GenAI folder")
	dir := fs.String("dir", defaultModelsDir, "folder the model's folder goes in")
	name := fs.String("name", "", "the model's folder and config name (default: the repository's name, lowercase, with -VARIANT)")
	endpoint := fs.String("endpoint", "", "hub URL (default $HF_ENDPOINT, else "+hub.DefaultEndpoint+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: aiassistd pull hf://ORG/REPO[@REVISION] [-variant fp32|fp16|q4|int8|...] [-dir DIR] [-name NAME] [-endpoint URL]")
		return 2
	}
	ref, err := hub.ParseRef(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd pull: %v\n", err)
		return 2
	}
	if *name == "" {
		*name = strings.ToLower(ref.Name())
		if v := filepath.Base(*variant); *variant != "" && *variant != "fp32" {
			*name += "-" + strings.ToLower(v)
		}
	}
	if !modelName.MatchString(*name) {
		fmt.Fprintf(stderr, "aiassistd pull: model name %q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit; set -name\n", *name)
		return 2
	}
	if *endpoint == "" {
		*endpoint = os.Getenv("HF_ENDPOINT")
	}
	target, err := filepath.Abs(filepath.Join(*dir, *name))
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd pull: %v\n", err)
		return 1
	}
	c := &hub.Client{Endpoint: *endpoint, Token: os.Getenv("HF_TOKEN"), Progress: newProgress(stderr)}
	if u, err := url.Parse(*endpoint); err == nil && u.Scheme == "http" && c.Token != "" && !isLoopback(u.Hostname()) {
		fmt.Fprintf(stderr, "warning: HF_TOKEN goes unencrypted to %s; use an https:// endpoint\n", u.Redacted())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if isFloat16(*variant) {
		fmt.Fprintf(stderr, "warning: a %s export computes in float16; aiassist serves float32 logits and cache only, so it will not load: pull fp32, q4 or int8\n", *variant)
	}
	fmt.Fprintf(stderr, "pulling %s into %s\n", ref, target)
	res, err := c.Pull(ctx, ref, *variant, target)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted; run pull again to resume")
		}
		fmt.Fprintf(stderr, "aiassistd pull: %v\n", err)
		return 1
	}
	var size int64
	for _, p := range res.Selection.Files {
		size += p.Size
	}
	fmt.Fprintf(stderr, "%s (%s, %s): %d files, %s; %d downloaded (%s), the others were in place\n",
		ref, res.Selection.Layout, res.Selection.Variant, len(res.Selection.Files), hub.HumanBytes(size), res.Downloaded, hub.HumanBytes(res.Bytes))
	fit := fitContext(target, res.Selection, size, memAvailable())
	fmt.Fprintf(stdout, `// Append to the config (default %s), then run aiassistd check:
models: %q: {
	kind:           "causal-lm"
	path:           %q
	context_length: %d // %s
}
`, defaultConfig, *name, target, fit.length, fit.why)
	return 0
}

// isFloat16 reports whether a variant's name says it computes in float16
// (fp16, q4f16, a GenAI folder such as cuda-fp16).
func isFloat16(variant string) bool {
	v := strings.ToLower(variant)
	return strings.Contains(v, "fp16") || strings.Contains(v, "f16")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// maxSequences is the schema's default max_sequences, which the KV cache
// estimate multiplies.
const maxSequences = 8

type contextFit struct {
	length int
	why    string
}

// fitContext picks a context_length whose KV cache fits the machine: each
// token of each of max_sequences sequences holds layers × kv heads ×
// head dim × 2 (key and value) values of the cache's dtype. Half of what
// MemAvailable leaves after the weights goes to the cache; the model's own
// maximum caps it.
func fitContext(dir string, sel *hub.Selection, weights, available int64) contextFit {
	shape := readShape(dir, sel.Layout)
	dtype := int64(4)
	if isFloat16(sel.Variant) {
		dtype = 2
	}
	perToken := int64(shape.layers) * int64(shape.kvHeads) * int64(shape.headDim) * 2 * dtype
	max := shape.maxLength
	switch {
	case perToken <= 0 && max > 0:
		return contextFit{max, "the model's maximum; its config gives no layer shape to size the KV cache by"}
	case perToken <= 0:
		return contextFit{2048, "a guess: the model's config gives neither its maximum nor its layer shape"}
	case available <= 0 && max > 0:
		return contextFit{max, "the model's maximum; MemAvailable is unknown here, so check the KV cache fits: " +
			hub.HumanBytes(perToken) + " per token per sequence"}
	case available <= 0:
		return contextFit{2048, "a guess: neither the model's maximum nor MemAvailable is known"}
	}
	budget := (available - weights) / 2
	n := budget / (maxSequences * perToken)
	if n >= 256 {
		n -= n % 256
	}
	why := ""
	switch {
	case max > 0 && n >= int64(max):
		n = int64(max)
		why = "the model's maximum"
	case n < 256:
		n = 256
		if max > 0 && max < 256 {
			n = int64(max)
		}
		why = "the least useful; this machine's memory is short for the model, so lower max_sequences"
	default:
		why = fmt.Sprintf("fits the memory (the model allows %d)", max)
		if max == 0 {
			why = "fits the memory"
		}
	}
	return contextFit{int(n), fmt.Sprintf("%s: %d sequences × %d tokens × %s of KV cache = %s; MemAvailable %s, weights %s",
		why, maxSequences, n, hub.HumanBytes(perToken), hub.HumanBytes(maxSequences*n*perToken), hub.HumanBytes(available), hub.HumanBytes(weights))}
}

type modelShape struct{ layers, kvHeads, headDim, maxLength int }

// readShape reads the decoder's shape from config.json (Optimum) or
// genai_config.json; what a file does not say stays 0.
func readShape(dir, layout string) modelShape {
	var s modelShape
	if layout == "genai" {
		var g struct {
			Model struct {
				ContextLength int `json:"context_length"`
				Decoder       struct {
					HeadSize   int `json:"head_size"`
					NumKVHeads int `json:"num_key_value_heads"`
					NumLayers  int `json:"num_hidden_layers"`
				} `json:"decoder"`
			} `json:"model"`
		}
		if readJSON(filepath.Join(dir, "genai_config.json"), &g) {
			d := g.Model.Decoder
			s = modelShape{d.NumLayers, d.NumKVHeads, d.HeadSize, g.Model.ContextLength}
		}
		return s
	}
	var c struct {
		Layers     int `json:"num_hidden_layers"`
		Heads      int `json:"num_attention_heads"`
		KVHeads    int `json:"num_key_value_heads"`
		Hidden     int `json:"hidden_size"`
		HeadDim    int `json:"head_dim"`
		MaxPos     int `json:"max_position_embeddings"`
		NPositions int `json:"n_positions"`
	}
	if !readJSON(filepath.Join(dir, "config.json"), &c) {
		return s
	}
	s = modelShape{layers: c.Layers, kvHeads: c.KVHeads, headDim: c.HeadDim, maxLength: c.MaxPos}
	if s.kvHeads == 0 {
		s.kvHeads = c.Heads
	}
	if s.headDim == 0 && c.Heads > 0 {
		s.headDim = c.Hidden / c.Heads
	}
	if s.maxLength == 0 {
		s.maxLength = c.NPositions
	}
	for _, v := range []*int{&s.layers, &s.kvHeads, &s.headDim, &s.maxLength} {
		if *v < 0 || *v > 1<<20 {
			*v = 0
		}
	}
	return s
}

func readJSON(path string, v any) bool {
	b, err := os.ReadFile(path)
	return err == nil && json.Unmarshal(b, v) == nil
}

// memAvailable reads MemAvailable from /proc/meminfo, or 0.
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return parseMemAvailable(string(b))
}

func parseMemAvailable(meminfo string) int64 {
	for _, line := range strings.Split(meminfo, "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil && kb > 0 {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// newProgress shows a bar per file on a terminal and plain lines (every
// tenth of a file) otherwise, so logs of a scripted pull stay readable.
func newProgress(w io.Writer) hub.Progress {
	if f, ok := w.(*os.File); ok && os.Getenv("TERM") != "dumb" {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return &barProgress{w: w}
		}
	}
	return &lineProgress{w: w}
}

type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (p *barProgress) Start(name string, size, have int64) io.Writer {
	p.bar = progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
	)
	p.bar.Set64(have)
	return p.bar
}

func (p *barProgress) Done(name string, err error) {
	if err != nil {
		p.bar.Exit()
		fmt.Fprintln(p.w)
		return
	}
	p.bar.Finish()
}

type lineProgress struct {
	w                 io.Writer
	name              string
	size, done, shown int64
}

func (p *lineProgress) Start(name string, size, have int64) io.Writer {
	p.name, p.size, p.done, p.shown = name, size, have, have
	if have > 0 {
		fmt.Fprintf(p.w, "%s: resuming at %s of %s\n", name, hub.HumanBytes(have), hub.HumanBytes(size))
	} else {
		fmt.Fprintf(p.w, "%s: %s\n", name, hub.HumanBytes(size))
	}
	return p
}

func (p *lineProgress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if step := p.size / 10; step > 1<<20 && p.done-p.shown >= step && p.done < p.size {
		p.shown = p.done
		fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", p.name, p.done*100/p.size, hub.HumanBytes(p.done), hub.HumanBytes(p.size))
	}
	return len(b), nil
}

func (p *lineProgress) Done(name string, err error) {
	if err != nil {
		fmt.Fprintf(p.w, "%s: interrupted at %s of %s\n", name, hub.HumanBytes(p.done), hub.HumanBytes(p.size))
		return
	}
	fmt.Fprintf(p.w, "%s: done\n", name)
}
