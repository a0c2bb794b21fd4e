package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aiassist/aiassist/daemon"
	"github.com/aiassist/aiassist/daemon/gate"
	"github.com/aiassist/aiassist/daemon/secret"
	"github.com/aiassist/aiassist/schema"
)

// The commands that make credentials and secrets: keygen, token, encrypt.
// Each writes what it made to stdout and nothing secret to stderr.

// keygen makes an API key: the key alone on the first line, then a CUE
// snippet that, appended to the config file as it is, adds the key's hash
// (CUE unifies the new auth: api_keys: entry with the file's). With
// -master-key FILE it writes a new secrets key file instead.
func keygen(args []string, stdout, stderr io.Writer, now time.Time) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "the key's name in auth.api_keys, e.g. team-a-2026q4")
	days := fs.Int("days", 90, "days until the key expires (not_after); 0 for no expiry")
	models := fs.String("models", "", "comma-separated models the key may call (default: all)")
	limitClass := fs.String("limit", "", "the key's rate-limit class (a key of limits.classes)")
	masterKey := fs.String("master-key", "", "write a new 32-byte secrets key to this file (mode 0600) instead of making an API key")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *masterKey != "" {
		if err := secret.WriteKeyFile(*masterKey); err != nil {
			fmt.Fprintf(stderr, "aiassistd keygen: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote a new secrets key to %s (mode 0600); set secrets: key_file: %s\n", *masterKey, strconv.Quote(*masterKey))
		return 0
	}
	if !validName(*name) {
		fmt.Fprintln(stderr, "aiassistd keygen: -name is required: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
		return 2
	}
	if *days < 0 {
		fmt.Fprintln(stderr, "aiassistd keygen: -days must be 0 or more")
		return 2
	}
	key := gate.NewKey()
	created := now.UTC().Truncate(time.Second)
	var b strings.Builder
	fmt.Fprintln(&b, key)
	fmt.Fprintf(&b, "// API key %s (id %s), made %s by aiassistd keygen. The line above is the key:\n", strconv.Quote(*name), keyID(key), created.Format(time.RFC3339))
	fmt.Fprintln(&b, "// give it to its user; append what follows to the config file, which keeps only its hash.")
	fmt.Fprintf(&b, "auth: api_keys: %s: {\n", strconv.Quote(*name))
	fmt.Fprintf(&b, "\thash:    %s\n", strconv.Quote(gate.HashKey(key)))
	fmt.Fprintf(&b, "\tcreated: %s\n", strconv.Quote(created.Format(time.RFC3339)))
	if *days > 0 {
		fmt.Fprintf(&b, "\tnot_after: %s\n", strconv.Quote(created.AddDate(0, 0, *days).Format(time.RFC3339)))
	}
	if *models != "" {
		var q []string
		for _, m := range strings.Split(*models, ",") {
			if m = strings.TrimSpace(m); m != "" {
				q = append(q, strconv.Quote(m))
			}
		}
		fmt.Fprintf(&b, "\tmodels: [%s]\n", strings.Join(q, ", "))
	}
	if *limitClass != "" {
		fmt.Fprintf(&b, "\tlimit: %s\n", strconv.Quote(*limitClass))
	}
	fmt.Fprintln(&b, "}")
	io.WriteString(stdout, b.String())
	return 0
}

func keyID(key string) string {
	id, _ := gate.KeyID(key)
	return id
}

func validName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i, c := range n {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// mintToken mints an HS256 JWT from the config's auth.jwt.hs256_secret (the
// seed's generate_token), with the config's issuer and audience.
func mintToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfig, "config file")
	sub := fs.String("sub", "", "the token's subject (who it is for)")
	scope := fs.String("scope", gate.ScopeModelCall, "space-separated scopes")
	ttl := fs.Duration("ttl", time.Hour, "the token's lifetime")
	models := fs.String("models", "", "comma-separated models the token may call (default: all the subject may)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := schema.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid:\n%v\n", *configPath, err)
		return 1
	}
	j := cfg.Auth.JWT
	if j == nil || j.HS256Secret == "" {
		fmt.Fprintf(stderr, "aiassistd token: %s sets no auth.jwt.hs256_secret to sign with\n", cfg.Path)
		return 1
	}
	key, err := daemon.RevealSecret(cfg, j.HS256Secret)
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd token: auth.jwt.hs256_secret: %v\n", err)
		return 1
	}
	var list []string
	for _, m := range strings.Split(*models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			list = append(list, m)
		}
	}
	tok, err := gate.MintHS256(key, *sub, *scope, *ttl, list, j.Issuer, j.Audience)
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

// encrypt reads a secret on stdin (one trailing newline dropped) and
// prints its enc:v1: form, sealed with the secrets key.
func encrypt(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("encrypt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "", "the secrets key file (default: secrets.key_file of -config)")
	configPath := fs.String("config", defaultConfig, "config file whose secrets.key_file to use")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path := *keyFile
	if path == "" {
		cfg, err := schema.Load(*configPath)
		if err != nil {
			fmt.Fprintf(stderr, "aiassistd encrypt: give -key FILE, or a valid -config: %v\n", err)
			return 1
		}
		path = cfg.Secrets.KeyFile
	}
	key, err := secret.LoadKeyFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd encrypt: %v\n", err)
		return 1
	}
	v, err := io.ReadAll(io.LimitReader(bufio.NewReader(stdin), 1<<20+1))
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd encrypt: %v\n", err)
		return 1
	}
	if len(v) > 1<<20 {
		fmt.Fprintln(stderr, "aiassistd encrypt: the value is larger than 1 MiB")
		return 1
	}
	v = bytes.TrimSuffix(bytes.TrimSuffix(v, []byte("\n")), []byte("\r"))
	if len(v) == 0 {
		fmt.Fprintln(stderr, "aiassistd encrypt: nothing on stdin to encrypt")
		return 1
	}
	out, err := secret.Encrypt(key, v)
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd encrypt: %v\n", errors.Unwrap(err))
		return 1
	}
	fmt.Fprintln(stdout, out)
	return 0
}
