// Pkgdata writes the generated parts of the deb and rpm packages, for the
// Makefile's package target:
//
//	pkgdata version                            the tree's version for deb and rpm
//	pkgdata depends -format deb|rpm ELF...     the shared-library dependencies, one a line
//	pkgdata copyright -format deb|rpm -binary BIN -runtime DIR
//	                                           the machine-readable copyright file
//	pkgdata changelog -version V               the Debian changelog entry of V
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: pkgdata version | depends | copyright | changelog [flags]")
		return 2
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var err error
	switch args[0] {
	case "version":
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		var v string
		if v, err = gitVersion("."); err == nil {
			fmt.Fprintln(stdout, v)
		}
	case "depends":
		format := fs.String("format", "deb", "deb or rpm")
		symbols := fs.String("symbols", "/var/lib/dpkg/info", "folder of the dpkg symbols files of the libraries linked")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		var deps []string
		if deps, err = depends(*format, *symbols, fs.Args()); err == nil {
			for _, d := range deps {
				fmt.Fprintln(stdout, d)
			}
		}
	case "copyright":
		binary := fs.String("binary", "build/dist/aiassistd", "the binary whose Go modules to list")
		runtime := fs.String("runtime", "build/onnxruntime", "the ONNX Runtime folder (its .version and LICENSE)")
		format := fs.String("format", "deb", "deb or rpm")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		err = copyright(stdout, *format, *binary, *runtime)
	case "changelog":
		version := fs.String("version", "", "the package version the entry is for")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if *version == "" {
			fmt.Fprintln(stderr, "pkgdata changelog: -version is required")
			return 2
		}
		err = changelog(stdout, ".", *version)
	default:
		fmt.Fprintf(stderr, "pkgdata: unknown command %q\n", args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "pkgdata %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
