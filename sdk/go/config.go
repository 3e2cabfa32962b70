package wasmgate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// DecodeConfig decodes the plugin's JSON config into v (a pointer to a
// struct) strictly: unknown fields, wrong types and trailing data are errors
// that name the field, in words an operator can act on:
//
//	unknown field "secrett"
//	field "keys.0.kid": want string, got number
//	invalid JSON at byte 12: invalid character '}' looking for beginning of value
//
// Empty config bytes decode as "{}". Semantic checks (required fields,
// ranges) are the plugin's, after DecodeConfig.
func DecodeConfig(config []byte, v any) error {
	if len(bytes.TrimSpace(config)) == 0 {
		config = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return configError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("unexpected data after the config object at byte %d", dec.InputOffset())
	}
	return nil
}

// configError rewrites encoding/json's errors without their "json:" prefix
// and with the field path first.
func configError(err error) error {
	var (
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
	)
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return fmt.Errorf("want %s, got %s", jsonTypeName(typeErr.Type), typeErr.Value)
		}
		return fmt.Errorf("field %q: want %s, got %s", typeErr.Field, jsonTypeName(typeErr.Type), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("invalid JSON at byte %d: %s", syntaxErr.Offset, strings.TrimPrefix(syntaxErr.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: unexpected end of the config")
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

// jsonTypeName names a Go type the way a config author thinks of it.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[Duration]() {
		return `duration (like "500ms" or a number of seconds)`
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return t.String()
}

// Duration is a time.Duration for configs: a JSON string in Go's syntax
// ("500ms", "1m30s") or a number of seconds (30, 0.5), the unit a YAML
// author writing `leeway: 30` means. Negative durations are rejected.
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the Go syntax, e.g. "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

// UnmarshalJSON accepts "500ms" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // like encoding/json for other types: null leaves the value alone
	}
	if len(b) > 0 && b[0] == '"' {
		s, err := strconv.Unquote(string(b))
		if err != nil {
			return fmt.Errorf("duration %s: %w", b, err)
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want like \"500ms\", \"2s\" or a number of seconds", s)
		}
		if v < 0 {
			return fmt.Errorf("duration %q is negative", s)
		}
		*d = Duration(v)
		return nil
	}
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: want like \"500ms\", \"2s\" or a number of seconds", b)
	}
	if secs < 0 || secs > float64(1<<63-1)/float64(time.Second) {
		return fmt.Errorf("duration %s seconds is out of range", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}
