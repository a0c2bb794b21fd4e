package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Client talks to one hub endpoint.
type Client struct {
	// Endpoint is the hub's base URL; empty means DefaultEndpoint.
	Endpoint string
	// Token is sent as a bearer token to the endpoint, never to a host it
	// redirects to, and never logged.
	Token string
	// HTTP makes the requests; nil means a client with a 30 s response
	// header timeout. Its CheckRedirect is replaced by the Client's own.
	HTTP *http.Client
	// Log gets one line per file; nil discards.
	Log *slog.Logger
	// Progress follows each download; nil shows nothing.
	Progress Progress
}

// Progress follows downloads. Start is called before a file's bytes
// flow, with its size and the bytes a partial download already has;
// the writer it returns gets every byte fetched. Done ends the file.
type Progress interface {
	Start(name string, size, have int64) io.Writer
	Done(name string, err error)
}

func (c *Client) endpoint() (*url.URL, error) {
	e := c.Endpoint
	if e == "" {
		e = DefaultEndpoint
	}
	u, err := url.Parse(strings.TrimSuffix(e, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("hub endpoint %q must be an http:// or https:// URL without credentials or query", e)
	}
	return u, nil
}

func (c *Client) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// redirectInfo is what the hub says in the redirect to an LFS file's
// storage: the file's SHA256 and size.
type redirectInfo struct {
	linkedEtag, linkedSize string
	redirected             bool
}

type redirectKey struct{}

// httpClient returns the client with the redirect policy: at most 10
// hops, never from https to http, the token dropped on another host, and
// the X-Linked-* headers of the first redirect kept for verification.
func (c *Client) httpClient() *http.Client {
	var hc http.Client
	if c.HTTP != nil {
		hc = *c.HTTP
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = 30 * time.Second
		hc.Transport = t
	}
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("more than 10 redirects")
		}
		first := via[0]
		if first.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("refusing a redirect from https to %s", req.URL.Scheme)
		}
		if req.URL.Host != first.URL.Host {
			req.Header.Del("Authorization")
		}
		if ri, ok := req.Context().Value(redirectKey{}).(*redirectInfo); ok && req.Response != nil && !ri.redirected {
			ri.redirected = true
			ri.linkedEtag = req.Response.Header.Get("X-Linked-Etag")
			ri.linkedSize = req.Response.Header.Get("X-Linked-Size")
		}
		return nil
	}
	return &hc
}

func (c *Client) get(ctx context.Context, u string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	// Identity keeps byte offsets those of the file, for Range.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "aiassistd-pull")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	var ue *url.Error
	if errors.As(err, &ue) {
		// A storage host's URL carries a signature in its query: an
		// error message is no place for it.
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery, u.User = "", nil
			ue.URL = u.String()
		}
	}
	return resp, err
}

// List fetches the file listing of ref. A busy hub (5xx, 429) or a
// dropped connection is tried again, three times in all.
func (c *Client) List(ctx context.Context, ref Ref) (*Listing, error) {
	for attempt := 1; ; attempt++ {
		l, err := c.listOnce(ctx, ref)
		var re retryable
		if err == nil || !errors.As(err, &re) || attempt == 3 || ctx.Err() != nil {
			if errors.As(err, &re) {
				err = re.err
			}
			return l, err
		}
		wait := time.Duration(attempt) * 500 * time.Millisecond
		if re.wait > 0 {
			wait = re.wait
		}
		c.log().Warn("listing failed, trying again", "ref", ref.String(), "attempt", attempt, "err", re.err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (c *Client) listOnce(ctx context.Context, ref Ref) (*Listing, error) {
	base, err := c.endpoint()
	if err != nil {
		return nil, err
	}
	// ParseRef admits only URL-safe characters in the repository name.
	u := base.String() + "/api/models/" + ref.Repo + "/revision/" + url.PathEscape(ref.Revision) + "?blobs=true"
	resp, err := c.get(ctx, u, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, retryable{err: fmt.Errorf("cannot list %s: %w", ref, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := c.statusError(resp, ref, "")
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return nil, retryable{err: err, wait: retryAfter(resp)}
		}
		return nil, err
	}
	l, err := ParseListing(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", ref, base.Redacted(), err)
	}
	if l.Repo == "" {
		l.Repo = ref.Repo
	}
	return l, nil
}

// retryAfter is a 429's Retry-After in seconds, at most maxRetryAfter,
// or 0 if it gives none.
func retryAfter(resp *http.Response) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		return min(time.Duration(s)*time.Second, maxRetryAfter)
	}
	return 0
}

// StatusError is a hub's refusal, with what to do about it.
type StatusError struct {
	Status int
	Code   string // the hub's X-Error-Code: RepoNotFound, GatedRepo, ...
	msg    string
}

func (e *StatusError) Error() string { return e.msg }

func (c *Client) statusError(resp *http.Response, ref Ref, file string) error {
	code := resp.Header.Get("X-Error-Code")
	hubMsg := cleanMessage(resp.Header.Get("X-Error-Message"))
	what := ref.String()
	if file != "" {
		what = file + " of " + ref.String()
	}
	var msg string
	switch {
	case code == "GatedRepo" || resp.StatusCode == http.StatusForbidden:
		msg = fmt.Sprintf("%s: the repository is gated or restricted (%d): accept its conditions on its page, signed in as the account whose token HF_TOKEN holds, or ask its owners for access", what, resp.StatusCode)
		if c.Token == "" {
			msg += "; HF_TOKEN is not set"
		}
	case code == "RevisionNotFound":
		msg = fmt.Sprintf("%s: revision %q not found (%d): check the branch, tag or commit after @", what, ref.Revision, resp.StatusCode)
	case code == "EntryNotFound", code == "" && file != "" && resp.StatusCode == http.StatusNotFound:
		msg = fmt.Sprintf("%s: file not found in revision %s (%d)", what, ref.Revision, resp.StatusCode)
	case resp.StatusCode == http.StatusUnauthorized && c.Token != "":
		msg = fmt.Sprintf("%s: the hub refused the token (401): the repository does not exist, or HF_TOKEN cannot read it, or the token is invalid", what)
	case resp.StatusCode == http.StatusUnauthorized, code == "RepoNotFound", resp.StatusCode == http.StatusNotFound:
		msg = fmt.Sprintf("%s: repository not found (%d): check ORG/REPO, or, if it is private, set HF_TOKEN to a token that can read it", what, resp.StatusCode)
		if c.Token != "" {
			msg = fmt.Sprintf("%s: repository not found (%d): check ORG/REPO, and that HF_TOKEN can read it", what, resp.StatusCode)
		}
	default:
		msg = fmt.Sprintf("%s: the hub answered %s", what, resp.Status)
	}
	if hubMsg != "" {
		msg += " (hub: " + hubMsg + ")"
	}
	return &StatusError{Status: resp.StatusCode, Code: code, msg: msg}
}

// cleanMessage keeps a hub's message printable and short: it is the
// server's text in our error.
func cleanMessage(s string) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.TrimSpace(s)
}
