package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/aiassist/aiassist/daemon/secret"
	"github.com/aiassist/aiassist/schema"
)

// maxLogLine bounds a line decrypt reads: access log lines hold two
// fields of at most logging.prompt_max_bytes (1 MiB) each, sealed.
const maxLogLine = 16 << 20

// encSuffix ends the name of a sealed field: prompt_enc holds the sealed
// prompt, and after Logstash's rename user_query_enc the sealed
// user_query.
const encSuffix = "_enc"

// decrypt reads log lines on stdin and prints them with each sealed field
// (NAME_enc holding an enc:v1: value, at any depth of a JSON line, or
// NAME_enc=... on a text line) replaced by NAME and its text. Other lines
// and fields are printed as they are. A field that does not open (another
// key, a changed value) is printed as it is and reported on stderr, and
// the exit status is then 1.
func decrypt(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("decrypt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "", "the secrets key file the log was sealed with (default: secrets.key_file of -config)")
	configPath := fs.String("config", defaultConfig, "config file whose secrets.key_file to use")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "aiassistd decrypt: reads the log on stdin, e.g. aiassistd decrypt -key KEY < aiassist.log; no arguments")
		return 2
	}
	path := *keyFile
	if path == "" {
		cfg, err := schema.Load(*configPath)
		if err != nil {
			fmt.Fprintf(stderr, "aiassistd decrypt: give -key FILE, or a valid -config: %v\n", err)
			return 1
		}
		path = cfg.Secrets.KeyFile
	}
	key, err := secret.LoadKeyFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd decrypt: %v\n", err)
		return 1
	}
	s, err := secret.NewSealer(key)
	if err != nil {
		fmt.Fprintf(stderr, "aiassistd decrypt: %v\n", err)
		return 1
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), maxLogLine)
	status := 0
	for n := 1; sc.Scan(); n++ {
		line, errs := openLine(s, sc.Bytes())
		for _, e := range errs {
			fmt.Fprintf(stderr, "aiassistd decrypt: line %d: %v\n", n, e)
			status = 1
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		out.Flush()
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("a line is longer than %d MiB, which no log line of aiassistd is", maxLogLine>>20)
		}
		fmt.Fprintf(stderr, "aiassistd decrypt: %v\n", err)
		return 1
	}
	return status
}

// openLine returns line with its sealed fields opened, and what could not
// be opened.
func openLine(s *secret.Sealer, line []byte) ([]byte, []error) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var errs []error
		if out, changed, ok := openObject(s, trimmed, "", 0, &errs); ok && changed {
			return out, errs
		} else if ok {
			return line, errs
		}
		return line, nil // not JSON after all: leave it be
	}
	return openText(s, line)
}

// maxDepth is how deep in a line's objects decrypt looks for sealed
// fields: a Logstash event nests the daemon's line once (ai_log), and
// each level is decoded again, so a deeply nested line would cost time
// in the square of its depth.
const maxDepth = 4

// openObject rewrites one JSON object, keeping the order of its fields
// and the bytes of the values it does not open. changed says whether it
// opened any; ok is false if raw is not one JSON object.
func openObject(s *secret.Sealer, raw []byte, at string, depth int, errs *[]error) (out []byte, changed, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false, false
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for first := true; dec.More(); first = false {
		t, err := dec.Token()
		if err != nil {
			return nil, false, false
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false, false
		}
		if !first {
			b.WriteByte(',')
		}
		path := name
		if at != "" {
			path = at + "." + name
		}
		switch {
		case strings.HasSuffix(name, encSuffix) && len(name) > len(encSuffix) && bytes.HasPrefix(v, []byte(`"`+secret.Prefix)):
			var sealed string
			var text []byte
			if err = json.Unmarshal(v, &sealed); err == nil {
				text, err = s.Decrypt(sealed)
			}
			if err != nil {
				*errs = append(*errs, fmt.Errorf("%s: cannot decrypt: %w", path, err))
				writeJSONString(&b, name)
				b.WriteByte(':')
				b.Write(v)
				continue
			}
			writeJSONString(&b, strings.TrimSuffix(name, encSuffix))
			b.WriteByte(':')
			writeJSONString(&b, string(text))
			changed = true
		case len(v) > 0 && v[0] == '{' && depth < maxDepth:
			writeJSONString(&b, name)
			b.WriteByte(':')
			inner, innerChanged, ok := openObject(s, v, path, depth+1, errs)
			if !ok {
				return nil, false, false
			}
			if innerChanged {
				b.Write(inner)
				changed = true
			} else {
				b.Write(v)
			}
		default:
			writeJSONString(&b, name)
			b.WriteByte(':')
			b.Write(v)
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, false, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false, false // something after the object
	}
	b.WriteByte('}')
	return b.Bytes(), changed, true
}

// writeJSONString writes v as a JSON string, leaving <, > and & as they
// are, as slog's JSON handler does.
func writeJSONString(b *bytes.Buffer, v string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	b.Truncate(b.Len() - 1) // Encode's newline
}

// textField is a sealed field of a line in logging.format "text": slog's
// text handler quotes a value with '=' (base64's padding) in it.
var textField = regexp.MustCompile(`(^|\s)([A-Za-z0-9_.]+)` + encSuffix + `=("enc:v1:[A-Za-z0-9+/=]*"|enc:v1:[A-Za-z0-9+/]*)`)

// openText opens the sealed fields of a line of the text format.
func openText(s *secret.Sealer, line []byte) ([]byte, []error) {
	var errs []error
	out := textField.ReplaceAllFunc(line, func(m []byte) []byte {
		sub := textField.FindSubmatch(m)
		sealed := strings.Trim(string(sub[3]), `"`)
		text, err := s.Decrypt(sealed)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s%s: cannot decrypt: %w", sub[2], encSuffix, err))
			return m
		}
		r := append([]byte{}, sub[1]...)
		r = append(r, sub[2]...)
		r = append(r, '=')
		return append(r, strconv.Quote(string(text))...)
	})
	return out, errs
}
