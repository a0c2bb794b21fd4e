package api

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProtocolPackagesApart keeps each protocol to its own package: route
// is shared and imports none of them, kserve and openai never import each
// other or the server, so a route of one cannot reach into the other.
func TestProtocolPackagesApart(t *testing.T) {
	const prefix = "github.com/aiassist/aiassist/daemon/api"
	for pkg, forbidden := range map[string][]string{
		"./route":  {prefix, prefix + "/kserve", prefix + "/openai"},
		"./kserve": {prefix, prefix + "/openai"},
		"./openai": {prefix, prefix + "/kserve"},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}
