package main

import (
	"errors"
	"strings"
	"testing"
)

const cfg = `{"profiles":{
	"mobile":{"fields":["user","items.id","items.text"]},
	"tv":{"fields":["items.author","items.caption"],"ops":[{"op":"rename","path":"items.text","to":"caption"}]},
	"web":{}}}`

const feed = `{"user":1,"items":[{"id":"p1","author":"Ann","text":"hi","likes":3},{"id":"p2","author":"Bob","text":"yo","likes":5}]}`

type hdrs map[string]string

func (h hdrs) Header(n string) (string, bool) {
	for k, v := range h {
		if strings.EqualFold(k, n) {
			return v, true
		}
	}
	return "", false
}

func mustShaper(t *testing.T, c string) *shaper {
	t.Helper()
	s, err := newShaper([]byte(c))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChoose(t *testing.T) {
	s := mustShaper(t, cfg)
	for _, tc := range []struct {
		h    hdrs
		want string
	}{
		{hdrs{"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"}, "mobile"},
		{hdrs{"User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8)"}, "mobile"},
		{hdrs{"Sec-CH-UA-Mobile": "?1", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}, "mobile"},
		{hdrs{"Sec-CH-UA-Mobile": "?0", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}, "web"},
		{hdrs{"User-Agent": "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36"}, "tv"},
		{hdrs{"User-Agent": "Roku/DVP-12.0 (12.0.0.4182)"}, "tv"},
		{hdrs{"User-Agent": "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233) Android TV"}, "tv"}, // TV rule first
		{hdrs{"X-Client": "tv", "User-Agent": "iPhone Mobile"}, "tv"},
		{hdrs{"X-Client": "fridge", "User-Agent": "iPhone Mobile"}, "mobile"},
		{hdrs{}, "web"},
	} {
		p := s.choose(tc.h)
		if p == nil || p.name != tc.want {
			t.Errorf("%v: got %v, want %s", tc.h, p, tc.want)
		}
	}
	if s.vary != "User-Agent, Sec-CH-UA-Mobile, X-Client" {
		t.Fatalf("vary %q", s.vary)
	}
	// Without a web profile and no match: no reshaping.
	only := mustShaper(t, `{"profiles":{"mobile":{"fields":["a"]}},"client_header":"-"}`)
	if p := only.choose(hdrs{"User-Agent": "Mozilla/5.0 (X11)"}); p != nil {
		t.Fatalf("chose %s", p.name)
	}
	if only.vary != "Sec-CH-UA-Mobile, User-Agent" {
		t.Fatalf("vary %q (built-in rules for existing profiles only)", only.vary)
	}
	custom := mustShaper(t, `{"profiles":{"kiosk":{},"web":{}},"rules":[{"profile":"kiosk","header":"X-Device","equals":"kiosk"}],"default":"kiosk"}`)
	if p := custom.choose(hdrs{}); p.name != "kiosk" {
		t.Fatalf("default %s", p.name)
	}
}

func TestShape(t *testing.T) {
	s := mustShaper(t, cfg)
	for _, tc := range []struct {
		profile, fields, want string
	}{
		{"mobile", "", `{"user":1,"items":[{"id":"p1","text":"hi"},{"id":"p2","text":"yo"}]}`},
		{"tv", "", `{"items":[{"author":"Ann","caption":"hi"},{"author":"Bob","caption":"yo"}]}`},
		{"web", "", feed},
		{"web", "items.likes", `{"items":[{"likes":3},{"likes":5}]}`},
		{"mobile", "user, items.0.author", `{"user":1,"items":[{"author":"Ann"}]}`}, // fields= replaces the profile's
		{"tv", "items.caption", `{"items":[{"caption":"hi"},{"caption":"yo"}]}`},    // ops still apply first
		{"", "user", `{"user":1}`},
	} {
		p := s.profiles[tc.profile]
		var sel = s.profiles["web"].fields
		if tc.fields != "" {
			var err error
			if sel, err = s.selection(tc.fields); err != nil {
				t.Fatal(err)
			}
		}
		got, err := shape([]byte(feed), p, sel)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s %q: %s %v\nwant %s", tc.profile, tc.fields, got, err, tc.want)
		}
	}
	if _, err := shape([]byte(`{`), s.profiles["web"], nil); !errors.Is(err, errInvalid) {
		t.Fatalf("invalid JSON: %v", err)
	}
}

func TestSelectionParam(t *testing.T) {
	s := mustShaper(t, `{"profiles":{"web":{}},"max_fields":3}`)
	for _, tc := range []struct{ in, err string }{
		{"a,b.c", ""},
		{" a , ,b ", ""},
		{"", "no fields"},
		{",,", "no fields"},
		{"a..b", `path "a..b": empty segment`},
		{"a,b,c,d", "4 fields, at most 3"},
	} {
		_, err := s.selection(tc.in)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct{ cfg, err string }{
		{`{}`, `missing "profiles"`},
		{`{"profiles":{"m":{"fields":["a..b"]}}}`, `profiles.m: fields[0]: path "a..b": empty segment`},
		{`{"profiles":{"m":{"ops":[{"op":"zap"}]}}}`, `profiles.m: ops[0] (zap): unknown op "zap"`},
		{`{"profiles":{"m":{}},"rules":[{"profile":"x","header":"A","equals":"1"}]}`, `rules[0]: no profile "x"`},
		{`{"profiles":{"m":{}},"rules":[{"profile":"m","header":"A"}]}`, `rules[0]: want "pattern" or "equals"`},
		{`{"profiles":{"m":{}},"rules":[{"profile":"m","header":"A","pattern":"(","equals":"1"}]}`, `rules[0]: want "pattern" or "equals", not both`},
		{`{"profiles":{"m":{}},"rules":[{"profile":"m","header":"A","pattern":"("}]}`, `rules[0]: "pattern": error parsing regexp`},
		{`{"profiles":{"m":{}},"rules":[{"profile":"m","header":"A B","equals":"1"}]}`, `rules[0]: "header": "A B" is not a valid header name`},
		{`{"profiles":{"m":{}},"default":"web"}`, `"default": no profile "web" (have m)`},
		{`{"profiles":{"m":{}},"client_header":"X Y"}`, `"client_header": "X Y" is not a valid header name`},
		{`{"profiles":{"m":{}},"max_fields":-1}`, `"max_fields" and "max_body" must be positive`},
		{`{"profiles":{"m":{"field":[]}}}`, `unknown field "field"`},
	} {
		_, err := newShaper([]byte(tc.cfg))
		if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
			t.Errorf("%s\n got %v\nwant %s", tc.cfg, err, tc.err)
		}
	}
}
