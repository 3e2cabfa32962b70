package jsonpath

import "strconv"

// Selection is a compiled set of paths to keep: applying it to a document
// returns a new document with only the selected values, in the document's
// order (a GraphQL-like field selection).
type Selection struct {
	root *selNode
}

// selNode is a trie of path segments.
type selNode struct {
	leaf     bool // a path ends here: keep the whole value
	children map[string]*selNode
	wild     *selNode
	// names is this node restricted to non-numeric names, applied to each
	// element when the node meets an array ("items.id").
	names *selNode
}

// NewSelection compiles paths into a Selection.
func NewSelection(paths []Path) *Selection {
	root := &selNode{}
	for _, p := range paths {
		root.add(p.segs)
	}
	finish(root)
	return &Selection{root: root}
}

func (n *selNode) add(segs []segment) {
	if n.leaf {
		return // an ancestor is kept whole
	}
	if len(segs) == 0 {
		n.leaf, n.children, n.wild = true, nil, nil
		return
	}
	s := segs[0]
	var c *selNode
	if s.wild {
		if n.wild == nil {
			n.wild = &selNode{}
		}
		c = n.wild
	} else {
		if n.children == nil {
			n.children = map[string]*selNode{}
		}
		if c = n.children[s.key]; c == nil {
			c = &selNode{}
			n.children[s.key] = c
		}
	}
	c.add(segs[1:])
}

// finish computes the names view of every node.
func finish(n *selNode) {
	if n == nil || n.leaf {
		return
	}
	for _, c := range n.children {
		finish(c)
	}
	finish(n.wild)
	for k, c := range n.children {
		if _, err := strconv.Atoi(k); err == nil {
			continue
		}
		if n.names == nil {
			n.names = &selNode{children: map[string]*selNode{}}
		}
		n.names.children[k] = c
	}
}

// merge is the union of selections a and b (either may be nil).
func merge(a, b *selNode) *selNode {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.leaf || b.leaf:
		return &selNode{leaf: true}
	}
	m := &selNode{children: map[string]*selNode{}, wild: merge(a.wild, b.wild)}
	for k, c := range a.children {
		m.children[k] = c
	}
	for k, c := range b.children {
		m.children[k] = merge(m.children[k], c)
	}
	finish(m)
	return m
}

// Apply returns a new document holding only the selected parts of v (which
// it does not modify). Parents are kept around selected values; an object
// or array of which nothing is selected is left out, except the root, which
// is always returned (an empty object or array when nothing matched).
func (s *Selection) Apply(v *Value) *Value {
	out, ok := project(v, s.root)
	if !ok {
		switch v.Kind {
		case Object:
			return NewObject()
		case Array:
			return &Value{Kind: Array, Items: []*Value{}}
		}
		return v.Clone()
	}
	return out
}

func project(v *Value, n *selNode) (*Value, bool) {
	if n == nil || v == nil {
		return nil, false
	}
	if n.leaf {
		return v.Clone(), true
	}
	switch v.Kind {
	case Object:
		out := &Value{Kind: Object, Members: []Member{}}
		for _, m := range v.Members {
			if pv, ok := project(m.Value, merge(n.children[m.Key], n.wild)); ok {
				out.Members = append(out.Members, Member{Key: m.Key, Value: pv})
			}
		}
		return out, len(out.Members) > 0
	case Array:
		out := &Value{Kind: Array, Items: []*Value{}}
		matched := false
		for i, it := range v.Items {
			sel := merge(merge(n.children[strconv.Itoa(i)], n.wild), n.names)
			if pv, ok := project(it, sel); ok {
				out.Items = append(out.Items, pv)
				matched = true
			}
		}
		return out, matched
	}
	return nil, false
}
