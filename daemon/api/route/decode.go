package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// Decode is the one JSON decoder of request bodies: it decodes one JSON
// object into v, a pointer to a struct, and refuses unknown fields, any
// data after the object (even `]`), and a top-level null, with 400s that
// name the field at fault.
func Decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			return NewError(400, "invalid_request_error", "invalid_json", "the request body has trailing data after the JSON object")
		}
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("null")) {
			return BadRequest("the request body must be a JSON object")
		}
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return BadRequest("the request body must be a JSON object")
		}
		field := fieldPath(reflect.TypeOf(v), typeErr.Field)
		// Value may hold the request's own digits ("number 1e999").
		return ParamError(field, fmt.Sprintf("%s must be %s, not %s", Echo(field), typeName(typeErr.Type), Echo(typeErr.Value)))
	case errors.As(err, &syntaxErr):
		return NewError(400, "invalid_request_error", "invalid_json", fmt.Sprintf("the request body is not valid JSON: %s (at byte %d)", clip(syntaxErr.Error(), maxMessage), syntaxErr.Offset))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return NewError(400, "invalid_request_error", "invalid_json", "the request body is not a complete JSON object")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if u, err := strconv.Unquote(name); err == nil {
			name = u
		}
		e := ParamError(name, "unknown field "+Quote(name)+"; aiassist does not support it")
		e.Code = "unsupported_field"
		return e
	}
	return NewError(400, "invalid_request_error", "invalid_json", "the request body is not valid: "+clip(err.Error(), maxMessage))
}

// fieldPath drops from encoding/json's path the names of embedded structs,
// which are Go's, not the request's: "sampling.max_tokens" is
// "max_tokens".
func fieldPath(t reflect.Type, path string) string {
	embedded := map[string]bool{}
	var walk func(reflect.Type, int)
	walk = func(t reflect.Type, depth int) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || depth > 8 {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				embedded[f.Name] = true
			}
			walk(f.Type, depth+1)
		}
	}
	walk(t, 0)
	parts := strings.Split(path, ".")
	out := parts[:0]
	for _, p := range parts {
		if !embedded[p] {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8,
		reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}
