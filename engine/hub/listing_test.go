package hub

import (
	"bytes"
	"strings"
	"testing"
)

const goodListing = `{"_id":"0","id":"org/r","sha":"0123456789abcdef0123456789abcdef01234567","gated":false,"siblings":[
{"rfilename":"config.json","blobId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":12},
{"rfilename":"tokenizer.json","blobId":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":34},
{"rfilename":"onnx/model.onnx","blobId":"cccccccccccccccccccccccccccccccccccccccc","size":56,
 "lfs":{"sha256":"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd","size":56,"pointerSize":130}}]}`

func TestParseListing(t *testing.T) {
	l, err := ParseListing(strings.NewReader(goodListing))
	if err != nil {
		t.Fatal(err)
	}
	if l.Repo != "org/r" || l.Gated || len(l.Files) != 3 || !l.Files[2].LFS() || l.Files[2].Size != 56 || l.Files[0].LFS() {
		t.Errorf("parsed %+v", l)
	}
	bad := func(from, to, want string) {
		t.Helper()
		in := strings.Replace(goodListing, from, to, 1)
		if in == goodListing {
			t.Fatalf("%q is not in the listing", from)
		}
		if _, err := ParseListing(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("with %q: %v; want an error with %q", to, err, want)
		}
	}
	bad(`"config.json"`, `"../config.json"`, "not a relative slash-separated path")
	bad(`"config.json"`, `"/etc/passwd"`, "not a relative slash-separated path")
	bad(`"config.json"`, `"a\\b"`, "backslash")
	bad(`"config.json"`, `"tokenizer.json"`, `names "tokenizer.json" twice`)
	bad(`"size":12`, `"size":-1`, "out of range")
	bad(`"size":12`, `"size":"12"`, "not the JSON a hub sends")
	bad(`"blobId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",`, ``, "no size or blobId")
	bad(`"size":56,"pointerSize"`, `"size":57,"pointerSize"`, "lfs.size 57 differs")
	bad(`"dddd`, `"xddd`, "not a 64-digit hex digest")
	bad(`"sha":"0123`, `"sha":"z123`, "commit")
	bad(`]}`, `]}{}`, "data after")
	bad(`"siblings"`, `"files"`, "no siblings")
	if l, err := ParseListing(strings.NewReader(strings.Replace(goodListing, `"gated":false`, `"gated":"manual"`, 1))); err != nil || !l.Gated {
		t.Errorf("gated manual: %+v, %v", l, err)
	}
	if _, err := ParseListing(endless{}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized listing: %v", err)
	}
}

// endless is a response that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

// FuzzParseListing feeds arbitrary bytes to the listing parser: it never
// panics, and what it accepts is safe to download: relative paths, sane
// sizes, well-formed digests; Select on it never panics either.
func FuzzParseListing(f *testing.F) {
	f.Add([]byte(goodListing))
	f.Add([]byte(`{"siblings":[]}`))
	f.Add([]byte(`{"siblings":[{"rfilename":"genai/genai_config.json","blobId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseListing(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, file := range l.Files {
			if checkPath(file.Path) != nil || file.Size < 0 || !isHex(file.BlobID, 40) || (file.SHA256 != "" && !isHex(file.SHA256, 64)) {
				t.Fatalf("accepted %+v", file)
			}
		}
		for _, v := range []string{"", "fp16", "q4", "int8"} {
			if s, err := Select(l, v); err == nil {
				for _, p := range s.Files {
					if checkPath(p.Local) != nil {
						t.Fatalf("selected a local path %q", p.Local)
					}
				}
			}
		}
	})
}
