// Package hub fetches a model's files from a Hugging Face–compatible hub:
// it lists a repository revision through the hub's API, picks the files an
// ONNX decoder folder needs, and downloads each one resumably, verified
// against the listing's checksums before it is renamed into place.
//
// The package speaks the hub's HTTP protocol only; it needs no ONNX
// Runtime and no Python. Every address comes from the caller's Endpoint,
// so tests and mirrors point it at their own server.
package hub

import (
	"fmt"
	"strings"
)

// DefaultEndpoint is the hub a user's machine talks to when neither
// -endpoint nor HF_ENDPOINT names another. It is the only hub address in
// the code; tests always set their own.
const DefaultEndpoint = "https://huggingface.co"

// Ref names a repository revision: hf://ORG/REPO[@REVISION].
type Ref struct {
	Repo     string // ORG/REPO
	Revision string // a branch, tag or commit; "main" if the reference names none
}

func (r Ref) String() string { return "hf://" + r.Repo + "@" + r.Revision }

// Name is the repository's own name, REPO, which a pulled folder is
// called by default.
func (r Ref) Name() string { return r.Repo[strings.IndexByte(r.Repo, '/')+1:] }

// ParseRef parses hf://ORG/REPO[@REVISION].
func ParseRef(s string) (Ref, error) {
	rest, ok := strings.CutPrefix(s, "hf://")
	if !ok {
		return Ref{}, fmt.Errorf("model reference %q must start with hf://, as in hf://ORG/REPO or hf://ORG/REPO@REVISION", s)
	}
	repo, rev, hasRev := strings.Cut(rest, "@")
	org, name, ok := strings.Cut(repo, "/")
	if !ok || !validRepoPart(org) || !validRepoPart(name) {
		return Ref{}, fmt.Errorf("model reference %q: want hf://ORG/REPO, each part letters, digits, '.', '_' or '-' (at most 96)", s)
	}
	if !hasRev {
		rev = "main"
	}
	if !validRevision(rev) {
		return Ref{}, fmt.Errorf("model reference %q: revision %q must be a branch, tag or commit id (printable, no spaces, no '..', at most 256 bytes)", s, rev)
	}
	return Ref{Repo: repo, Revision: rev}, nil
}

func validRepoPart(s string) bool {
	if s == "" || len(s) > 96 || strings.Contains(s, "..") || strings.ContainsAny(s[:1]+s[len(s)-1:], ".-") {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validRevision accepts what git accepts in a ref name, roughly: branch
// names may hold '/' (refs/pr/1), which the URLs escape.
func validRevision(s string) bool {
	if s == "" || len(s) > 256 || strings.Contains(s, "..") {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`~^:?*[\`, c) >= 0 {
			return false
		}
	}
	return true
}
