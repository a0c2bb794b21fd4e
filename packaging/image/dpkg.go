package image

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Packages maps a file of the host to the Debian package that installed
// it, from dpkg's file lists, so that the image carries the copyright file
// of every package a file is taken from.
type Packages struct {
	owner map[string]string
}

// ReadPackages reads the *.list files of dpkg's database at dir (normally
// /var/lib/dpkg/info).
func ReadPackages(dir string) (*Packages, error) {
	lists, err := filepath.Glob(filepath.Join(dir, "*.list"))
	if err != nil {
		return nil, err
	}
	if len(lists) == 0 {
		return nil, fmt.Errorf("no dpkg file lists in %s: the image is built on Debian, whose packages say where each library's copyright file is", dir)
	}
	pk := &Packages{owner: map[string]string{}}
	for _, l := range lists {
		name := strings.TrimSuffix(filepath.Base(l), ".list")
		// "libc6:amd64" is the package libc6; its documents are under
		// /usr/share/doc/libc6.
		name, _, _ = strings.Cut(name, ":")
		if err := pk.read(l, name); err != nil {
			return nil, err
		}
	}
	return pk, nil
}

func (pk *Packages) read(list, name string) error {
	f, err := os.Open(list)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if p := sc.Text(); p != "" {
			pk.owner[p] = name
		}
	}
	return sc.Err()
}

// Owner returns the package that installed the file at any of paths (the
// path looked up and the path its symlinks lead to: on a merged-/usr
// system a package lists /lib/x86_64-linux-gnu/libc.so.6 while the file is
// at /usr/lib/x86_64-linux-gnu/libc.so.6).
func (pk *Packages) Owner(paths ...string) (string, error) {
	for _, p := range paths {
		for _, q := range []string{p, strings.TrimPrefix(p, "/usr"), "/usr" + p} {
			if name, ok := pk.owner[q]; ok {
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("no Debian package lists %s, so its copyright file is unknown; install it from a package", strings.Join(paths, " or "))
}

// Copyright returns the copyright file of package name.
func Copyright(name string) string {
	return "/usr/share/doc/" + name + "/copyright"
}
