package config

import (
	"fmt"
	"reflect"
	"strings"
)

// Reference renders the configuration reference as Markdown, one table per
// section, from the same struct tags that drive decoding, defaults and the
// JSON Schema. It is the generated part of host/config/REFERENCE.md, which
// therefore cannot drift from the code: TestReference fails when they
// differ, and `go test ./host/config -run TestReference -update` rewrites it.
func Reference() string {
	var b strings.Builder
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		if seen[t] {
			return
		}
		seen[t] = true
		fmt.Fprintf(&b, "## `%s`\n\n| key | type | default | description |\n|---|---|---|---|\n", path)
		var nested []reflect.StructField
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			key := yamlKey(f)
			if key == "" {
				continue
			}
			doc := f.Tag.Get("doc")
			if f.Tag.Get("required") == "true" {
				doc += " (required)"
			}
			if enum := f.Tag.Get("enum"); enum != "" {
				doc += "; one of: " + strings.ReplaceAll(enum, ",", ", ")
			}
			def := f.Tag.Get("default")
			if def != "" {
				def = "`" + def + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", key, typeName(f.Type), def, doc)
			if et := elemStruct(f.Type); et != nil {
				nested = append(nested, f)
			}
		}
		b.WriteString("\n")
		for _, f := range nested {
			sub := path + "." + yamlKey(f)
			if f.Type.Kind() == reflect.Slice {
				sub += "[]"
			}
			walk(elemStruct(f.Type), sub)
		}
	}
	walk(reflect.TypeOf(Config{}), "config")
	return b.String()
}

func yamlKey(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if key == "-" {
		return ""
	}
	return key
}

// elemStruct returns the config struct a field holds (directly, by pointer or
// as list elements), or nil for scalars.
func elemStruct(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		return t
	}
	return nil
}

func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(Duration(0)):
		return "duration"
	case reflect.TypeOf(ByteSize(0)):
		return "size"
	case reflect.TypeOf(JSON(nil)):
		return "any"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Struct:
		return "mapping"
	case reflect.Int, reflect.Int64:
		return "int"
	}
	return t.Kind().String()
}
