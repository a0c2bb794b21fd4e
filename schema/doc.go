// Package schema loads and validates the aiassist configuration file.
//
// The file is CUE, checked against the schema in config.cue (embedded in the
// binary), which declares every field with its type, bounds, default and
// documentation; a field the schema does not declare is an error. Checks that
// CUE cannot express (at least one model, duration bounds, duplicate
// listeners, default_model naming a configured model, metrics.path clear of
// the API's routes, no listener open to others without a credential, API
// keys naming configured models and limit classes, allow lists, hosts,
// origins and secrets) are made in Go. Every problem is reported, each with
// the file:line:col of the offending value, and a loaded Config keeps the
// positions of its values (Config.Pos, Config.Issue) for checks made later,
// such as that the model, certificate and key files exist. What is valid
// but worth a look, such as a LAN listener without a global rate limit, is
// in Config.Warnings, placed the same way. No secret is ever quoted in an
// error.
//
// A field followed by @tag(NAME) or @tag(NAME,type=int|number|bool) takes
// the value of the environment variable NAME when it is set, unified with
// the field's own value, so the schema judges it like any other; this is
// how a container passes MODEL_PATH or PORT to its config.
//
// Load is cheap enough to call on every reload: the schema is compiled once.
package schema
