package config

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
)

// Redacted returns the effective config (defaults applied) as indented JSON,
// for the admin API and for logs: keys are the YAML keys in declaration
// order, durations are strings ("10s"), byte sizes integers, absent optional
// sections are left out, and non-empty secrets read "[redacted]".
func Redacted(c *Config) ([]byte, error) {
	if c == nil {
		return []byte("null"), nil
	}
	return json.MarshalIndent(jsonValue(reflect.ValueOf(c).Elem()), "", "  ")
}

// jsonValue converts a config value to what encoding/json should write.
func jsonValue(v reflect.Value) any {
	switch {
	case v.Type() == durationType:
		return Duration(v.Int()).D().String()
	case v.Type() == byteSizeType:
		return v.Int()
	case v.Type() == jsonType:
		if v.Len() == 0 {
			return nil
		}
		return json.RawMessage(v.Bytes())
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return jsonValue(v.Elem())
	case reflect.Struct:
		var o object
		for _, f := range fieldsOf(v.Type()) {
			fv := v.Field(f.index)
			switch {
			case fv.Kind() == reflect.Pointer && fv.IsNil():
				continue
			case f.sf.Tag.Get("secret") == "true" && !fv.IsZero():
				o = append(o, member{f.key, "[redacted]"})
			default:
				o = append(o, member{f.key, jsonValue(fv)})
			}
		}
		return o
	case reflect.Slice:
		s := make([]any, v.Len())
		for i := range s {
			s[i] = jsonValue(v.Index(i))
		}
		return s
	}
	return v.Interface()
}

// object is a JSON object that keeps its keys in order (encoding/json sorts
// map keys; an operator reads a config in the order it is documented).
type object []member

type member struct {
	key string
	val any
}

// MarshalJSON writes the members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		val, err := json.Marshal(m.val)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

const (
	durationPattern = `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$|\$\{`
	byteSizePattern = `^[0-9]+ *(B|KB|MB|GB|KiB|MiB|GiB)?$|\$\{`
)

// Schema returns a JSON Schema (draft 2020-12) of the config file, generated
// from the types and their doc, default, enum and required tags, for editors
// and CI. Patterns also admit ${VAR} references, which are expanded at load.
func Schema() ([]byte, error) {
	defs := map[string]object{}
	root := structSchema(reflect.TypeOf(Config{}), defs)
	head := object{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"$id", "https://wasmgate.dev/schema/config.json"},
		{"title", "wasmgate configuration"},
	}
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	slices.Sort(names)
	var d object
	for _, n := range names {
		d = append(d, member{n, defs[n]})
	}
	root = append(root, member{"patternProperties", object{{"^x-", object{}}}})
	return json.MarshalIndent(append(append(head, root...), member{"$defs", d}), "", "  ")
}

func structSchema(t reflect.Type, defs map[string]object) object {
	var props object
	var required []string
	for _, f := range fieldsOf(t) {
		s := append(typeSchema(f.sf.Type, defs), member{"description", f.sf.Tag.Get("doc")})
		if enum := f.sf.Tag.Get("enum"); enum != "" {
			s = append(s, member{"enum", strings.Split(enum, ",")})
		}
		if def, ok := f.sf.Tag.Lookup("default"); ok {
			v := reflect.New(f.sf.Type).Elem()
			setDefault(v, def)
			s = append(s, member{"default", jsonValue(v)})
		}
		if f.sf.Tag.Get("required") == "true" {
			required = append(required, f.key)
		}
		props = append(props, member{f.key, s})
	}
	o := object{{"type", "object"}, {"additionalProperties", false}, {"properties", props}}
	if required != nil {
		o = append(o, member{"required", required})
	}
	return o
}

func typeSchema(t reflect.Type, defs map[string]object) object {
	switch {
	case t == durationType:
		return object{{"type", "string"}, {"pattern", durationPattern}}
	case t == jsonType:
		return object{} // any value: plugins validate their own config
	case t == byteSizeType:
		return object{{"anyOf", []object{{{"type", "integer"}, {"minimum", 0}}, {{"type", "string"}, {"pattern", byteSizePattern}}}}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeSchema(t.Elem(), defs)
	case reflect.Struct:
		if _, ok := defs[t.Name()]; !ok {
			defs[t.Name()] = nil // mark before recursing
			defs[t.Name()] = structSchema(t, defs)
		}
		return object{{"$ref", "#/$defs/" + t.Name()}}
	case reflect.Slice:
		return object{{"type", "array"}, {"items", typeSchema(t.Elem(), defs)}}
	case reflect.Int, reflect.Int64:
		return object{{"type", "integer"}}
	case reflect.Bool:
		return object{{"type", "boolean"}}
	}
	return object{{"type", "string"}}
}
