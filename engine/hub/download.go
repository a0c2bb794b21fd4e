package hub

import (
	"cmp"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aiassist/aiassist/engine/internal/onnxfile"
)

// Result says what Pull did.
type Result struct {
	Listing    *Listing
	Selection  *Selection
	Dir        string
	Downloaded int   // files fetched (the others were in place and verified)
	Bytes      int64 // bytes fetched
}

// Pull lists ref, selects the files of variant and brings dir to hold
// them: a file already in place that verifies is kept, a .partial one is
// resumed with Range, and every downloaded file is verified (LFS files by
// SHA256, plain ones by size and git blob id) before it is renamed into
// place, so dir never holds a file that does not match the listing.
func (c *Client) Pull(ctx context.Context, ref Ref, variant, dir string) (*Result, error) {
	l, err := c.List(ctx, ref)
	if err != nil {
		return nil, err
	}
	sel, err := Select(l, variant)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the model folder (pick another -dir?): %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &Result{Listing: l, Selection: sel, Dir: dir}
	var todo []Pick
	var need int64
	for _, p := range sel.Files {
		target := filepath.Join(dir, filepath.FromSlash(p.Local))
		if err := verifyFile(target, p.File); err == nil {
			c.log().Info("file in place", "file", p.Local, "bytes", p.Size)
			continue
		}
		todo = append(todo, p)
		need += p.Size
		if st, err := os.Stat(target + ".partial"); err == nil && st.Size() <= p.Size {
			need -= st.Size()
		}
	}
	if free, ok := freeBytes(dir); ok && free < need {
		return nil, fmt.Errorf("%s has %s free but the download needs %s more: free space there, or pull into another -dir", dir, HumanBytes(free), HumanBytes(need))
	}
	// ONNX files go last: a daemon watching the folder sees a new decoder
	// only once the data files it names are in place.
	isONNX := func(p Pick) int {
		if strings.HasSuffix(p.Local, ".onnx") {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(todo, func(a, b Pick) int { return cmp.Compare(isONNX(a), isONNX(b)) })
	rev := ref.Revision
	if l.Commit != "" {
		// Pin the commit, so that every file comes from the revision
		// listed even if the branch moves while we download.
		rev = l.Commit
	}
	for _, p := range todo {
		n, err := c.fetch(ctx, ref, rev, p, filepath.Join(dir, filepath.FromSlash(p.Local)))
		res.Bytes += n
		if err != nil {
			return res, err
		}
		res.Downloaded++
	}
	// The decoder names its external data files; a listing missing one
	// is a broken export, better said now than at load.
	for _, p := range sel.Files {
		if strings.HasSuffix(p.Local, ".onnx") {
			if _, err := onnxfile.Files(filepath.Join(dir, filepath.FromSlash(p.Local))); err != nil {
				return res, fmt.Errorf("%s: the decoder downloaded, but: %w", ref, err)
			}
		}
	}
	return res, nil
}

// maxAttempts bounds the tries of one file; each resumes where the last
// stopped, so a flaky connection costs a retry, not the bytes fetched.
const maxAttempts = 5

func (c *Client) fetch(ctx context.Context, ref Ref, rev string, p Pick, target string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return 0, fmt.Errorf("cannot create the folder of %s: %w", p.Local, err)
	}
	var total int64
	for attempt := 1; ; attempt++ {
		n, err := c.fetchOnce(ctx, ref, rev, p, target)
		total += n
		var re retryable
		if err == nil || !errors.As(err, &re) || attempt == maxAttempts || ctx.Err() != nil {
			if err != nil && errors.As(err, &re) {
				err = fmt.Errorf("%s: %w (after %d attempts; run pull again to resume)", p.Local, re.err, attempt)
			}
			return total, err
		}
		wait := time.Duration(attempt) * 200 * time.Millisecond
		if re.wait > 0 {
			wait = re.wait
		}
		c.log().Warn("download interrupted, resuming", "file", p.Local, "attempt", attempt, "wait_seconds", wait.Seconds(), "err", re.err)
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// retryable marks an error a new attempt may overcome: a dropped
// connection, a server error, a rate limit (which says how long to wait).
type retryable struct {
	err  error
	wait time.Duration
}

// maxRetryAfter bounds a hub's Retry-After, so a pull never sleeps long
// on one header.
const maxRetryAfter = 30 * time.Second

func (r retryable) Error() string { return r.err.Error() }

// fetchOnce makes one request for the rest of p and returns the bytes it
// got. The .partial file keeps what arrived, so the next attempt (or the
// next run) asks for the remainder.
func (c *Client) fetchOnce(ctx context.Context, ref Ref, rev string, p Pick, target string) (int64, error) {
	partial := target + ".partial"
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("cannot write %s: %w", partial, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if have > p.Size {
		if err := truncate(f); err != nil {
			return 0, err
		}
		have = 0
	}
	resumed := have > 0
	var got int64
	if have < p.Size || p.Size == 0 {
		base, err := c.endpoint()
		if err != nil {
			return 0, err
		}
		u := base.String() + "/" + ref.Repo + "/resolve/" + url.PathEscape(rev) + "/" + escapePath(p.Path)
		h := http.Header{}
		if have > 0 {
			h.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		}
		ri := &redirectInfo{}
		resp, err := c.get(context.WithValue(ctx, redirectKey{}, ri), u, h)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, retryable{err: fmt.Errorf("cannot fetch: %w", err)}
		}
		defer resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			if have > 0 {
				// The server ignored Range: start over.
				if err := truncate(f); err != nil {
					return 0, err
				}
				have = 0
			}
		case http.StatusPartialContent:
			start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
			if !ok || start != have || (size >= 0 && size != p.Size) {
				truncate(f)
				return 0, retryable{err: fmt.Errorf("the server answered Range bytes=%d- with Content-Range %q; starting over", have, resp.Header.Get("Content-Range"))}
			}
		case http.StatusRequestedRangeNotSatisfiable:
			// The partial file does not fit the file served: drop it.
			truncate(f)
			return 0, retryable{err: fmt.Errorf("the server refused to resume at byte %d (416); starting over", have)}
		default:
			if ri.redirected {
				// The hub sent us on; the storage host's refusal is
				// most likely an expired signed URL, which a new
				// resolve renews.
				return 0, retryable{err: fmt.Errorf("%s: the storage host %s answered %s", p.Path, resp.Request.URL.Host, resp.Status)}
			}
			err := c.statusError(resp, ref, p.Path)
			if resp.StatusCode == http.StatusTooManyRequests {
				return 0, retryable{err: err, wait: max(retryAfter(resp), time.Second)}
			}
			if resp.StatusCode >= 500 {
				return 0, retryable{err: err}
			}
			return 0, err
		}
		if err := checkHeaders(p.File, ri, resp); err != nil {
			return 0, err
		}
		var w io.Writer = f
		if c.Progress != nil {
			w = io.MultiWriter(f, c.Progress.Start(p.Local, p.Size, have))
		}
		got, err = io.Copy(w, io.LimitReader(resp.Body, p.Size-have+1))
		if c.Progress != nil {
			short := err
			if short == nil && have+got != p.Size {
				short = io.ErrUnexpectedEOF
			}
			c.Progress.Done(p.Local, short)
		}
		if err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return got, fmt.Errorf("the disk is full writing %s (%s of %s): free space in %s, or pull into another -dir; run pull again to resume", partial, HumanBytes(have+got), HumanBytes(p.Size), filepath.Dir(target))
			}
			var pe *os.PathError
			if errors.As(err, &pe) {
				return got, fmt.Errorf("cannot write %s: %w", partial, err)
			}
			return got, retryable{err: fmt.Errorf("the connection broke after %s of %s: %w", HumanBytes(have+got), HumanBytes(p.Size), err)}
		}
		if have+got > p.Size {
			truncate(f)
			return got, fmt.Errorf("%s: the server sent more than the %d bytes the listing gives; the partial download was deleted", p.Local, p.Size)
		}
		if have+got < p.Size {
			return got, retryable{err: fmt.Errorf("the server sent %s of %s", HumanBytes(have+got), HumanBytes(p.Size))}
		}
	}
	if err := verify(f, p.File); err != nil {
		f.Close()
		f = nil
		os.Remove(partial)
		if resumed {
			// The bytes an earlier attempt left may be the bad ones:
			// one more try, from the start.
			return got, retryable{err: fmt.Errorf("the resumed download failed verification (%w); starting over", err)}
		}
		return got, fmt.Errorf("%s: %w; the download was deleted: run pull again, and if it fails again the endpoint serves a file that is not the one it lists", p.Local, err)
	}
	if err := f.Sync(); err != nil {
		return got, fmt.Errorf("cannot write %s: %w", partial, err)
	}
	if err := f.Close(); err != nil {
		f = nil
		return got, fmt.Errorf("cannot write %s: %w", partial, err)
	}
	f = nil
	if err := os.Rename(partial, target); err != nil {
		return got, fmt.Errorf("cannot put %s in place: %w", target, err)
	}
	syncDir(filepath.Dir(target))
	c.log().Info("file downloaded", "file", p.Local, "bytes", p.Size, "fetched_bytes", got)
	return got, nil
}

// checkHeaders compares what the resolve response says about the file
// with the listing: an LFS file's X-Linked-Etag is its SHA256, a plain
// file's ETag its git blob id. A mismatch means the listing and the
// files are of different revisions.
func checkHeaders(f File, ri *redirectInfo, resp *http.Response) error {
	mismatch := func(header, got, want string) error {
		return fmt.Errorf("%s: the hub's %s is %.80q but its listing says %s; the revision changed during the pull? run it again", f.Path, header, got, want)
	}
	if f.LFS() {
		linked := ri.linkedEtag
		if linked == "" {
			linked = resp.Header.Get("X-Linked-Etag")
		}
		if e := etagValue(linked); e != "" && e != f.SHA256 {
			return mismatch("X-Linked-Etag", e, f.SHA256)
		}
		size := ri.linkedSize
		if size == "" {
			size = resp.Header.Get("X-Linked-Size")
		}
		if size != "" && size != strconv.FormatInt(f.Size, 10) {
			return mismatch("X-Linked-Size", size, strconv.FormatInt(f.Size, 10))
		}
		return nil
	}
	// A plain blob's ETag is its git blob id when the hub serves it
	// itself; a mirror may send another kind of ETag, which says nothing.
	if e := etagValue(resp.Header.Get("ETag")); !ri.redirected && isHex(e, 40) && e != f.BlobID {
		return mismatch("ETag", e, f.BlobID)
	}
	return nil
}

func etagValue(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.ToLower(strings.Trim(s, `"`))
}

// verifyFile checks a file in place against the listing.
func verifyFile(path string, want File) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return verify(f, want)
}

// verify reads f from its start and compares size and checksum.
func verify(f *os.File, want File) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	var h hash.Hash
	if want.LFS() {
		h = sha256.New()
	} else {
		// A git blob id is SHA1 over "blob <size>\0" and the content.
		h = sha1.New()
		fmt.Fprintf(h, "blob %d\x00", want.Size)
	}
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", f.Name(), err)
	}
	if n != want.Size {
		return fmt.Errorf("it has %d bytes, the listing says %d", n, want.Size)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want.LFS() && sum != want.SHA256 {
		return fmt.Errorf("its SHA256 is %s, the listing says %s", sum, want.SHA256)
	}
	if !want.LFS() && sum != want.BlobID {
		return fmt.Errorf("its git blob id is %s, the listing says %s", sum, want.BlobID)
	}
	return nil
}

func truncate(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("cannot truncate %s: %w", f.Name(), err)
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// parseContentRange reads "bytes START-END/SIZE"; size is -1 for "*".
func parseContentRange(s string) (start, size int64, ok bool) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, false
	}
	rng, total, ok := strings.Cut(rest, "/")
	a, _, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	size = -1
	if total != "*" {
		if size, err = strconv.ParseInt(total, 10, 64); err != nil || size < 0 {
			return 0, 0, false
		}
	}
	return start, size, true
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// lockFile keeps two pulls from writing one folder at once; the engine
// ignores it.
const lockFile = ".pull.lock"

func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot lock the model folder: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another pull is writing %s; wait for it to finish", dir)
		}
		return nil, fmt.Errorf("cannot lock the model folder: %w", err)
	}
	return func() { f.Close() }, nil
}

func freeBytes(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// HumanBytes says a size the way pull's messages do: "1.5 GiB", "12 B".
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
