// Package schema loads and validates the aiassist configuration file.
//
// The file is CUE, checked against the schema in config.cue (embedded in the
// binary), which declares every field with its type, bounds, default and
// documentation; a field the schema does not declare is an error. Checks that
// CUE cannot express (at least one model, duration bounds, duplicate
// listeners, default_model naming a configured model, metrics.path clear of
// the API's routes) are made in Go. Every problem is reported, each with the
// file:line:col of the offending value, and a loaded Config keeps the
// positions of its values (Config.Pos, Config.Issue) for checks made later,
// such as that the model files exist.
//
// Load is cheap enough to call on every reload: the schema is compiled once.
package schema
