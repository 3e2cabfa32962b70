package jsonpath

import (
	"encoding/json"
	"fmt"
	"strings"
)

// OpConfig is one edit as written in a plugin config:
//
//	{"op": "rename", "path": "user.fullName", "to": "name"}
//	{"op": "remove", "path": "items.internal_id"}
//	{"op": "add",    "path": "meta.source", "value": "gateway"}
//	{"op": "move",   "from": "user.address.city", "to": "city"}
type OpConfig struct {
	Op    string          `json:"op"`
	Path  string          `json:"path,omitempty"`
	From  string          `json:"from,omitempty"`
	To    string          `json:"to,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Op is a compiled edit.
type Op struct {
	kind     string
	path     Path
	to       Path   // move
	name     string // rename
	value    *Value // add
	describe string
}

// String describes the op, e.g. `rename user.fullName to name`.
func (o Op) String() string { return o.describe }

// Compile checks and compiles op configs; errors name the op by position
// ("ops[2]") under prefix.
func Compile(prefix string, cfgs []OpConfig) ([]Op, error) {
	ops := make([]Op, 0, len(cfgs))
	for i, c := range cfgs {
		op, err := compileOp(c)
		if err != nil {
			return nil, fmt.Errorf("%s[%d] (%s): %w", prefix, i, c.Op, err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func compileOp(c OpConfig) (Op, error) {
	need := func(field, v string) (Path, error) {
		if v == "" {
			return Path{}, fmt.Errorf("missing %q", field)
		}
		p, err := ParsePath(v)
		if err != nil {
			return Path{}, fmt.Errorf("%q: %w", field, err)
		}
		return p, nil
	}
	unused := func(fields map[string]bool) error {
		for name, set := range fields {
			if set {
				return fmt.Errorf("%q does not apply to this op", name)
			}
		}
		return nil
	}
	switch c.Op {
	case "remove":
		p, err := need("path", c.Path)
		if err == nil {
			err = unused(map[string]bool{"from": c.From != "", "to": c.To != "", "value": c.Value != nil})
		}
		return Op{kind: "remove", path: p, describe: "remove " + c.Path}, err
	case "rename":
		p, err := need("path", c.Path)
		if err != nil {
			return Op{}, err
		}
		if c.To == "" {
			return Op{}, fmt.Errorf(`missing "to" (the new member name)`)
		}
		if strings.Contains(c.To, ".") {
			return Op{}, fmt.Errorf(`"to" is a member name, not a path (%q); use "move" to change the parent`, c.To)
		}
		if last := p.segs[len(p.segs)-1]; last.wild || last.index >= 0 {
			return Op{}, fmt.Errorf(`"path" must end in a member name to rename, not %q`, last.key)
		}
		err = unused(map[string]bool{"from": c.From != "", "value": c.Value != nil})
		return Op{kind: "rename", path: p, name: c.To, describe: "rename " + c.Path + " to " + c.To}, err
	case "add", "set":
		p, err := need("path", c.Path)
		if err != nil {
			return Op{}, err
		}
		if c.Value == nil {
			return Op{}, fmt.Errorf(`missing "value"`)
		}
		v, err := FromJSON(c.Value)
		if err != nil {
			return Op{}, fmt.Errorf(`"value": %w`, err)
		}
		err = unused(map[string]bool{"from": c.From != "", "to": c.To != ""})
		return Op{kind: "add", path: p, value: v, describe: "add " + c.Path}, err
	case "move":
		from, err := need("from", c.From)
		if err != nil {
			return Op{}, err
		}
		to, err := need("to", c.To)
		if err != nil {
			return Op{}, err
		}
		if from.Wild() || to.Wild() {
			return Op{}, fmt.Errorf(`"move" takes one value: no "*" in "from" or "to" (rename members in place with "rename")`)
		}
		err = unused(map[string]bool{"path": c.Path != "", "value": c.Value != nil})
		return Op{kind: "move", path: from, to: to, describe: "move " + c.From + " to " + c.To}, err
	case "":
		return Op{}, fmt.Errorf(`missing "op" (one of rename, remove, add, move)`)
	}
	return Op{}, fmt.Errorf("unknown op %q (want rename, remove, add or move)", c.Op)
}

// Apply runs ops on root in order and returns how many places they changed.
func Apply(root *Value, ops []Op) int {
	n := 0
	for _, o := range ops {
		switch o.kind {
		case "remove":
			n += o.path.Delete(root)
		case "rename":
			n += o.path.Rename(root, o.name)
		case "add":
			n += o.path.Set(root, o.value)
		case "move":
			if Move(root, o.path, o.to) {
				n++
			}
		}
	}
	return n
}
