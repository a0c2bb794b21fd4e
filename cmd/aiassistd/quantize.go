package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/aiassist/aiassist/engine/quantize"
)

// quantizeModel is `aiassistd quantize`: the INT8 rewrite a model with
// quantization: "int8" gets at load, done offline, with a summary of what
// was rewritten, what was skipped and why, and the sizes.
func quantizeModel(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("quantize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "FP32 ONNX model to read (its external data beside it)")
	out := fs.String("out", "", "INT8 ONNX model to write")
	perChannel := fs.Bool("per-channel", true, "one weight scale per output channel; -per-channel=false uses one per weight")
	exclude := fs.String("exclude", "", "comma-separated names of nodes to keep FP32 (a node without a name is named by its first output)")
	minElements := fs.Int("min-elements", quantize.DefaultMinElements, "smallest weight, in elements, to quantize; smaller ones stay FP32")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case *in == "" || *out == "":
		fmt.Fprintln(stderr, "aiassistd quantize: -in and -out are required, such as -in model.onnx -out model.int8.onnx")
		return 2
	case *minElements < 0:
		fmt.Fprintf(stderr, "aiassistd quantize: -min-elements %d is negative; use 0 to quantize every weight\n", *minElements)
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "aiassistd quantize: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	opts := quantize.Options{PerChannel: *perChannel, MinElements: *minElements}
	for name := range strings.SplitSeq(*exclude, ",") {
		if name = strings.TrimSpace(name); name != "" {
			opts.Exclude = append(opts.Exclude, name)
		}
	}
	sum, err := quantize.File(*in, *out, opts)
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd quantize: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s -> %s\n", *in, *out)
	sum.WriteTo(stdout)
	return 0
}
