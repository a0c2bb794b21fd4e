package main

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// rpmNames are the rpm packages of the Debian library packages.
var rpmNames = map[string]string{"libc6": "glibc", "libstdc++6": "libstdc++", "libgcc-s1": "libgcc"}

// symbolsFile is one dpkg symbols file: per library (soname), its package
// and the first version of it that has each symbol@VERSION.
type symbolsFile map[string]struct {
	pkg     string
	minimum map[string]string
}

// readSymbols reads every *.symbols file in dir (dpkg's info folder).
func readSymbols(dir string) (symbolsFile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.symbols"))
	if err != nil {
		return nil, err
	}
	out := symbolsFile{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		soname := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" || line[0] == '#' || line[0] == '|' || line[0] == '*':
			case line[0] != ' ':
				// "libc.so.6 libc6 #MINVER#"
				fields := strings.Fields(line)
				if len(fields) < 2 {
					soname = ""
					continue
				}
				soname = fields[0]
				e := out[soname]
				e.pkg = strings.SplitN(fields[1], ":", 2)[0]
				e.minimum = map[string]string{}
				out[soname] = e
			case soname != "":
				// " name@VERSION 2.34 [id]"
				fields := strings.Fields(line)
				if len(fields) >= 2 {
					out[soname].minimum[fields[0]] = fields[1]
				}
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return out, nil
}

// depends returns the library packages the ELF files need, with the
// lowest version that has every versioned symbol they import, as
// dpkg-shlibdeps finds it from the same symbols files: "libc6 (>= 2.34)"
// for deb, "glibc >= 2.34" for rpm (whose glibc, libstdc++ and libgcc
// carry the upstream versions the Debian ones do).
func depends(format, symbolsDir string, files []string) ([]string, error) {
	if format != "deb" && format != "rpm" {
		return nil, fmt.Errorf("-format %q: use deb or rpm", format)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("name the ELF files to read")
	}
	syms, err := readSymbols(symbolsDir)
	if err != nil {
		return nil, err
	}
	need := map[string]string{}
	for _, path := range files {
		f, err := elf.Open(path)
		if err != nil {
			return nil, err
		}
		libs, err := f.ImportedLibraries()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		imported, err := f.ImportedSymbols()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, lib := range libs {
			e, ok := syms[lib]
			if !ok {
				return nil, fmt.Errorf("%s links %s, which no symbols file in %s describes; install its package or add it here", path, lib, symbolsDir)
			}
			if _, ok := need[e.pkg]; !ok {
				need[e.pkg] = "0"
			}
		}
		for _, s := range imported {
			if s.Version == "" || s.Library == "" {
				continue
			}
			e, ok := syms[s.Library]
			if !ok {
				return nil, fmt.Errorf("%s imports %s@%s from %s, which no symbols file in %s describes", path, s.Name, s.Version, s.Library, symbolsDir)
			}
			v, ok := e.minimum[s.Name+"@"+s.Version]
			if !ok {
				// A symbol the file does not list: its version node's own entry.
				v, ok = e.minimum[s.Version+"@"+s.Version]
			}
			if !ok {
				return nil, fmt.Errorf("%s imports %s@%s from %s, unknown to its symbols file: is the library newer than the one installed?", path, s.Name, s.Version, s.Library)
			}
			if versionLess(need[e.pkg], v) {
				need[e.pkg] = v
			}
		}
	}
	var out []string
	for pkg, v := range need {
		name := pkg
		if format == "rpm" {
			n, ok := rpmNames[pkg]
			if !ok {
				return nil, fmt.Errorf("no rpm name for the Debian package %s; add it to rpmNames", pkg)
			}
			name = n
		}
		switch {
		case v == "0":
			out = append(out, name)
		case format == "deb":
			out = append(out, fmt.Sprintf("%s (>= %s)", name, v))
		default:
			out = append(out, fmt.Sprintf("%s >= %s", name, v))
		}
	}
	slices.Sort(out)
	return out, nil
}

// versionLess compares dotted numeric versions (2.3.4 < 2.34, 9 < 10.2).
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
