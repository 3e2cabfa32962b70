package config

import (
	"reflect"

	"go.yaml.in/yaml/v3"
)

var (
	routeType       = reflect.TypeOf(Route{})
	timeoutsType    = reflect.TypeOf(Timeouts{})
	routePluginType = reflect.TypeOf(RoutePlugin{})
	limitsType      = reflect.TypeOf(PluginLimits{})
)

// applyDefaults fills, from their `default` tags, the zero fields of v that
// the file did not write, and does the same in every struct below v that is
// present (a nil *HealthCheck stays nil: absent means off).
//
// A key written with an explicit zero keeps it, so that "weight: 0" is
// reported by validation instead of silently becoming 1. A key written as
// null counts as absent.
//
// Exceptions: Route.Timeouts and RoutePlugin.Limits get no defaults. Their
// zero fields mean "inherit" (from the upstream, from the plugin), whose
// values do get defaults; defaulting the overrides would hide them.
func applyDefaults(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			applyDefaults(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			applyDefaults(v.Index(i))
		}
	case reflect.Struct:
		_, at := book(v)
		for _, f := range fieldsOf(v.Type()) {
			fv := v.Field(f.index)
			if v.Type() == routeType && f.sf.Type == timeoutsType ||
				v.Type() == routePluginType && f.sf.Type == limitsType {
				continue // the exceptions above
			}
			if tag, ok := f.sf.Tag.Lookup("default"); ok && fv.IsZero() {
				if _, written := at[f.key]; !written {
					setDefault(fv, tag)
				}
			}
			applyDefaults(fv)
		}
	}
}

// setDefault decodes a default tag into v with the config decoder itself, so
// a tag reads exactly like the YAML an operator would write ("16KiB",
// "[connect_error]"). A bad tag is a bug caught by TestDefaultTags.
func setDefault(v reflect.Value, tag string) {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: tag}
	if v.Kind() == reflect.Slice {
		var doc yaml.Node
		if yaml.Unmarshal([]byte(tag), &doc) != nil || len(doc.Content) == 0 {
			return
		}
		n = doc.Content[0]
	}
	newDecoder("").decode(n, v, "default", "default")
}
