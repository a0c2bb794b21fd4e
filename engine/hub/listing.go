package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"unicode/utf8"
)

// File is one file of a repository revision, as the hub's listing gives
// it. Large files live in Git LFS and are verified by SHA256; the others
// are plain git blobs, verified by their git blob id.
type File struct {
	Path   string // slash-separated, inside the repository
	Size   int64
	BlobID string // git blob id (SHA1 hex) of the file, or of its LFS pointer
	SHA256 string // hex SHA256 of the content of an LFS file; empty for a plain blob
}

// LFS reports whether the file is stored in Git LFS.
func (f File) LFS() bool { return f.SHA256 != "" }

// Listing is a repository revision's file list.
type Listing struct {
	Repo   string // ORG/REPO as the hub spells it
	Commit string // the commit the revision resolved to; downloads pin it
	Gated  bool   // the repository asks users to accept conditions first
	Files  []File
}

// Limits of a listing: a real repository has a few hundred files, the
// largest few thousand; beyond these the response is not a listing.
const (
	maxListingBytes = 32 << 20
	maxFiles        = 100000
	maxPathBytes    = 1024
	maxFileSize     = 1 << 46 // 64 TiB
)

// ParseListing reads the hub's answer to GET /api/models/{repo}/revision/
// {rev}?blobs=true. It is strict about what downloads rely on: every file
// needs a safe relative path, a size and a blob id, an LFS file a SHA256
// whose size agrees, and no path may repeat. Fields it does not use are
// ignored; at most 32 MiB is read.
func ParseListing(r io.Reader) (*Listing, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxListingBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the listing: %w", err)
	}
	if len(data) > maxListingBytes {
		return nil, fmt.Errorf("the listing is larger than %d MiB; is the endpoint a hub?", maxListingBytes>>20)
	}
	var raw struct {
		ID       string          `json:"id"`
		SHA      string          `json:"sha"`
		Gated    json.RawMessage `json:"gated"`
		Siblings *[]struct {
			RFilename *string `json:"rfilename"`
			Size      *int64  `json:"size"`
			BlobID    *string `json:"blobId"`
			LFS       *struct {
				SHA256 string `json:"sha256"`
				Size   int64  `json:"size"`
			} `json:"lfs"`
		} `json:"siblings"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("the listing is not the JSON a hub sends: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("the listing has data after its JSON object")
	}
	if raw.Siblings == nil {
		return nil, errors.New("the listing has no siblings (file list); is the endpoint a hub?")
	}
	if len(*raw.Siblings) > maxFiles {
		return nil, fmt.Errorf("the listing names %d files, more than %d", len(*raw.Siblings), maxFiles)
	}
	l := &Listing{Repo: raw.ID}
	if raw.SHA != "" {
		if !isHex(raw.SHA, 40) {
			return nil, fmt.Errorf("the listing's commit %.80q is not a 40-digit hex id", raw.SHA)
		}
		l.Commit = raw.SHA
	}
	// gated is false, or the kind of gate ("auto", "manual").
	switch g := string(raw.Gated); g {
	case "", "null", "false":
	default:
		l.Gated = true
	}
	seen := make(map[string]bool, len(*raw.Siblings))
	for i, s := range *raw.Siblings {
		if s.RFilename == nil {
			return nil, fmt.Errorf("listing file %d has no rfilename", i)
		}
		p := *s.RFilename
		if err := checkPath(p); err != nil {
			return nil, fmt.Errorf("listing file %d: %w", i, err)
		}
		if seen[p] {
			return nil, fmt.Errorf("the listing names %q twice", p)
		}
		seen[p] = true
		if s.Size == nil || s.BlobID == nil {
			return nil, fmt.Errorf("listing file %q has no size or blobId: the endpoint must answer ?blobs=true with them", p)
		}
		f := File{Path: p, Size: *s.Size, BlobID: strings.ToLower(*s.BlobID)}
		if f.Size < 0 || f.Size > maxFileSize {
			return nil, fmt.Errorf("listing file %q: size %d is out of range", p, f.Size)
		}
		if !isHex(f.BlobID, 40) {
			return nil, fmt.Errorf("listing file %q: blobId %.80q is not a 40-digit hex id", p, *s.BlobID)
		}
		if s.LFS != nil {
			f.SHA256 = strings.ToLower(s.LFS.SHA256)
			if !isHex(f.SHA256, 64) {
				return nil, fmt.Errorf("listing file %q: lfs.sha256 %.80q is not a 64-digit hex digest", p, s.LFS.SHA256)
			}
			if s.LFS.Size != f.Size {
				return nil, fmt.Errorf("listing file %q: lfs.size %d differs from its size %d", p, s.LFS.Size, f.Size)
			}
		}
		l.Files = append(l.Files, f)
	}
	return l, nil
}

// checkPath refuses a path that could leave the model folder or that no
// file system holds: absolute, with "." or ".." elements, backslashes or
// control characters.
func checkPath(p string) error {
	if len(p) > maxPathBytes || !utf8.ValidString(p) || !fs.ValidPath(p) || p == "." {
		return fmt.Errorf("path %.80q is not a relative slash-separated path of at most %d bytes", p, maxPathBytes)
	}
	for _, c := range p {
		if c < ' ' || c == 0x7f || c == '\\' {
			return fmt.Errorf("path %.80q holds a control character or a backslash", p)
		}
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
