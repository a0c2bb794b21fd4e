// Package hubtest runs a local hub for tests: it serves repositories the
// way a Hugging Face–compatible hub does, from memory, on 127.0.0.1. The
// API lists a revision's files with sizes, blob ids and LFS SHA256s;
// resolve serves plain files itself with their git blob id as ETag and
// redirects LFS files to a second server (the storage host) with
// X-Linked-Etag and X-Linked-Size; both honour Range. Faults can be
// injected per file, and every request is counted.
package hubtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Commit is the commit id every revision of the hub resolves to.
const Commit = "0123456789abcdef0123456789abcdef01234567"

// Hub is a running local hub. Its fields may be changed between pulls.
type Hub struct {
	API *httptest.Server // the listing and resolve endpoint
	CDN *httptest.Server // the host LFS files redirect to

	mu    sync.Mutex
	repos map[string]map[string][]byte
	// Token, when set, is required as a bearer token by API and resolve.
	token string
	// gated repositories refuse downloads with 403 GatedRepo.
	gated map[string]bool
	// cut closes the connection once after n bytes of a file's body.
	cut map[string]int64
	// corrupt serves a file with one byte flipped.
	corrupt map[string]bool
	// fail answers the next resolve of a file with this status.
	fail  map[string]int
	stats Stats
}

// Stats counts what the hub served.
type Stats struct {
	Listings, Resolves, CDN int
	// Ranges lists the Range headers of resolve and CDN requests, by file.
	Ranges map[string][]string
	// CDNAuth counts CDN requests that carried an Authorization header,
	// which a client must not forward to another host.
	CDNAuth int
}

// New starts a hub serving repos: repository ORG/REPO → path → content.
// Files ending in .onnx, _data, .data or larger than 10 MiB are LFS files.
func New(repos map[string]map[string][]byte) *Hub {
	h := &Hub{repos: repos, gated: map[string]bool{}, cut: map[string]int64{}, corrupt: map[string]bool{}, fail: map[string]int{}}
	h.stats.Ranges = map[string][]string{}
	h.CDN = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	h.API = httptest.NewServer(http.HandlerFunc(h.route))
	return h
}

// route splits the escaped path, so that a revision such as refs%2Fpr%2F1
// stays one segment: GET /api/models/ORG/REPO/revision/REV lists,
// GET /ORG/REPO/resolve/REV/FILE... serves a file.
func (h *Hub) route(w http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	for i, s := range seg {
		seg[i], _ = url.PathUnescape(s)
	}
	set := func(names ...string) {
		for i, n := range names {
			r.SetPathValue(n, seg[i])
		}
	}
	switch {
	case r.Method != http.MethodGet:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case len(seg) == 6 && seg[0] == "api" && seg[1] == "models" && seg[4] == "revision":
		seg = seg[2:]
		set("org", "repo", "", "rev")
		h.serveListing(w, r)
	case len(seg) >= 5 && seg[2] == "resolve":
		set("org", "repo", "", "rev")
		r.SetPathValue("file", strings.Join(seg[4:], "/"))
		h.serveResolve(w, r)
	default:
		refuse(w, http.StatusNotFound, "", "not found")
	}
}

// Close stops both servers.
func (h *Hub) Close() {
	h.API.Close()
	h.CDN.Close()
}

// SetToken makes the hub require token ("" requires none).
func (h *Hub) SetToken(token string) { h.mu.Lock(); h.token = token; h.mu.Unlock() }

// SetGated gates repo: downloads need the token and get 403 anyway, as
// for a user who has not accepted the conditions.
func (h *Hub) SetGated(repo string) { h.mu.Lock(); h.gated[repo] = true; h.mu.Unlock() }

// CutOnce makes the next download of file (its repository path) stop
// after n bytes of body, the connection closed.
func (h *Hub) CutOnce(file string, n int64) { h.mu.Lock(); h.cut[file] = n; h.mu.Unlock() }

// FailOnce makes the next resolve of file answer status (a 429 with
// Retry-After: 1). A file named "storage:PATH" makes the storage host
// answer the next request for PATH so, and "listing" the next listing.
func (h *Hub) FailOnce(file string, status int) { h.mu.Lock(); h.fail[file] = status; h.mu.Unlock() }

// Corrupt makes file served with one byte flipped (its listing unchanged).
func (h *Hub) Corrupt(file string, on bool) { h.mu.Lock(); h.corrupt[file] = on; h.mu.Unlock() }

// Stats returns the counts so far and resets them.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stats
	h.stats = Stats{Ranges: map[string][]string{}}
	return s
}

// IsLFS reports whether the hub stores path in LFS.
func IsLFS(path string, size int) bool {
	return size > 10<<20 || strings.HasSuffix(path, ".onnx") || strings.Contains(path, ".onnx_data") || strings.Contains(path, ".onnx.data")
}

// BlobID is the git blob id of content.
func BlobID(content []byte) string {
	s := sha1.New()
	fmt.Fprintf(s, "blob %d\x00", len(content))
	s.Write(content)
	return hex.EncodeToString(s.Sum(nil))
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// refuse writes an error the way the hub does: status, X-Error-Code and
// a JSON body.
func refuse(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// authorize checks the token and the repository; it returns its files.
func (h *Hub) authorize(w http.ResponseWriter, r *http.Request, download bool) (map[string][]byte, bool) {
	h.mu.Lock()
	token, repo := h.token, r.PathValue("org")+"/"+r.PathValue("repo")
	files, ok := h.repos[repo]
	gated := h.gated[repo]
	h.mu.Unlock()
	auth := r.Header.Get("Authorization")
	if token != "" && auth != "Bearer "+token {
		// The hub answers 401 for a repository it will not show, whether
		// or not it exists, so that names do not leak.
		refuse(w, http.StatusUnauthorized, "RepoNotFound", "Invalid credentials in Authorization header")
		return nil, false
	}
	if !ok {
		if auth == "" {
			refuse(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found")
		} else {
			refuse(w, http.StatusNotFound, "RepoNotFound", "Repository not found")
		}
		return nil, false
	}
	if rev := r.PathValue("rev"); rev != "main" && rev != Commit {
		refuse(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return nil, false
	}
	if gated && download {
		refuse(w, http.StatusForbidden, "GatedRepo", "Access to model "+repo+" is restricted and you are not in the authorized list.")
		return nil, false
	}
	return files, true
}

func (h *Hub) serveListing(w http.ResponseWriter, r *http.Request) {
	h.count(func(s *Stats) { s.Listings++ })
	h.mu.Lock()
	status := h.fail["listing"]
	delete(h.fail, "listing")
	h.mu.Unlock()
	if status != 0 {
		refuse(w, status, "", http.StatusText(status))
		return
	}
	files, ok := h.authorize(w, r, false)
	if !ok {
		return
	}
	type lfs struct {
		SHA256      string `json:"sha256"`
		Size        int    `json:"size"`
		PointerSize int    `json:"pointerSize"`
	}
	type sibling struct {
		RFilename string `json:"rfilename"`
		BlobID    string `json:"blobId,omitempty"`
		Size      *int   `json:"size,omitempty"`
		LFS       *lfs   `json:"lfs,omitempty"`
	}
	blobs := r.URL.Query().Get("blobs") == "true"
	var sib []sibling
	for _, p := range sortedKeys(files) {
		c := files[p]
		s := sibling{RFilename: p}
		if blobs {
			n := len(c)
			s.Size, s.BlobID = &n, BlobID(c)
			if IsLFS(p, n) {
				// The blob of an LFS file is its pointer.
				ptr := fmt.Sprintf("version lfs-spec-v1\noid sha256:%s\nsize %d\n", sha256Hex(c), n)
				s.BlobID = BlobID([]byte(ptr))
				s.LFS = &lfs{SHA256: sha256Hex(c), Size: n, PointerSize: len(ptr)}
			}
		}
		sib = append(sib, s)
	}
	h.mu.Lock()
	gated := h.gated[r.PathValue("org")+"/"+r.PathValue("repo")]
	h.mu.Unlock()
	var g any = false
	if gated {
		g = "manual"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"_id": "0", "id": r.PathValue("org") + "/" + r.PathValue("repo"), "sha": Commit, "private": false,
		"gated": g, "lastModified": "2026-01-01T00:00:00.000Z", "tags": []string{"onnx"}, "siblings": sib,
	})
}

func (h *Hub) serveResolve(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	h.count(func(s *Stats) {
		s.Resolves++
		s.Ranges[file] = append(s.Ranges[file], r.Header.Get("Range"))
	})
	files, ok := h.authorize(w, r, true)
	if !ok {
		return
	}
	h.mu.Lock()
	status := h.fail[file]
	delete(h.fail, file)
	h.mu.Unlock()
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	if status != 0 {
		refuse(w, status, "", http.StatusText(status))
		return
	}
	content, ok := files[file]
	if !ok {
		refuse(w, http.StatusNotFound, "EntryNotFound", file+" does not exist on \"main\"")
		return
	}
	w.Header().Set("X-Repo-Commit", Commit)
	if IsLFS(file, len(content)) {
		sum := sha256Hex(content)
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(content)))
		w.Header().Set("ETag", `"`+sum+`"`)
		w.Header().Set("Location", h.CDN.URL+"/repos/"+sum+"?name="+path.Base(file)+"&expires=1")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+BlobID(content)+`"`)
	h.serveBytes(w, r, file, content)
}

func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	sum := strings.TrimPrefix(r.URL.Path, "/repos/")
	var file string
	var content []byte
	h.mu.Lock()
	for _, files := range h.repos {
		for p, c := range files {
			if IsLFS(p, len(c)) && sha256Hex(c) == sum {
				file, content = p, c
			}
		}
	}
	h.stats.CDN++
	if r.Header.Get("Authorization") != "" {
		h.stats.CDNAuth++
	}
	h.stats.Ranges[file] = append(h.stats.Ranges[file], r.Header.Get("Range"))
	status := h.fail["storage:"+file]
	delete(h.fail, "storage:"+file)
	h.mu.Unlock()
	if status != 0 {
		http.Error(w, "Request has expired", status)
		return
	}
	if file == "" {
		http.Error(w, "no such object", http.StatusNotFound)
		return
	}
	w.Header().Set("ETag", `"`+sum+`"`)
	h.serveBytes(w, r, file, content)
}

// serveBytes serves content with Range support, applying the faults set
// for file.
func (h *Hub) serveBytes(w http.ResponseWriter, r *http.Request, file string, content []byte) {
	h.mu.Lock()
	cut, isCut := h.cut[file]
	delete(h.cut, file)
	if h.corrupt[file] && len(content) > 0 {
		content = bytes.Clone(content)
		content[len(content)/2] ^= 0x01
	}
	h.mu.Unlock()
	if isCut {
		w = &cutWriter{ResponseWriter: w, left: cut}
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
}

// cutWriter passes n bytes of body, then aborts the response, which
// closes the connection mid-body.
type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > c.left {
		c.ResponseWriter.Write(b[:c.left])
		http.NewResponseController(c.ResponseWriter).Flush()
		panic(http.ErrAbortHandler)
	}
	c.left -= int64(len(b))
	return c.ResponseWriter.Write(b)
}

func (h *Hub) count(f func(*Stats)) {
	h.mu.Lock()
	f(&h.stats)
	h.mu.Unlock()
}

func sortedKeys(m map[string][]byte) []string { return slices.Sorted(maps.Keys(m)) }
