package main

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"unicode"
)

// licenseKinds tell licenses apart by a phrase of their text; a file that
// holds several (Apache-2.0 and MIT, say) gets all of them.
var licenseKinds = []struct{ name, marker, unless string }{
	{"Apache-2.0", "Apache License", ""},
	{"MIT", "Permission is hereby granted, free of charge", ""},
	{"BSD-3-Clause", "Neither the name", ""},
	{"BSD-2-Clause", "Redistribution and use in source and binary forms", "Neither the name"},
	{"ISC", "Permission to use, copy, modify, and/or distribute this software", ""},
	{"MPL-2.0", "Mozilla Public License Version 2.0", ""},
	{"MPL-2.0", "Mozilla Public License, version 2.0", ""}, // HashiCorp's spelling
}

// classify names the licenses of a license file's text.
func classify(text string) (string, error) {
	flat := strings.Join(strings.Fields(text), " ")
	var names []string
	for _, k := range licenseKinds {
		if strings.Contains(flat, k.marker) && (k.unless == "" || !strings.Contains(flat, k.unless)) {
			names = append(names, k.name)
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("a license this tool does not know; add it to licenseKinds")
	}
	return strings.Join(names, " and "), nil
}

// copyrightLine matches the copyright statements of a license text.
var copyrightLine = regexp.MustCompile(`(?im)^\s*copyright\s+(?:\(c\)\s*|©\s*)?([0-9].*)$`)

// holders returns the copyright statements of a license text, or fallback.
func holders(text, fallback string) []string {
	var out []string
	for _, m := range copyrightLine.FindAllStringSubmatch(text, -1) {
		s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(m[1]), "All rights reserved."))
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		out = []string{fallback}
	}
	return out
}

// paragraph is one Files paragraph of the copyright file.
type paragraph struct {
	files, copyright []string
	license, text    string
	comment          string
}

func (p paragraph) write(w io.Writer) {
	fmt.Fprintf(w, "\nFiles: %s\n", strings.Join(p.files, " "))
	fmt.Fprintf(w, "Copyright: %s\n", strings.Join(p.copyright, "\n "))
	if p.comment != "" {
		lines := strings.SplitN(strings.TrimSpace(p.comment), "\n", 2)
		fmt.Fprintf(w, "Comment: %s\n", lines[0])
		if len(lines) == 2 {
			fmt.Fprint(w, continuation(lines[1]))
		}
	}
	fmt.Fprintf(w, "License: %s\n%s", p.license, continuation(strings.TrimLeft(p.text, "\n")))
}

// continuation indents text as the continuation lines of a deb822 field:
// a space before every line, " ." for an empty one, so that no line of it
// ends the paragraph.
func continuation(text string) string {
	var b strings.Builder
	text = strings.TrimRight(text, "\n")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRightFunc(line, unicode.IsSpace)
		if line == "" {
			b.WriteString(" .\n")
		} else {
			b.WriteString(" " + line + "\n")
		}
	}
	return b.String()
}

// escapePath is the module cache's spelling of a module path: an upper
// case letter is '!' and the letter in lower case.
func escapePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// licenseFiles reads the license and notice files at the top of a folder.
func licenseFiles(dir string) (license, notice string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", "", err
	}
	for _, e := range entries {
		name := strings.ToUpper(e.Name())
		if e.IsDir() {
			continue
		}
		isLicense := strings.HasPrefix(name, "LICENSE") || strings.HasPrefix(name, "LICENCE") || strings.HasPrefix(name, "COPYING")
		isNotice := strings.HasPrefix(name, "NOTICE") || name == "PATENTS"
		if !isLicense && !isNotice {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", "", err
		}
		if isLicense {
			license += string(b) + "\n"
		} else {
			notice += e.Name() + ":\n" + string(b) + "\n"
		}
	}
	if license == "" {
		return "", "", fmt.Errorf("no LICENSE file in %s", dir)
	}
	return license, notice, nil
}

// goEnv returns one `go env` value.
func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// copyright writes /usr/share/doc/aiassist/copyright in the machine-
// readable format: aiassist itself, every Go module compiled into the
// binary (from its build info) and the Go runtime, and ONNX Runtime, each
// with its full license text.
//
// The deb's file refers to /usr/share/common-licenses/Apache-2.0 for the
// Apache License's terms, as Debian policy asks; the rpm's (format "rpm")
// holds them, as rpm systems have no such folder.
func copyright(w io.Writer, format, binary, runtimeDir string) error {
	if format != "deb" && format != "rpm" {
		return fmt.Errorf("-format %q: use deb or rpm", format)
	}
	text := func(license string) string {
		if format == "deb" {
			return withoutApacheTerms(license)
		}
		return license
	}
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("cannot read the Go build info of %s: %w", binary, err)
	}
	modcache, err := goEnv("GOMODCACHE")
	if err != nil {
		return err
	}
	goroot, err := goEnv("GOROOT")
	if err != nil {
		return err
	}
	ortVersion, err := os.ReadFile(filepath.Join(runtimeDir, ".version"))
	if err != nil {
		return fmt.Errorf("cannot read the ONNX Runtime version (run packaging/fetch-onnxruntime.sh): %w", err)
	}
	ortFields := strings.Fields(string(ortVersion))
	if len(ortFields) != 2 {
		return fmt.Errorf("%s/.version is %q, not VERSION SHA256", runtimeDir, ortVersion)
	}

	fmt.Fprint(w, `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: aiassist
Source: https://github.com/aiassist/aiassist
`)
	// The project states no license of its own yet; the paragraph says so
	// rather than claim one.
	paragraph{
		files:     []string{"*"},
		copyright: []string{"the aiassist authors"},
		license:   "aiassist-unlicensed",
		text:      "The aiassist repository does not state a license yet. Until it does, all\nrights are reserved by its authors.",
		comment:   "The daemon, its configs and the bundled demo models (generated by engine/modelgen).",
	}.write(w)

	ortLicense, _, err := licenseFiles(runtimeDir)
	if err != nil {
		return fmt.Errorf("%w (packaging/fetch-onnxruntime.sh puts it there)", err)
	}
	ortKind, err := classify(ortLicense)
	if err != nil {
		return fmt.Errorf("ONNX Runtime's license: %w", err)
	}
	paragraph{
		files:     []string{"usr/lib/aiassist/*"},
		copyright: holders(ortLicense, "Microsoft Corporation"),
		license:   ortKind,
		text:      ortLicense,
		comment: fmt.Sprintf("ONNX Runtime %s, the official CPU build for linux/x64, taken from the npm package\n"+
			"onnxruntime-node@%s (tarball sha256 %s).", ortFields[0], ortFields[0], ortFields[1]),
	}.write(w)

	goLicense, _, err := licenseFiles(goroot)
	if err != nil {
		return err
	}
	paragraph{
		files:     []string{"vendor/go/*"},
		copyright: holders(goLicense, "The Go Authors"),
		license:   "BSD-3-Clause",
		text:      goLicense,
		comment:   fmt.Sprintf("The Go runtime and standard library (%s), compiled into /usr/bin/aiassistd.", info.GoVersion),
	}.write(w)

	deps := slices.Clone(info.Deps)
	slices.SortFunc(deps, func(a, b *debug.Module) int { return strings.Compare(a.Path, b.Path) })
	for _, d := range deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		dir := filepath.Join(modcache, escapePath(m.Path)+"@"+m.Version)
		license, notice, err := licenseFiles(dir)
		if err != nil {
			return fmt.Errorf("module %s %s: %w (go mod download fetches it)", m.Path, m.Version, err)
		}
		kind, err := classify(license)
		if err != nil {
			return fmt.Errorf("module %s %s: %w", m.Path, m.Version, err)
		}
		comment := fmt.Sprintf("Go module %s %s, compiled into /usr/bin/aiassistd.", m.Path, m.Version)
		if notice != "" {
			comment += "\n\n" + notice
		}
		paragraph{
			files:     []string{"vendor/" + m.Path + "/*"},
			copyright: holders(license, "the authors of "+m.Path),
			license:   kind,
			text:      text(license),
			comment:   comment,
		}.write(w)
	}
	return nil
}

// apacheHeading is the first line of the Apache License 2.0's text.
var apacheHeading = regexp.MustCompile(`(?m)^[ \t]*Apache License[ \t]*\n[ \t]*Version 2\.0, January 2004`)

// withoutApacheTerms replaces the terms of the Apache License 2.0 in a
// license file (from its heading to END OF TERMS AND CONDITIONS) with a
// pointer to Debian's copy, keeping the rest: other licenses in the same
// file and the notice of how the license was applied.
func withoutApacheTerms(text string) string {
	loc := apacheHeading.FindStringIndex(text)
	if loc == nil {
		return text
	}
	const end = "END OF TERMS AND CONDITIONS"
	i := strings.Index(text[loc[0]:], end)
	if i < 0 {
		return text
	}
	return text[:loc[0]] + "The terms of the Apache License, Version 2.0: on Debian systems in\n" +
		"/usr/share/common-licenses/Apache-2.0." + text[loc[0]+i+len(end):]
}
