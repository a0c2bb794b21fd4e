package hub

import (
	"strings"
	"testing"
)

// FuzzParseRef: a reference either fails with an error or gives a
// repository and revision that are safe in a URL path and print back to
// a reference that parses to the same.
func FuzzParseRef(f *testing.F) {
	f.Add("hf://org/repo")
	f.Add("hf://onnx-community/Qwen2.5-0.5B-Instruct@refs/pr/1")
	f.Add("hf://org/repo@0123456789abcdef0123456789abcdef01234567")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		if strings.Count(r.Repo, "/") != 1 || strings.Contains(r.Repo, "..") || strings.ContainsAny(r.Repo, "?#%@ ") || r.Revision == "" {
			t.Fatalf("ParseRef(%q) = %+v", s, r)
		}
		if again, err := ParseRef(r.String()); err != nil || again != r {
			t.Fatalf("ParseRef(%q) = %+v, but its String %q parses to %+v, %v", s, r, r.String(), again, err)
		}
	})
}

// FuzzParseContentRange: a Content-Range header never makes a negative
// start, and a good one round-trips.
func FuzzParseContentRange(f *testing.F) {
	f.Add("bytes 100-199/200")
	f.Add("bytes 0-0/*")
	f.Add("bytes */200")
	f.Fuzz(func(t *testing.T, s string) {
		start, size, ok := parseContentRange(s)
		if ok && (start < 0 || size < -1) {
			t.Fatalf("parseContentRange(%q) = %d, %d", s, start, size)
		}
	})
}
