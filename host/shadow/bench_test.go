package shadow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// doc2K is a ~2 KB JSON answer: an envelope, a page of users, meta.
func doc2K(name string, reorder bool) []byte {
	var b strings.Builder
	b.WriteString(`{"data":{"users":[`)
	for i := range 8 {
		if i > 0 {
			b.WriteString(",")
		}
		if reorder {
			fmt.Fprintf(&b, `{"tags":["a","b"],"active":true,"score":%d.50,"email":"user%d@example.com","name":%q,"id":%d}`, i*7, i, fmt.Sprint("User ", i), 1000+i)
		} else {
			fmt.Fprintf(&b, `{"id":%d,"name":%q,"email":"user%d@example.com","score":%d.5,"active":true,"tags":["a","b"]}`, 1000+i, fmt.Sprint("User ", i), i, i*7)
		}
	}
	fmt.Fprintf(&b, `],"owner":%q,"updated_at":"2025-01-02T03:04:05Z"},"meta":{"page":1,"per_page":8,"total":8123,"request_id":"9f8e7d6c5b4a","next":"/users?page=2&per_page=8","links":{"self":"/users?page=1","last":"/users?page=1016"}},`, name)
	b.WriteString(`"about":"` + strings.Repeat("lorem ipsum ", 80) + `"}`)
	return []byte(b.String())
}

func BenchmarkDiff(b *testing.B) {
	c, err := NewComparer(Spec{Status: true, Headers: []string{"Content-Type"}, Body: BodyJSON, Ignore: []string{"meta.request_id", "data.users[*].id"}})
	if err != nil {
		b.Fatal(err)
	}
	base := doc2K("alice", false)
	ct := [][]byte{[]byte("application/json")}
	h := func(string) [][]byte { return ct } // as PeekAll: no allocation
	for _, bc := range []struct {
		name  string
		other []byte
		diffs int
	}{
		{"identical", doc2K("alice", false), 0},
		{"equal-reordered", doc2K("alice", true), 0},
		{"one-field-changed", doc2K("bob", false), 1},
	} {
		p := &Response{Status: 200, Header: h, Body: base, ContentType: "application/json"}
		q := &Response{Status: 200, Header: h, Body: bc.other, ContentType: "application/json"}
		if n := len(c.Diff(p, q)); n != bc.diffs {
			b.Fatalf("%s: %d differences, want %d: %s", bc.name, n, bc.diffs, dump(c.Diff(p, q)))
		}
		b.Run(fmt.Sprintf("%s/%dB", bc.name, len(base)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(base)))
			for b.Loop() {
				c.Diff(p, q)
			}
		})
	}
}

// BenchmarkParse compares the differ's parser with encoding/json decoding
// the same document into interface values (UseNumber), what it replaced.
func BenchmarkParse(b *testing.B) {
	doc := doc2K("alice", true)
	b.Run("shadow", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(doc)))
		var p parser
		for b.Loop() {
			if !p.parse(doc) {
				b.Fatal("not JSON")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			dec := json.NewDecoder(bytes.NewReader(doc))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
