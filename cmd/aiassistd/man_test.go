package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// deroff turns the man page back into the text it was made from: requests
// dropped, escapes undone.
func deroff(page string) string {
	var out []string
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, ".") {
			continue
		}
		line = strings.ReplaceAll(line, `\&`, "")
		line = strings.ReplaceAll(line, `\-`, "-")
		line = strings.ReplaceAll(line, `\e`, `\`)
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// TestManPage checks that aiassistd(8) holds the usage text and every
// command's -h, word for word, and that man(1) reads it without a warning
// (what lintian checks in the package).
func TestManPage(t *testing.T) {
	var page, stderr bytes.Buffer
	if code := run([]string{"man"}, &page, &stderr); code != 0 {
		t.Fatalf("aiassistd man: exit %d: %s", code, stderr.String())
	}
	text := deroff(page.String())
	var u bytes.Buffer
	usage(&u)
	want := strings.TrimRight(strings.ReplaceAll(u.String(), "\t", "        "), "\n")
	if !strings.Contains(text, want) {
		t.Errorf("the man page does not hold the usage text:\n%s", want)
	}
	cmds := commands()
	for _, c := range []string{"serve", "check", "reload", "version", "keygen", "token", "encrypt", "decrypt", "rules"} {
		if !strings.Contains(" "+strings.Join(cmds, " ")+" ", " "+c+" ") {
			t.Errorf("commands() = %q, without %s: the usage text's layout changed", cmds, c)
		}
	}
	for _, c := range cmds {
		if !strings.Contains(page.String(), ".SS "+roffText("aiassistd "+c)+"\n") {
			t.Errorf("the man page has no section for %s", c)
		}
		help := strings.TrimRight(strings.ReplaceAll(commandHelp(c), "\t", "        "), "\n")
		if !strings.Contains(help, "-") {
			t.Errorf("aiassistd %s -h printed no flags: %q", c, help)
		}
		if !strings.Contains(text, help) {
			t.Errorf("the man page does not hold `aiassistd %s -h`:\n%s", c, help)
		}
	}
	if strings.Contains(u.String(), "  man ") {
		t.Errorf("man is listed in the usage text; it is for the packages only")
	}

	manCmd, err := exec.LookPath("man")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("man is missing; CI installs lintian, which needs man-db")
		}
		t.Skip("man is missing")
	}
	path := filepath.Join(t.TempDir(), "aiassistd.8")
	if err := os.WriteFile(path, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// The way lintian runs it (checks/documentation/manual.pm).
	cmd := exec.Command(manCmd, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MANROFFSEQ=", "MANWIDTH=80")
	var warn bytes.Buffer
	cmd.Stderr = &warn
	if err := cmd.Run(); err != nil || warn.Len() > 0 {
		t.Errorf("man --warnings: %v\n%s", err, warn.String())
	}
}
