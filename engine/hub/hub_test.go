package hub

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiassist/aiassist/engine/generate"
	"github.com/aiassist/aiassist/engine/hub/hubtest"
	"github.com/aiassist/aiassist/engine/internal/testpaths"
	"github.com/aiassist/aiassist/engine/modelgen"
)

const repo = "org/tiny-llama"

// tinyLlamaRepo is examples/models/tiny-llama laid out as a hub export:
// the decoder in onnx/, a q4 twin beside it, and files a pull skips.
func tinyLlamaRepo(t *testing.T) map[string][]byte {
	t.Helper()
	repoOnce.Do(func() { repoFiles = buildRepo(t) })
	if repoFiles == nil {
		t.Fatal("cannot build the tiny-llama repository")
	}
	return maps.Clone(repoFiles)
}

var (
	repoOnce  sync.Once
	repoFiles map[string][]byte
)

func buildRepo(t *testing.T) map[string][]byte {
	dir := filepath.Join(testpaths.RepoRoot(t), "examples", "models", "tiny-llama")
	files := map[string][]byte{
		"README.md":      []byte("# tiny-llama\n"),
		".gitattributes": []byte("*.onnx filter=lfs diff=lfs merge=lfs -text\n"),
	}
	for _, name := range []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	model, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	files["onnx/model.onnx"] = model
	// The q4 variant is the int4 (MatMulNBits) export of the same model.
	q4 := modelgen.QuantizeNBits(modelgen.TinyLlama().Llama, modelgen.NBitsOptions{BlockSize: 32, ZeroPoints: true})
	if files["onnx/model_q4.onnx"], err = modelgen.Marshal(q4.Model("tiny-llama-q4")); err != nil {
		t.Fatal(err)
	}
	return files
}

func newHub(t *testing.T, repos map[string]map[string][]byte) *hubtest.Hub {
	h := hubtest.New(repos)
	t.Cleanup(h.Close)
	return h
}

func pull(t *testing.T, c *Client, ref, variant, dir string) (*Result, error) {
	t.Helper()
	r, err := ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	return c.Pull(context.Background(), r, variant, dir)
}

// sameFiles checks that dir holds want's files (local name → repository
// path) byte for byte, and nothing half-written.
func sameFiles(t *testing.T, dir string, repoFiles map[string][]byte, want map[string]string) {
	t.Helper()
	for local, remote := range want {
		got, err := os.ReadFile(filepath.Join(dir, local))
		if err != nil || !slices.Equal(got, repoFiles[remote]) {
			t.Errorf("%s: %d bytes, %v; want the %d bytes of %s", local, len(got), err, len(repoFiles[remote]), remote)
		}
	}
	partials, _ := filepath.Glob(filepath.Join(dir, "*", "*.partial"))
	more, _ := filepath.Glob(filepath.Join(dir, "*.partial"))
	if len(partials)+len(more) > 0 {
		t.Errorf("partial files left: %v %v", partials, more)
	}
}

// newest reports whether no file in dir is newer than t.
func newest(t *testing.T, dir string, mod time.Time) bool {
	t.Helper()
	ok := true
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, err := d.Info(); err == nil && st.ModTime().After(mod) && d.Name() != ".pull.lock" {
				ok = false
			}
		}
		return nil
	})
	return ok
}

var tinyLayout = map[string]string{
	"config.json": "config.json", "generation_config.json": "generation_config.json",
	"tokenizer.json": "tokenizer.json", "tokenizer_config.json": "tokenizer_config.json",
	"onnx/model.onnx": "onnx/model.onnx",
}

// TestPull pulls tiny-llama from a local hub with a token: the files land
// as engine/generate reads them, verified; the token never reaches the
// storage host; a second pull downloads nothing.
func TestPull(t *testing.T) {
	t.Parallel()
	files := tinyLlamaRepo(t)
	h := newHub(t, map[string]map[string][]byte{repo: files})
	h.SetToken("hf_secret")
	c := &Client{Endpoint: h.API.URL, Token: "hf_secret"}
	dir := filepath.Join(t.TempDir(), "tiny")
	res, err := pull(t, c, "hf://"+repo, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dir, files, tinyLayout)
	if res.Selection.Layout != "optimum" || res.Downloaded != 5 || res.Listing.Commit != hubtest.Commit {
		t.Errorf("result %+v", res)
	}
	if st, err := os.Stat(filepath.Join(dir, "onnx", "model.onnx")); err != nil || !newest(t, dir, st.ModTime()) {
		t.Errorf("the decoder is not the last file put in place")
	}
	st := h.Stats()
	if st.Listings != 1 || st.Resolves != 5 || st.CDN != 1 || st.CDNAuth != 0 {
		t.Errorf("stats %+v: want 1 listing, 5 resolves, 1 storage request without Authorization", st)
	}
	if _, err := generate.ModelFiles(dir); err != nil {
		t.Errorf("the pulled folder does not list: %v", err)
	}

	res, err = pull(t, c, "hf://"+repo+"@main", "fp32", dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); res.Downloaded != 0 || st.Resolves != 0 || st.CDN != 0 {
		t.Errorf("second pull downloaded %d files, stats %+v; want none", res.Downloaded, st)
	}

	// q4 replaces the decoder in place.
	if _, err := pull(t, c, "hf://"+repo, "q4", dir); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dir, files, map[string]string{"onnx/model.onnx": "onnx/model_q4.onnx"})
	if st := h.Stats(); st.Resolves != 1 || !slices.Equal(st.Ranges["onnx/model_q4.onnx"], []string{"", ""}) {
		t.Errorf("q4 over fp32: stats %+v; want one resolve and one storage request, no Range", st)
	}
}

// TestPullResumes cuts the decoder's download in the middle: the pull
// resumes it with Range and finishes. Server errors are retried. A .partial left by an earlier run
// is resumed too, and one that does not verify is fetched again whole.
func TestPullResumes(t *testing.T) {
	t.Parallel()
	files := tinyLlamaRepo(t)
	model := files["onnx/model.onnx"]
	h := newHub(t, map[string]map[string][]byte{repo: files})
	c := &Client{Endpoint: h.API.URL}

	dir := t.TempDir()
	cut := int64(len(model) / 2)
	h.CutOnce("onnx/model.onnx", cut)
	if _, err := pull(t, c, "hf://"+repo, "", dir); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dir, files, tinyLayout)
	ranges := h.Stats().Ranges["onnx/model.onnx"]
	if len(ranges) != 4 || ranges[0] != "" || !strings.HasPrefix(ranges[2], "bytes=") || ranges[2] == "bytes=0-" {
		t.Errorf("Range headers (resolve, storage, ...) %q; want a second request resuming near byte %d", ranges, cut)
	}

	// A busy hub (503) and a rate limit (429, Retry-After: 1) are waited out.
	dir = t.TempDir()
	h.FailOnce("tokenizer.json", http.StatusServiceUnavailable)
	h.FailOnce("config.json", http.StatusTooManyRequests)
	h.FailOnce("listing", http.StatusBadGateway)
	// The storage host refusing an expired signed URL means resolve anew.
	h.FailOnce("storage:onnx/model.onnx", http.StatusForbidden)
	if _, err := pull(t, c, "hf://"+repo, "", dir); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dir, files, tinyLayout)
	if st := h.Stats(); st.Listings != 2 || st.Resolves != 8 || st.CDN != 2 {
		t.Errorf("%d resolves, %d storage requests; want 8 (5 files, 3 of them twice) and 2", st.Resolves, st.CDN)
	}

	dir = t.TempDir()
	os.MkdirAll(filepath.Join(dir, "onnx"), 0o755)
	os.WriteFile(filepath.Join(dir, "onnx", "model.onnx.partial"), model[:1000], 0o644)
	if _, err := pull(t, c, "hf://"+repo, "", dir); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dir, files, tinyLayout)
	if ranges := h.Stats().Ranges["onnx/model.onnx"]; !slices.Equal(ranges, []string{"bytes=1000-", "bytes=1000-"}) {
		t.Errorf("Range headers %q; want the partial resumed at 1000", ranges)
	}

	dir = t.TempDir()
	os.MkdirAll(filepath.Join(dir, "onnx"), 0o755)
	bad := slices.Clone(model[:1000])
	bad[10] ^= 0xff
	os.WriteFile(filepath.Join(dir, "onnx", "model.onnx.partial"), bad, 0o644)
	if _, err := pull(t, c, "hf://"+repo, "", dir); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dir, files, tinyLayout)
	if ranges := h.Stats().Ranges["onnx/model.onnx"]; !slices.Equal(ranges, []string{"bytes=1000-", "bytes=1000-", "", ""}) {
		t.Errorf("Range headers %q; want the bad partial resumed, refused, then fetched whole", ranges)
	}
}

// TestPullVerifies serves files with one byte flipped: the pull fails
// naming the check, and neither the file nor a .partial is left.
func TestPullVerifies(t *testing.T) {
	t.Parallel()
	files := tinyLlamaRepo(t)
	h := newHub(t, map[string]map[string][]byte{repo: files})
	c := &Client{Endpoint: h.API.URL}
	f := func(file, local, want string) {
		t.Helper()
		h.Corrupt(file, true)
		defer h.Corrupt(file, false)
		dir := t.TempDir()
		_, err := pull(t, c, "hf://"+repo, "", dir)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "deleted") {
			t.Fatalf("corrupt %s: %v; want an error with %q", file, err, want)
		}
		for _, p := range []string{local, local + ".partial"} {
			if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("corrupt %s: %s is there (%v)", file, p, err)
			}
		}
	}
	f("onnx/model.onnx", "onnx/model.onnx", "its SHA256 is")
	f("tokenizer.json", "tokenizer.json", "its git blob id is")
}

// TestPullErrors checks that each refusal says what to do, and never
// shows the token.
func TestPullErrors(t *testing.T) {
	t.Parallel()
	files := tinyLlamaRepo(t)
	h := newHub(t, map[string]map[string][]byte{
		repo:             files,
		"org/gated":      files,
		"org/safetensor": {"config.json": []byte("{}"), "model.safetensors": []byte("weights"), "tokenizer.json": []byte("{}")},
	})
	h.SetGated("org/gated")
	f := func(token, ref, variant, want string) {
		t.Helper()
		c := &Client{Endpoint: h.API.URL, Token: token}
		_, err := pull(t, c, ref, variant, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s (token %q): %v; want an error with %q", ref, token, err, want)
		} else if token != "" && strings.Contains(err.Error(), token) {
			t.Errorf("%s: the error shows the token: %v", ref, err)
		}
	}
	f("", "hf://org/missing", "", "repository not found (401): check ORG/REPO, or, if it is private, set HF_TOKEN")
	f("hf_x", "hf://org/missing", "", "repository not found (404)")
	f("", "hf://"+repo+"@v9", "", `revision "v9" not found (404)`)
	f("", "hf://org/gated", "", "gated or restricted (403)")
	f("", "hf://"+repo, "fp16", "has no fp16 variant; -variant takes one of: fp32 (onnx/model.onnx), q4 (onnx/model_q4.onnx)")
	f("", "hf://org/safetensor", "", "has no ONNX export (no onnx/model.onnx, no genai_config.json); its files are config.json, model.safetensors, tokenizer.json")

	h.SetToken("hf_right")
	f("", "hf://"+repo, "", "(401)")
	f("hf_wrong", "hf://"+repo, "", "the hub refused the token (401)")
}

// TestPullDiskFull writes the decoder into /dev/full: the error says
// the disk is full and what to do.
func TestPullDiskFull(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	files := tinyLlamaRepo(t)
	h := newHub(t, map[string]map[string][]byte{repo: files})
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "onnx"), 0o755)
	if err := os.Symlink("/dev/full", filepath.Join(dir, "onnx", "model.onnx.partial")); err != nil {
		t.Fatal(err)
	}
	_, err := pull(t, &Client{Endpoint: h.API.URL}, "hf://"+repo, "", dir)
	if err == nil || !strings.Contains(err.Error(), "the disk is full writing") || !strings.Contains(err.Error(), "another -dir") {
		t.Errorf("pull into a full disk: %v", err)
	}
}

func TestParseRef(t *testing.T) {
	f := func(in string, want Ref, wantErr string) {
		t.Helper()
		got, err := ParseRef(in)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("ParseRef(%q) = %v, %v; want an error with %q", in, got, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("ParseRef(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("hf://onnx-community/Qwen2.5-0.5B-Instruct", Ref{"onnx-community/Qwen2.5-0.5B-Instruct", "main"}, "")
	f("hf://org/repo@refs/pr/1", Ref{"org/repo", "refs/pr/1"}, "")
	f("hf://org/repo@"+hubtest.Commit, Ref{"org/repo", hubtest.Commit}, "")
	f("org/repo", Ref{}, "must start with hf://")
	f("hf://org", Ref{}, "want hf://ORG/REPO")
	f("hf://org/re/po", Ref{}, "want hf://ORG/REPO")
	f("hf://../repo", Ref{}, "want hf://ORG/REPO")
	f("hf://org/repo@", Ref{}, "revision")
	f("hf://org/repo@a b", Ref{}, "revision")
	f("hf://org/repo@../x", Ref{}, "revision")
}

func TestSelect(t *testing.T) {
	listing := func(paths ...string) *Listing {
		l := &Listing{Repo: "org/r"}
		for _, p := range paths {
			l.Files = append(l.Files, File{Path: p, Size: 1, BlobID: strings.Repeat("a", 40)})
		}
		return l
	}
	f := func(l *Listing, variant string, want ...string) {
		t.Helper()
		s, err := Select(l, variant)
		if err != nil {
			t.Errorf("Select(%q): %v", variant, err)
			return
		}
		var got []string
		for _, p := range s.Files {
			got = append(got, p.Path+"->"+p.Local)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Select(%q) = %q, want %q", variant, got, want)
		}
	}
	opt := listing("config.json", "tokenizer.json", "tokenizer_config.json", "README.md",
		"onnx/model.onnx", "onnx/model.onnx_data", "onnx/model_fp16.onnx", "onnx/model_fp16.onnx_data",
		"onnx/model_fp16.onnx_data_1", "onnx/model_fp16.onnx_data_x", "onnx/model_quantized.onnx", "onnx/model_q4f16.onnx")
	base := []string{"config.json->config.json", "tokenizer.json->tokenizer.json", "tokenizer_config.json->tokenizer_config.json"}
	f(opt, "", append(base, "onnx/model.onnx->onnx/model.onnx", "onnx/model.onnx_data->onnx/model.onnx_data")...)
	f(opt, "fp16", append(base, "onnx/model_fp16.onnx->onnx/model.onnx", "onnx/model_fp16.onnx_data->onnx/model_fp16.onnx_data",
		"onnx/model_fp16.onnx_data_1->onnx/model_fp16.onnx_data_1")...)
	f(opt, "int8", append(base, "onnx/model_quantized.onnx->onnx/model.onnx")...)
	f(opt, "q4f16", append(base, "onnx/model_q4f16.onnx->onnx/model.onnx")...)
	f(listing("config.json", "tokenizer.json", "decoder_model_merged.onnx", "decoder_model_merged.onnx.data"), "",
		"config.json->config.json", "tokenizer.json->tokenizer.json", "decoder_model_merged.onnx->onnx/model.onnx",
		"decoder_model_merged.onnx.data->onnx/decoder_model_merged.onnx.data")
	genai := listing("README.md", "cpu-int4/genai_config.json", "cpu-int4/model.onnx", "cpu-int4/model.onnx.data",
		"cpu-int4/tokenizer.json", "cuda-fp16/genai_config.json", "cuda-fp16/model.onnx")
	f(genai, "cpu-int4", "cpu-int4/genai_config.json->genai_config.json", "cpu-int4/model.onnx->model.onnx",
		"cpu-int4/model.onnx.data->model.onnx.data", "cpu-int4/tokenizer.json->tokenizer.json")
	if _, err := Select(genai, ""); err == nil || !strings.Contains(err.Error(), "pick one with -variant: cpu-int4, cuda-fp16") {
		t.Errorf("two GenAI folders without -variant: %v", err)
	}
	if _, err := Select(listing("onnx/model.onnx", "tokenizer.json"), ""); err == nil || !strings.Contains(err.Error(), "no config.json at its top") {
		t.Errorf("no config.json: %v", err)
	}
}

// TestPullLocks holds the folder's lock as a running pull would: a
// second pull into the folder is refused and says why.
func TestPullLocks(t *testing.T) {
	t.Parallel()
	h := newHub(t, map[string]map[string][]byte{repo: tinyLlamaRepo(t)})
	dir := t.TempDir()
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pull(t, &Client{Endpoint: h.API.URL}, "hf://"+repo, "", dir); err == nil || !strings.Contains(err.Error(), "another pull is writing") {
		t.Errorf("pull into a locked folder: %v", err)
	}
	unlock()
	if _, err := pull(t, &Client{Endpoint: h.API.URL}, "hf://"+repo, "", dir); err != nil {
		t.Errorf("pull after the lock is released: %v", err)
	}
}

// TestCheckHeaders compares the resolve response's headers with the
// listing: a hub whose X-Linked-Etag, X-Linked-Size or plain ETag differs
// from its listing serves another revision than it listed.
func TestCheckHeaders(t *testing.T) {
	lfs := File{Path: "onnx/model.onnx", Size: 10, BlobID: strings.Repeat("1", 40), SHA256: strings.Repeat("a", 64)}
	plain := File{Path: "config.json", Size: 3, BlobID: strings.Repeat("b", 40)}
	f := func(file File, ri redirectInfo, etag, want string) {
		t.Helper()
		resp := &http.Response{Header: http.Header{}}
		if etag != "" {
			resp.Header.Set("ETag", etag)
		}
		err := checkHeaders(file, &ri, resp)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s %+v ETag %q: %v; want %q", file.Path, ri, etag, err, want)
		}
	}
	f(lfs, redirectInfo{linkedEtag: `"` + lfs.SHA256 + `"`, linkedSize: "10", redirected: true}, "", "")
	f(lfs, redirectInfo{linkedEtag: `"` + strings.Repeat("c", 64) + `"`, redirected: true}, "", "X-Linked-Etag is")
	f(lfs, redirectInfo{linkedEtag: `"` + lfs.SHA256 + `"`, linkedSize: "11", redirected: true}, "", "X-Linked-Size is")
	f(plain, redirectInfo{}, `"`+plain.BlobID+`"`, "")
	f(plain, redirectInfo{}, `W/"`+plain.BlobID+`"`, "")
	f(plain, redirectInfo{}, `"`+strings.Repeat("d", 40)+`"`, "ETag is")
	// A mirror's own ETag kind, or one from a storage host, says nothing.
	f(plain, redirectInfo{}, `"5f3a-1234"`, "")
	f(plain, redirectInfo{redirected: true}, `"`+strings.Repeat("d", 40)+`"`, "")
}

// TestErrorsHideSignedURLs fails a request to a signed URL: the error
// names the host and path but not the query, which holds the signature.
func TestErrorsHideSignedURLs(t *testing.T) {
	h := newHub(t, nil)
	addr := h.CDN.URL
	h.CDN.Close()
	_, err := (&Client{}).get(context.Background(), addr+"/repos/abc?X-Signature=s3cr3t&Expires=1", nil)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "/repos/abc") {
		t.Errorf("error %v; want one naming /repos/abc without the signature", err)
	}
}
