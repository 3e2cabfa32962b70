package fleet

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wasmgate/wasmgate/host/etcdtest"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "etcd://127.0.0.1:2379/wasmgate", want: "etcd://127.0.0.1:2379/wasmgate"},
		{in: "etcd://a:1,b:2/x/y/", want: "etcd://a:1,b:2/x/y"},
		{in: "etcd://127.0.0.1:2379", err: "no key prefix"},
		{in: "etcd://127.0.0.1:2379/", err: "no key prefix"},
		{in: "etcd://127.0.0.1/p", err: "want HOST:PORT"},
		{in: "etcd://:2379/p", err: "want HOST:PORT"},
		{in: "etcd://h:0/p", err: "bad port"},
		{in: "etcd://h:99999/p", err: "bad port"},
		{in: "etcd://h:1/p?x", err: "may not contain"},
		{in: "http://h:1/p", err: "want etcd://"},
	} {
		u, err := ParseURL(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseURL(%q) = %v, want error with %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("ParseURL(%q): %v", tc.in, err)
		case tc.err == "" && u.String() != tc.want:
			t.Errorf("ParseURL(%q) = %s, want %s", tc.in, u, tc.want)
		}
	}
}

func dial(t *testing.T, e *etcdtest.Server, prefix string) *Client {
	t.Helper()
	u, err := ParseURL(e.URL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConfigPushIsCompareAndSwap(t *testing.T) {
	e := etcdtest.Start(t)
	c := dial(t, e, "/gw")
	ctx := context.Background()
	st, err := c.Read(ctx)
	if err != nil || st.Doc != nil || st.DocRev != 0 {
		t.Fatalf("empty fleet: %+v, %v", st, err)
	}
	sha, err := c.PutModule(ctx, []byte("\x00asm\x01\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	doc := &Doc{Name: "gw.yaml", YAML: "routes: []\n", Modules: map[string]string{"p.wasm": sha}}
	rev, err := c.PushConfig(ctx, doc, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A second push that read nothing (revision 0) loses, and so does one
	// that read an older revision; the document is the first push's.
	var ce *ConflictError
	if _, err := c.PushConfig(ctx, &Doc{Name: "other.yaml"}, 0); !errors.As(err, &ce) || ce.Actual != rev {
		t.Fatalf("second push on revision 0 = %v, want a conflict at %d", err, rev)
	}
	rev2, err := c.PushConfig(ctx, &Doc{Name: "gw.yaml", YAML: "routes: []\n# 2\n"}, rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushConfig(ctx, &Doc{Name: "stale.yaml"}, rev); !errors.As(err, &ce) {
		t.Fatalf("push on a stale revision = %v, want a conflict", err)
	}
	st, err = c.Read(ctx)
	if err != nil || st.Doc.YAML != "routes: []\n# 2\n" || st.DocRev != rev2 {
		t.Fatalf("read back: %+v, %v", st, err)
	}
	// A document naming a module that is not stored is refused.
	if _, err := c.PushConfig(ctx, &Doc{Modules: map[string]string{"x.wasm": strings.Repeat("ab", 32)}}, rev2); err == nil || !strings.Contains(err.Error(), "not stored") {
		t.Fatalf("push naming a missing module = %v", err)
	}
	// Another prefix is another fleet.
	if st, err := dial(t, e, "/other").Read(ctx); err != nil || st.Doc != nil {
		t.Fatalf("other prefix sees %+v, %v", st, err)
	}
}

func TestModulesByDigest(t *testing.T) {
	e := etcdtest.Start(t)
	c := dial(t, e, "/gw")
	ctx := context.Background()
	for _, size := range []int{0, 1, chunkSize, chunkSize + 1, 3*chunkSize + 17} {
		module := bytes.Repeat([]byte{byte(size)}, size)
		sha, err := c.PutModule(ctx, module)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		back, err := c.Module(ctx, sha)
		if err != nil || !bytes.Equal(back, module) {
			t.Fatalf("%d bytes: read back %d bytes, %v", size, len(back), err)
		}
	}
	if _, err := c.Module(ctx, strings.Repeat("0", 64)); !errors.Is(err, ErrNoModule) {
		t.Fatalf("unknown digest: %v", err)
	}
	// Bytes changed behind the digest's back are refused.
	sha, _ := c.PutModule(ctx, []byte("good module"))
	raw, _ := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}})
	defer raw.Close()
	if _, err := raw.Put(ctx, "/gw/modules/"+sha+"/0", "evil module"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Module(ctx, sha); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("tampered module: %v", err)
	}
}

func TestPinsAndWatch(t *testing.T) {
	e := etcdtest.Start(t)
	c := dial(t, e, "/gw")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	revs := c.Watch(ctx, 0)
	sha, _ := c.PutModule(ctx, []byte("v2"))
	rev, err := c.SetPin(ctx, "auth", Pin{SHA256: sha, Source: "admin", Against: strings.Repeat("1", 64), At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for seen := int64(0); seen < rev; {
		select {
		case seen = <-revs:
		case <-deadline:
			t.Fatalf("the watch did not report revision %d", rev)
		}
	}
	st, err := c.Read(ctx)
	if err != nil || st.Pins["auth"].SHA256 != sha {
		t.Fatalf("pins: %+v, %v", st.Pins, err)
	}
	if _, err := c.SetPin(ctx, "auth", Pin{SHA256: "nope"}); err == nil {
		t.Fatal("a pin with a bad digest was written")
	}
}

// A push ends the pins made against the modules it replaces, so that a
// later push of the old module does not bring an old hot-load back.
func TestPushEndsStalePins(t *testing.T) {
	e := etcdtest.Start(t)
	c := dial(t, e, "/gw")
	ctx := context.Background()
	a, _ := c.PutModule(ctx, []byte("module a"))
	b, _ := c.PutModule(ctx, []byte("module b"))
	hot, _ := c.PutModule(ctx, []byte("hot-loaded"))
	push := func(rev int64, sha string) int64 {
		t.Helper()
		next, err := c.PushConfig(ctx, &Doc{Name: "gw.yaml", Modules: map[string]string{"p.wasm": sha, "q.wasm": a},
			Plugins: map[string]string{"p": "p.wasm", "q": "q.wasm"}}, rev)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	rev := push(0, a)
	for _, name := range []string{"p", "q"} {
		if _, err := c.SetPin(ctx, name, Pin{SHA256: hot, Against: a}); err != nil {
			t.Fatal(err)
		}
	}
	rev = push(rev, b) // p's module changes, q's does not
	st, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Pins["p"]; ok {
		t.Error("p's pin survived a push of another module for p")
	}
	if _, ok := st.Pins["q"]; !ok {
		t.Error("q's pin ended by a push that kept q's module")
	}
	push(rev, a)
	if st, _ = c.Read(ctx); st.Pins["p"].SHA256 != "" {
		t.Error("p's old pin came back with its old module")
	}
}

// What keys hold is reported, not an error of the read: one bad key
// neither hides the rest nor looks like etcd being away.
func TestReadReportsBadKeys(t *testing.T) {
	e := etcdtest.Start(t)
	c := dial(t, e, "/gw")
	ctx := context.Background()
	raw, _ := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}})
	defer raw.Close()
	sha, _ := c.PutModule(ctx, []byte("m"))
	if _, err := c.SetPin(ctx, "good", Pin{SHA256: sha}); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"/gw/config": "{not json", "/gw/pins/bad": `{"sha256":"nope"}`} {
		if _, err := raw.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	st, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if st.DocErr == nil || st.Doc != nil || !slices.Equal(st.BadPins, []string{"/gw/pins/bad"}) || st.Pins["good"].SHA256 != sha {
		t.Fatalf("state = %+v", st)
	}
	if Unavailable(st.DocErr) {
		t.Error("a bad document counts as etcd being away")
	}
	ctx2, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	e.Kill()
	if _, err := c.Read(ctx2); !Unavailable(err) {
		t.Errorf("a read without etcd = %v, want it Unavailable", err)
	}
}
