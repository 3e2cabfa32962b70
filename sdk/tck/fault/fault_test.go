package main

import "testing"

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		in, err string
		want    config
	}{
		{in: `{"mode":"loop"}`, want: config{Mode: "loop", On: "request", Every: 1}},
		{in: `{"mode":"trap","on":"response","every":3,"header":"X-Ran"}`, want: config{Mode: "trap", On: "response", Every: 3, Header: "X-Ran"}},
		{in: `{"mode":"garbage","on":"init"}`, want: config{Mode: "garbage", On: "init", Every: 1}},
		{in: `{}`, err: `missing "mode" (one of ["ok" "loop" "alloc" "trap" "panic" "exit" "garbage" "bad_pointer"])`},
		{in: `{"mode":"explode"}`, err: `"mode": unknown mode "explode" (want one of ["ok" "loop" "alloc" "trap" "panic" "exit" "garbage" "bad_pointer"])`},
		{in: `{"mode":"ok","on":"reply"}`, err: `"on": unknown hook "reply" (want init, request or response)`},
		{in: `{"mode":"ok","every":-1}`, err: `"every" must be positive`},
		{in: `{"mode":"trap","on":"init","every":2}`, err: `"every" counts requests: it does not apply to "on: init"`},
		{in: `{"mode":"ok","when":"now"}`, err: `unknown field "when"`},
	} {
		got, err := parseConfig([]byte(tc.in))
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: error %v\nwant %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestFires(t *testing.T) {
	c := config{Mode: "trap", Every: 3}
	var got []int64
	for n := int64(1); n <= 9; n++ {
		if c.fires(n) {
			got = append(got, n)
		}
	}
	if len(got) != 3 || got[0] != 3 || got[2] != 9 {
		t.Fatalf("every 3 fired at %v", got)
	}
	ok := config{Mode: "ok", Every: 1}
	if ok.fires(1) {
		t.Fatal("mode ok fired")
	}
}
