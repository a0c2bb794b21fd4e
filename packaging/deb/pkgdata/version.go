package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// describe matches git describe --long: TAG-COUNT-gHASH[-dirty].
var describe = regexp.MustCompile(`^v?([0-9][0-9A-Za-z.~+-]*)-([0-9]+)-g([0-9a-f]+)(-dirty)?$`)

// git runs git in dir and returns its trimmed output.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// gitVersion turns git describe into a version dpkg and rpm both accept
// and order as the history does (see fromDescribe); without a tag the base
// is 0.0.0 and the count is of every commit, so later commits still sort
// later.
func gitVersion(dir string) (string, error) {
	if d, err := git(dir, "describe", "--tags", "--long", "--dirty", "--match", "v[0-9]*"); err == nil {
		return fromDescribe(d)
	}
	count, err := git(dir, "rev-list", "--count", "HEAD")
	if err != nil {
		return "", err
	}
	hash, err := git(dir, "rev-parse", "--short", "HEAD")
	if err != nil {
		return "", err
	}
	status, err := git(dir, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return "", err
	}
	return join("0.0.0", count, hash, status != ""), nil
}

// fromDescribe turns git describe --long into a package version: the tag
// vX.Y.Z is X.Y.Z, a commit after it X.Y.Z+gitN.gHASH, a tree with changes
// adds .dirty.
func fromDescribe(d string) (string, error) {
	m := describe.FindStringSubmatch(d)
	if m == nil {
		return "", fmt.Errorf("git describe gave %q, which is not TAG-N-gHASH; tag releases as vX.Y.Z", d)
	}
	// A hyphen ends the upstream version in dpkg and is not allowed in an
	// rpm version: v1.2.0-rc1 is 1.2.0~rc1, which both sort before 1.2.0.
	return join(strings.ReplaceAll(m[1], "-", "~"), m[2], m[3], m[4] != ""), nil
}

func join(base, count, hash string, dirty bool) string {
	v := base
	if count != "0" || dirty {
		v += "+git" + count + ".g" + hash
	}
	if dirty {
		v += ".dirty"
	}
	return v
}

// changelog writes the Debian changelog entry of version: the commit it
// was built from, dated by the commit, so a rebuild is byte for byte the
// same.
func changelog(w interface{ Write([]byte) (int, error) }, dir, version string) error {
	hash, err := git(dir, "rev-parse", "--short", "HEAD")
	if err != nil {
		return err
	}
	subject, err := git(dir, "log", "-1", "--format=%s")
	if err != nil {
		return err
	}
	unix, err := git(dir, "log", "-1", "--format=%ct")
	if err != nil {
		return err
	}
	var sec int64
	if _, err := fmt.Sscan(unix, &sec); err != nil {
		return fmt.Errorf("commit time %q: %w", unix, err)
	}
	fmt.Fprintf(w, "aiassist (%s) unstable; urgency=medium\n\n", version)
	fmt.Fprintf(w, "  * Built from commit %s:\n", hash)
	for _, line := range wrap(subject, 68) {
		fmt.Fprintf(w, "    %s\n", line)
	}
	fmt.Fprintf(w, "\n -- %s  %s\n", maintainer, time.Unix(sec, 0).UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	return nil
}

// maintainer is the package's Maintainer, as packaging/deb/nfpm.yaml says.
const maintainer = "aiassist maintainers <maintainers@aiassist.invalid>"

// wrap breaks s into lines of at most width bytes at spaces (a longer word
// gets a line of its own).
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
