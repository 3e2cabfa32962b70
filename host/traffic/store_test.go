package traffic

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	kSplit = Key{"split", "users"}
	kFlag  = Key{"flag", "new-checkout"}
	kCan   = Key{"plugin_canary", "auth"}
)

func j(s string) json.RawMessage { return json.RawMessage(s) }

// clock is a fake clock that ticks one second per reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newStore(t *testing.T, opts Options) *Store {
	t.Helper()
	if opts.Now == nil {
		opts.Now = (&clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}).now
	}
	s, err := NewStore(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSetFile(t *testing.T, s *Store, items map[Key]json.RawMessage) []Change {
	t.Helper()
	ch, err := s.SetFile(items, "reload", nil)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func mustSet(t *testing.T, s *Store, k Key, v string, actor string) Change {
	t.Helper()
	ch, err := s.Set(k, j(v), actor, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// entry returns the view's entry of k, failing when there is none.
func entry(t *testing.T, s *Store, k Key) Entry {
	t.Helper()
	e, ok := s.View().Get(k)
	if !ok {
		t.Fatalf("%s is not in the view", k)
	}
	return e
}

// wantEntry checks the effective value and source of k.
func wantEntry(t *testing.T, s *Store, k Key, value, source string) {
	t.Helper()
	e := entry(t, s, k)
	if got := string(e.Value); got != value && !(value == "" && e.Value == nil) || e.Source != source {
		t.Errorf("%s = %s from %s, want %s from %s", k, e.Value, e.Source, value, source)
	}
}

// actions returns the audit log's actions, oldest first, as "action kind/name".
func actions(s *Store) []string {
	var out []string
	a := s.Audit(0)
	for i := len(a) - 1; i >= 0; i-- {
		out = append(out, a[i].Action+" "+a[i].Key.path())
	}
	return out
}

func TestStoreSetAndView(t *testing.T) {
	s := newStore(t, Options{})
	changes := mustSetFile(t, s, map[Key]json.RawMessage{
		kSplit: j(`[{"upstream": "users-v1", "weight": 90}, {"upstream": "users-v2", "weight": 10}]`),
		kFlag:  j(`{"enabled": false}`),
	})
	if len(changes) != 2 || changes[0].Key != kFlag || changes[1].Key != kSplit || changes[0].Seq != 0 {
		t.Fatalf("first SetFile: changes %+v", changes)
	}
	if a := s.Audit(0); len(a) != 0 {
		t.Fatalf("the first SetFile is the baseline, not audited: %+v", a)
	}
	v0 := s.Version()
	ch := mustSet(t, s, kFlag, `{ "enabled": true, "percent": 20 }`, "admin 10.0.0.7")
	if ch.Action != ActionSet || string(ch.Before) != `{"enabled":false}` || string(ch.After) != `{"enabled":true,"percent":20}` || ch.Seq != 1 {
		t.Errorf("Set returned %+v", ch)
	}
	if s.Version() <= v0 {
		t.Error("Version did not increase")
	}
	e := entry(t, s, kFlag)
	if e.Source != FromRuntime || string(e.Value) != `{"enabled":true,"percent":20}` || string(e.File) != `{"enabled":false}` ||
		e.By != "admin 10.0.0.7" || e.At.IsZero() || e.Seq != 1 {
		t.Errorf("flag entry %+v", e)
	}
	if e := entry(t, s, kSplit); e.Source != FromFile || e.By != "reload" || string(e.Value) != string(e.File) {
		t.Errorf("split entry %+v", e)
	}
	a := s.Audit(0)
	if len(a) != 1 || a[0].Actor != "admin 10.0.0.7" || a[0].Action != ActionSet || a[0].Key != kFlag ||
		string(a[0].Before) != `{"enabled":false}` || string(a[0].After) != `{"enabled":true,"percent":20}` {
		t.Errorf("audit %+v", a)
	}
}

func TestSetValues(t *testing.T) {
	s := newStore(t, Options{})
	mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`{"enabled":true}`)})

	// The current effective value: nothing happens.
	v := s.Version()
	if ch := mustSet(t, s, kFlag, `{"enabled": true}`, "a"); ch.Seq != 0 || s.Version() != v || len(s.Audit(0)) != 0 {
		t.Errorf("a Set to the current value was recorded: %+v", ch)
	}
	// JSON null removes a key the file defines; the drift shows.
	mustSet(t, s, kFlag, `null`, "a")
	if e := entry(t, s, kFlag); e.Value != nil || e.Source != FromRuntime || string(e.File) != `{"enabled":true}` {
		t.Errorf("removed flag: %+v", e)
	}
	// A key the file lacks can be created at run time, and removed again.
	mustSet(t, s, kCan, `{"sha256":"ab","percent":5}`, "a")
	wantEntry(t, s, kCan, `{"percent":5,"sha256":"ab"}`, FromRuntime)
	mustSet(t, s, kCan, ``, "a")
	if _, ok := s.View().Get(kCan); ok {
		t.Error("a removed run-time key is still in the view")
	}
	for _, tt := range []struct {
		key   Key
		value string
		want  string
	}{
		{kFlag, `{"enabled":`, "set flag/new-checkout: invalid JSON"},
		{kFlag, `{} {}`, "data after the value"},
		{Key{"", "x"}, `1`, "kind and name must not be empty"},
		{Key{"flag", ""}, `1`, "kind and name must not be empty"},
	} {
		if _, err := s.Set(tt.key, j(tt.value), "a", nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Set(%s, %s) = %v, want error with %q", tt.key, tt.value, err, tt.want)
		}
	}
}

// Values that mean the same compare equal: a reformatted file keeps the
// override, an equal Set changes nothing.
func TestCanonicalJSON(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{` {"b": 1, "a": [1, 2.50, "x<y"]} `, `{"a":[1,2.50,"x<y"],"b":1}`},
		{`12345678901234567890`, `12345678901234567890`},
		{`"é\u00e9"`, `"éé"`},
		{`null`, ``},
		{` `, ``},
	} {
		got, err := canonical(j(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("canonical(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// TestOverrideRule pins the user-visible contract of SetFile: file
// {split: A, flag: F}, split set to B at run time, then a reload.
func TestOverrideRule(t *testing.T) {
	const A, B, F = `{"w":[90,10]}`, `{"w":[80,20]}`, `{"enabled":false}`
	for _, tt := range []struct {
		name   string
		reload map[Key]json.RawMessage
		value  string // the split's effective value after the reload
		source string
		audit  string // the reload's audit entry for the split, "" for none
		note   string
	}{
		{"file unchanged", map[Key]json.RawMessage{kSplit: j(A), kFlag: j(F)}, B, FromRuntime, "", ""},
		{"file reformatted", map[Key]json.RawMessage{kSplit: j(` { "w" : [ 90, 10 ] } `), kFlag: j(F)}, B, FromRuntime, "", ""},
		{"another key edited", map[Key]json.RawMessage{kSplit: j(A), kFlag: j(`{"enabled":true}`)}, B, FromRuntime, "", ""},
		{"the key edited", map[Key]json.RawMessage{kSplit: j(`{"w":[70,30]}`), kFlag: j(F)}, `{"w":[70,30]}`, FromFile, ActionDrop, "the file's value changed since the run-time change #1 by ops"},
		{"edited to the override's value", map[Key]json.RawMessage{kSplit: j(B), kFlag: j(F)}, B, FromFile, ActionDrop, "the file's value changed"},
		{"the key removed", map[Key]json.RawMessage{kFlag: j(F)}, "", FromFile, ActionDrop, "removed from the file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, Options{})
			mustSetFile(t, s, map[Key]json.RawMessage{kSplit: j(A), kFlag: j(F)})
			mustSet(t, s, kSplit, B, "ops")
			mustSetFile(t, s, tt.reload)
			if tt.value == "" {
				if _, ok := s.View().Get(kSplit); ok {
					t.Errorf("%s still in the view", kSplit)
				}
			} else {
				wantEntry(t, s, kSplit, tt.value, tt.source)
			}
			var got *AuditEntry
			for _, e := range s.Audit(0) {
				if e.Key == kSplit && e.Action != ActionSet {
					got = &e
					break
				}
			}
			switch {
			case tt.audit == "" && got != nil:
				t.Errorf("unexpected audit entry %+v", *got)
			case tt.audit != "" && got == nil:
				t.Errorf("no %s audit entry", tt.audit)
			case got != nil && (got.Action != tt.audit || got.Actor != "reload" || !strings.Contains(got.Note, tt.note) || string(got.Before) != B):
				t.Errorf("audit entry %+v, want %s with note %q", *got, tt.audit, tt.note)
			}
		})
	}
}

func TestRuntimeOnlyKey(t *testing.T) {
	s := newStore(t, Options{})
	mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`{"enabled":false}`)})
	mustSet(t, s, kCan, `{"sha256":"ab","percent":5}`, "ops")
	mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`{"enabled":true}`)})
	wantEntry(t, s, kCan, `{"percent":5,"sha256":"ab"}`, FromRuntime)
	// The file now defines the key: the file wins.
	ch := mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`{"enabled":true}`), kCan: j(`{"sha256":"cd","percent":50}`)})
	wantEntry(t, s, kCan, `{"percent":50,"sha256":"cd"}`, FromFile)
	if len(ch) != 1 || ch[0].Action != ActionDrop || !strings.Contains(s.Audit(1)[0].Note, "added to the file") {
		t.Errorf("changes %+v, audit %+v", ch, s.Audit(1))
	}
}

func TestFileChangesAudited(t *testing.T) {
	s := newStore(t, Options{})
	mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`1`), kSplit: j(`2`)})
	ch := mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`1`), kSplit: j(`3`), kCan: j(`4`)})
	if len(ch) != 2 || ch[0].Key != kCan || ch[0].Action != ActionFile || ch[1].Key != kSplit || string(ch[1].Before) != `2` || ch[1].Seq == 0 {
		t.Errorf("changes %+v", ch)
	}
	if got := actions(s); strings.Join(got, ",") != "file plugin_canary/auth,file split/users" {
		t.Errorf("audit %v", got)
	}
	if e := entry(t, s, kSplit); e.By != "reload" || e.Source != FromFile {
		t.Errorf("entry %+v", e)
	}
}

// Setting the file's value ends the override; rollback brings it back.
func TestSetFileValueEndsOverride(t *testing.T) {
	s := newStore(t, Options{})
	mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`1`)})
	mustSet(t, s, kFlag, `2`, "ops")
	mustSet(t, s, kFlag, `1`, "ops")
	wantEntry(t, s, kFlag, `1`, FromFile)
	if n := s.Audit(1)[0].Note; !strings.Contains(n, "override ends") {
		t.Errorf("note %q", n)
	}
	if _, err := s.Rollback("ops", nil); err != nil {
		t.Fatal(err)
	}
	wantEntry(t, s, kFlag, `2`, FromRuntime)
}

func TestRollback(t *testing.T) {
	s := newStore(t, Options{})
	mustSetFile(t, s, map[Key]json.RawMessage{kSplit: j(`"A"`), kFlag: j(`"X"`)})
	mustSet(t, s, kSplit, `"B"`, "alice") // #1
	mustSet(t, s, kFlag, `"Y"`, "bob")    // #2
	mustSet(t, s, kSplit, `"C"`, "carol") // #3
	for _, want := range []struct {
		key           Key
		before, after string
		undoes        string
		source        string
	}{
		{kSplit, `"C"`, `"B"`, "undoes #3 by carol", FromRuntime},
		{kFlag, `"Y"`, `"X"`, "undoes #2 by bob", FromFile},
		{kSplit, `"B"`, `"A"`, "undoes #1 by alice", FromFile},
	} {
		ch, err := s.Rollback("dave", nil)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Key != want.key || string(ch.Before) != want.before || string(ch.After) != want.after || ch.Action != ActionRollback {
			t.Errorf("rollback %+v, want %s %s→%s", ch, want.key, want.before, want.after)
		}
		wantEntry(t, s, want.key, want.after, want.source)
		if e := s.Audit(1)[0]; e.Actor != "dave" || !strings.Contains(e.Note, want.undoes) {
			t.Errorf("audit %+v, want note %q", e, want.undoes)
		}
	}
	if _, err := s.Rollback("dave", nil); !errors.Is(err, ErrNothingToRollBack) {
		t.Errorf("rollback of an empty history: %v", err)
	}
	if got := strings.Join(actions(s), ","); got != "set split/users,set flag/new-checkout,set split/users,rollback split/users,rollback flag/new-checkout,rollback split/users" {
		t.Errorf("audit %s", got)
	}
}

func TestRollbackRestoresTheOverride(t *testing.T) {
	s := newStore(t, Options{})
	mustSetFile(t, s, nil)
	mustSet(t, s, kFlag, `1`, "alice")
	mustSet(t, s, kFlag, `2`, "bob")
	if _, err := s.Rollback("carol", nil); err != nil {
		t.Fatal(err)
	}
	if e := entry(t, s, kFlag); string(e.Value) != `1` || e.By != "alice" || e.Seq != 1 {
		t.Errorf("restored %+v, want alice's #1", e)
	}
	// A set after a rollback continues from the restored state.
	mustSet(t, s, kFlag, `3`, "carol")
	for _, want := range []string{`1`, ``} {
		if _, err := s.Rollback("carol", nil); err != nil {
			t.Fatal(err)
		}
		if got := string(s.View().Value(kFlag)); got != want {
			t.Errorf("after rollback: %q, want %q", got, want)
		}
	}
}

// A file edit ends the key's history: a rollback never undoes a file edit.
func TestRollbackAfterFileEdit(t *testing.T) {
	s := newStore(t, Options{})
	mustSetFile(t, s, map[Key]json.RawMessage{kSplit: j(`"A"`), kFlag: j(`"X"`)})
	mustSet(t, s, kFlag, `"Y"`, "ops")
	mustSet(t, s, kSplit, `"B"`, "ops")
	mustSet(t, s, kSplit, `"C"`, "ops")
	mustSetFile(t, s, map[Key]json.RawMessage{kSplit: j(`"A2"`), kFlag: j(`"X"`)})
	if n := s.Audit(1)[0].Note; !strings.Contains(n, "2 rollback step(s) for this key discarded") {
		t.Errorf("drop note %q", n)
	}
	ch, err := s.Rollback("ops", nil)
	if err != nil || ch.Key != kFlag {
		t.Fatalf("rollback: %+v, %v; want the flag's change", ch, err)
	}
	if _, err := s.Rollback("ops", nil); !errors.Is(err, ErrNothingToRollBack) {
		t.Errorf("second rollback: %v", err)
	}
	wantEntry(t, s, kSplit, `"A2"`, FromFile)

	// The same without an override left: the flag was set back to the file.
	mustSet(t, s, kFlag, `"Y"`, "ops")
	mustSet(t, s, kFlag, `"X"`, "ops")
	mustSetFile(t, s, map[Key]json.RawMessage{kSplit: j(`"A2"`), kFlag: j(`"X2"`)})
	if e := s.Audit(1)[0]; e.Action != ActionFile || e.Note != "2 rollback step(s) for this key discarded" {
		t.Errorf("file change after run-time history: %+v", e)
	}
	if _, err := s.Rollback("ops", nil); !errors.Is(err, ErrNothingToRollBack) {
		t.Errorf("third rollback: %v", err)
	}
}

func TestHistoryLimit(t *testing.T) {
	s := newStore(t, Options{HistoryLimit: 3})
	for i := range 5 {
		mustSet(t, s, kFlag, fmt.Sprint(i), "ops")
	}
	for _, want := range []string{`3`, `2`, `1`} {
		if _, err := s.Rollback("ops", nil); err != nil {
			t.Fatal(err)
		}
		if got := string(s.View().Value(kFlag)); got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	if _, err := s.Rollback("ops", nil); !errors.Is(err, ErrNothingToRollBack) {
		t.Errorf("beyond the limit: %v", err)
	}
}

func TestAuditLimitAndJSON(t *testing.T) {
	s := newStore(t, Options{AuditLimit: 3})
	for i := range 5 {
		mustSet(t, s, kFlag, fmt.Sprint(i), "ops")
	}
	a := s.Audit(0)
	if len(a) != 3 || a[0].Seq != 5 || a[2].Seq != 3 {
		t.Fatalf("audit %+v, want seq 5, 4, 3", a)
	}
	if a := s.Audit(2); len(a) != 2 || a[0].Seq != 5 {
		t.Errorf("Audit(2) = %+v", a)
	}
	b, err := json.Marshal(a[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2025-03-01T12:00:05.000Z","seq":5,"actor":"ops","action":"set","kind":"flag","name":"new-checkout","before":3,"after":4}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
	var back AuditEntry
	if err := json.Unmarshal(b, &back); err != nil || !back.Time.Equal(a[0].Time) || back.Seq != 5 || string(back.After) != `4` {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	// An absent value is null; the caller cannot reach into the store.
	mustSet(t, s, kFlag, `null`, "ops")
	e := s.Audit(1)[0]
	if b, _ := json.Marshal(e); !strings.Contains(string(b), `"before":4,"after":null`) {
		t.Errorf("JSON %s", b)
	}
	e.Before[0] = 'X'
	if s.Audit(1)[0].Before[0] == 'X' {
		t.Error("Audit returned the store's own bytes")
	}
}

func TestViewJSON(t *testing.T) {
	s := newStore(t, Options{})
	mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`{"enabled":false}`)})
	mustSet(t, s, kFlag, `{"enabled":true}`, "ops")
	b, err := json.Marshal(s.View())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":3,"items":[{"kind":"flag","name":"new-checkout","value":{"enabled":true},"source":"runtime","file":{"enabled":false},"by":"ops","seq":1,"at":"2025-03-01T12:00:02.000Z"}]}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
}

// A rejected change leaves nothing behind.
func TestCheckRejects(t *testing.T) {
	path := t.TempDir() + "/state.json"
	s := newStore(t, Options{StatePath: path})
	mustSetFile(t, s, map[Key]json.RawMessage{kSplit: j(`["v1"]`)})
	mustSet(t, s, kSplit, `["v1","v2"]`, "ops")
	before, version, file := s.View(), s.Version(), readFile(t, path)
	audit := len(s.Audit(0))

	noV3 := func(v View) error {
		if strings.Contains(string(v.Value(kSplit)), "v3") {
			return errors.New(`unknown upstream "v3"`)
		}
		return nil
	}
	rejectAll := func(View) error { return errors.New("no") }
	unchanged := func(what string) {
		t.Helper()
		if s.Version() != version || len(s.Audit(0)) != audit || readFile(t, path) != file {
			t.Errorf("%s: rejected but the version, audit or state file changed", what)
		}
		if b, _ := json.Marshal(s.View().Entries); string(b) != mustJSON(t, before.Entries) {
			t.Errorf("%s: rejected but the view changed", what)
		}
	}
	if _, err := s.Set(kSplit, j(`["v3"]`), "ops", noV3); err == nil || !strings.Contains(err.Error(), `set split/users: rejected: unknown upstream "v3"`) {
		t.Errorf("Set: %v", err)
	}
	unchanged("Set")
	if _, err := s.SetFile(map[Key]json.RawMessage{kSplit: j(`["v3"]`)}, "reload", rejectAll); err == nil {
		t.Error("SetFile: no error")
	}
	unchanged("SetFile")
	// A rollback whose step cannot be served discards the step (audited),
	// changing nothing else: the next rollback goes further back.
	var de *DiscardedError
	if _, err := s.Rollback("ops", rejectAll); !errors.As(err, &de) || de.Seq != 1 || !strings.Contains(err.Error(), "rejected: no") {
		t.Errorf("Rollback: %v", err)
	}
	if b, _ := json.Marshal(s.View().Entries); string(b) != mustJSON(t, before.Entries) {
		t.Errorf("a discarded rollback changed the view")
	}
	if a := s.Audit(1); len(a) != 1 || a[0].Action != ActionDiscard || !strings.Contains(a[0].Note, "#1 by ops could not be restored") {
		t.Errorf("the discard is not audited: %+v", a)
	}
	if _, err := s.Rollback("ops", noV3); !errors.Is(err, ErrNothingToRollBack) {
		t.Errorf("rollback after a discarded one: %v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Many admin calls at once: every change is applied, audited and persisted
// exactly once. Run with -race.
func TestConcurrentSet(t *testing.T) {
	path := t.TempDir() + "/state.json"
	s := newStore(t, Options{StatePath: path})
	mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`0`)})
	const workers, each = 6, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				k := Key{"flag", fmt.Sprintf("f%d", w)}
				if i%2 == 1 {
					k = kFlag // contended
				}
				if _, err := s.Set(k, j(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)), fmt.Sprint("worker ", w), nil); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			s.View()
			s.Audit(10)
			s.Version()
		}
	})
	wg.Wait()
	a := s.Audit(0)
	if len(a) != workers*each {
		t.Fatalf("%d audit entries, want %d", len(a), workers*each)
	}
	for i, e := range a {
		if e.Seq != uint64(len(a)-i) {
			t.Fatalf("audit entry %d has seq %d", i, e.Seq)
		}
	}
	r := newStore(t, Options{StatePath: path})
	if mustJSON(t, r.Audit(0)) != mustJSON(t, a) || mustJSON(t, r.View().Entries) != mustJSON(t, s.View().Entries) {
		t.Error("the state file does not hold the last state")
	}
}
