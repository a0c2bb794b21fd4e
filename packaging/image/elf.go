package image

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// defaultLibDirs are the directories the glibc loader of a Debian
// x86-64 system searches after its cache, and so the ones the image's
// loader (which has no /etc/ld.so.cache) searches.
var defaultLibDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// Lib is a shared library an ELF file needs, as the host's loader would
// find it.
type Lib struct {
	// Name is the DT_NEEDED entry, such as "libc.so.6", or the program
	// interpreter's path.
	Name string
	// Path is where it was found on the host, such as
	// "/lib/x86_64-linux-gnu/libc.so.6" (before symlinks).
	Path string
}

// Resolver finds shared libraries the way the host's loader does: in the
// directories of /etc/ld.so.conf, then in the default ones.
type Resolver struct {
	Dirs []string
}

// HostResolver reads the loader configuration at conf (normally
// /etc/ld.so.conf, with its include lines) and returns a resolver that
// searches its directories, then the default ones.
func HostResolver(conf string) (*Resolver, error) {
	var dirs []string
	seen := map[string]bool{}
	var read func(file string, depth int) error
	read = func(file string, depth int) error {
		if depth > 8 {
			return fmt.Errorf("%s: includes nest too deep", file)
		}
		f, err := os.Open(file)
		if os.IsNotExist(err) && depth > 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read the loader configuration: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			line = strings.TrimSpace(line)
			switch {
			case line == "":
			case strings.HasPrefix(line, "include "):
				pat := strings.TrimSpace(strings.TrimPrefix(line, "include "))
				if !filepath.IsAbs(pat) {
					pat = filepath.Join(filepath.Dir(file), pat)
				}
				matches, err := filepath.Glob(pat)
				if err != nil {
					return fmt.Errorf("%s: bad include %q: %w", file, pat, err)
				}
				sort.Strings(matches)
				for _, m := range matches {
					if err := read(m, depth+1); err != nil {
						return err
					}
				}
			case strings.HasPrefix(line, "hwcap "):
			default:
				if !seen[line] {
					seen[line] = true
					dirs = append(dirs, line)
				}
			}
		}
		return sc.Err()
	}
	if err := read(conf, 0); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, d := range defaultLibDirs {
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return &Resolver{Dirs: dirs}, nil
}

// Needed returns the program interpreter of the files (if any) and every
// shared library they need, directly or through each other, sorted by
// name. A library is looked up in Dirs alone: RUNPATH and RPATH are not
// followed, since the image keeps only the system's libraries. A library
// found nowhere is an error that names the file needing it.
func (r *Resolver) Needed(files ...string) ([]Lib, error) {
	found := map[string]Lib{}
	var walk func(file string, class elf.Class, machine elf.Machine) error
	walk = func(file string, class elf.Class, machine elf.Machine) error {
		f, err := elf.Open(file)
		if err != nil {
			return fmt.Errorf("cannot read the ELF file %s: %w", file, err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return fmt.Errorf("cannot read the interpreter of %s: %w", file, err)
			}
			interp := strings.TrimRight(string(b), "\x00")
			if _, ok := found[interp]; !ok {
				found[interp] = Lib{Name: interp, Path: interp}
				if err := walk(interp, f.Class, f.Machine); err != nil {
					return err
				}
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("cannot read the libraries %s needs: %w", file, err)
		}
		for _, name := range needed {
			if _, ok := found[name]; ok {
				continue
			}
			p, err := r.find(name, f.Class, f.Machine)
			if err != nil {
				return fmt.Errorf("%s needs %s: %w", file, name, err)
			}
			found[name] = Lib{Name: name, Path: p}
			if err := walk(p, f.Class, f.Machine); err != nil {
				return err
			}
		}
		return nil
	}
	for _, file := range files {
		if err := walk(file, elf.ELFCLASSNONE, elf.EM_NONE); err != nil {
			return nil, err
		}
	}
	libs := make([]Lib, 0, len(found))
	for _, l := range found {
		libs = append(libs, l)
	}
	sort.Slice(libs, func(i, j int) bool { return libs[i].Name < libs[j].Name })
	return libs, nil
}

// find returns the first file called name in Dirs that is an ELF file
// of the given class and machine, as the loader skips a 32-bit library
// when loading a 64-bit program.
func (r *Resolver) find(name string, class elf.Class, machine elf.Machine) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range r.Dirs {
		p := filepath.Join(d, name)
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		ok := f.Class == class && f.Machine == machine
		f.Close()
		if ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %s; install the package that has it", strings.Join(r.Dirs, ", "))
}
