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
// Load is cheap enough to call on every reload: the schema is compiled once.
package schema
