package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// goFiles parses every non-test Go file of the module, by package folder.
func goFiles(t *testing.T) map[string][]*ast.File {
	t.Helper()
	root := filepath.Join("..", "..")
	out := map[string][]*ast.File{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "build" || d.Name() == "bin" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		out[rel] = append(out[rel], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPackageDocs: every package says its one job in a doc comment that
// starts "Package <name>" (or "<Name> is/does" for commands).
func TestPackageDocs(t *testing.T) {
	for dir, files := range goFiles(t) {
		var doc string
		name := files[0].Name.Name
		for _, f := range files {
			if f.Doc != nil {
				doc = f.Doc.Text()
			}
		}
		switch {
		case doc == "":
			t.Errorf("%s: package %s has no doc comment", dir, name)
		case name != "main" && !strings.HasPrefix(doc, "Package "+name+" "):
			t.Errorf("%s: the doc comment of package %s does not start with %q", dir, name, "Package "+name)
		}
	}
}

// TestReadmeListsEveryMetric: every aiassist_ series the code registers is
// named in the README.
func TestReadmeListsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^aiassist_[a-z0-9_]*[a-z0-9]`)
	var missing []string
	for _, files := range goFiles(t) {
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				if m := name.FindString(s); m != "" && !strings.HasSuffix(m, "_") && !strings.Contains(string(readme), m) && !slices.Contains(missing, m) {
					missing = append(missing, m)
				}
				return true
			})
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("README.md does not mention the metric %s", m)
	}
}
