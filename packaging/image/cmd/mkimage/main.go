// Command mkimage builds the aiassist container image archive (see
// packaging/image and `make image`) without a container engine.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aiassist/aiassist/packaging/image"
)

// The OCI distribution spec's grammar of a tag and of a repository name.
var (
	tagPattern  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	namePattern = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	var o image.Options
	fs.StringVar(&o.Binary, "binary", "", "the aiassistd executable")
	fs.StringVar(&o.Library, "library", "", "the ONNX Runtime library file")
	fs.StringVar(&o.LibraryLicense, "library-license", "packaging/image/onnxruntime-LICENSE", "the ONNX Runtime license")
	fs.StringVar(&o.Config, "config", "packaging/image/config.cue", "the default config file")
	fs.StringVar(&o.Models, "models", "examples/models", "the demo models folder")
	fs.StringVar(&o.Version, "version", "", "the image version (label and tag)")
	fs.StringVar(&o.Revision, "revision", "", "the source revision (label)")
	fs.StringVar(&o.Source, "source", "", "the source repository URL (label)")
	fs.StringVar(&o.Licenses, "licenses", "", "the SPDX license expression (label)")
	name := fs.String("name", "aiassist", "the image name; tagged VERSION and latest")
	epoch := fs.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "the time of every file, in seconds since 1970 (default $SOURCE_DATE_EPOCH, else 0)")
	out := fs.String("out", "", "the archive to write")
	list := fs.String("list", "", "also write the image's files, one per line, to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	if !tagPattern.MatchString(o.Version) {
		return fmt.Errorf("-version %q cannot be an image tag: use letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'", o.Version)
	}
	if !namePattern.MatchString(*name) {
		return fmt.Errorf("-name %q cannot be an image name: use lowercase letters, digits and '.', '_', '-' or '/' between them", *name)
	}
	if *epoch != "" {
		n, err := strconv.ParseInt(*epoch, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("-epoch %q: want seconds since 1970", *epoch)
		}
		o.Created = time.Unix(n, 0)
	} else {
		o.Created = time.Unix(0, 0)
	}
	img, err := image.Build(o)
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	refs := []string{*name + ":" + o.Version, *name + ":latest"}
	if err := image.WriteArchive(w, img, refs, o.Created); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if *list != "" {
		var b strings.Builder
		for _, l := range img.Files {
			fmt.Fprintf(&b, "# layer: %s\n", l.Name)
			for _, p := range l.Paths {
				fmt.Fprintln(&b, p)
			}
		}
		if err := os.WriteFile(*list, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("%s %s %s\n", *out, strings.Join(refs, " "), digest)
	return nil
}
