package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// The man subcommand is hidden from usage: it is for the packages, which
// install its output as aiassistd(8).

// commandLine matches a command's line in the usage text: two spaces, the
// command, then its flags or its description.
var commandLine = regexp.MustCompile(`^  ([a-z][a-z-]*)\s`)

// commands lists the commands the usage text names, in its order, so that
// a command added there gets its section in the man page too.
func commands() []string {
	var b bytes.Buffer
	usage(&b)
	var out []string
	seen := map[string]bool{}
	for _, line := range strings.Split(b.String(), "\n") {
		if m := commandLine.FindStringSubmatch(line); m != nil && !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// commandHelp is what `aiassistd CMD -h` prints: the flags of the command.
func commandHelp(cmd string) string {
	var b bytes.Buffer
	run([]string{cmd, "-h"}, io.Discard, &b)
	return b.String()
}

// man renders aiassistd(8) in roff from the command's own help texts (the
// usage, then each command's -h), so that the page never drifts from them.
func man(args []string, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		fmt.Fprintf(stderr, "aiassistd man takes no arguments\n")
		return 2
	}
	var b bytes.Buffer
	usage(&b)
	w := &bytes.Buffer{}
	fmt.Fprintf(w, ".TH AIASSISTD 8 \"\" \"aiassist %s\" \"System Administration\"\n", roffText(version))
	w.WriteString(`.SH NAME
aiassistd \- serve ONNX models over HTTP: text generation, OpenAI-compatible and KServe v2
.SH SYNOPSIS
.B aiassistd
.I command
.RI [ flags ]
.SH DESCRIPTION
.B aiassistd
serves the models of one CUE config file over HTTP: causal language models
on /v1/generate and the OpenAI-compatible /v1 routes, tensor models over the
KServe v2 protocol, Prometheus metrics on /metrics.
It runs as the systemd service
.BR aiassist.service ;
edit
.I /etc/aiassist/config.cue
and run
.B systemctl reload aiassist
to apply a change: a file that fails
.B aiassistd check
changes nothing.
.SH COMMANDS
`)
	preformatted(w, b.String())
	for _, cmd := range commands() {
		fmt.Fprintf(w, ".SS %s\n", roffText("aiassistd "+cmd))
		preformatted(w, commandHelp(cmd))
	}
	w.WriteString(`.SH FILES
.TP
.I /etc/aiassist/config.cue
the config file; every field is documented in the schema
.TP
.I /usr/share/aiassist/
the bundled demo models, example configs (secure.cue), the Grafana dashboard
and the exported alert rules
.TP
.I /usr/lib/aiassist/
the ONNX Runtime library
.TP
.I /var/lib/aiassist/
the service's state directory, a place for models
.TP
.I /run/aiassist/
the runtime directory, for the admin socket (reload.admin_socket)
.SH ENVIRONMENT
.TP
.B ONNXRUNTIME_LIB
the ONNX Runtime library to load when the config sets no runtime.library;
without either, /usr/lib/aiassist/ is searched
.SH EXIT STATUS
0 on success, 1 when a command fails (an invalid config, say), 2 on bad
usage.
.SH SEE ALSO
.BR systemctl (1),
.BR systemd.service (5),
.BR journalctl (1)
`)
	stdout.Write(w.Bytes())
	return 0
}

// preformatted writes text as a no-fill block, escaped for roff.
func preformatted(w *bytes.Buffer, text string) {
	w.WriteString(".PP\n.nf\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		line = strings.ReplaceAll(line, "\t", "        ")
		w.WriteString(roffLine(line))
		w.WriteByte('\n')
	}
	w.WriteString(".fi\n")
}

// roffText escapes backslashes and hyphens (so that flags print as the
// ASCII minus a shell needs).
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}

// roffLine escapes a line of text; a leading dot or quote would be read
// as a request, so \& guards it.
func roffLine(s string) string {
	s = roffText(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
