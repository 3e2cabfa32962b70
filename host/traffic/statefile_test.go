package traffic

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

func TestMissingStateFileIsAFreshStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := newStore(t, Options{StatePath: path})
	if len(s.View().Entries) != 0 || len(s.Audit(0)) != 0 {
		t.Error("a fresh store is not empty")
	}
	mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`1`)})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the baseline SetFile wrote the state file: %v", err)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	file := map[Key]json.RawMessage{kSplit: j(`"A"`), kFlag: j(`"X"`)}

	s := newStore(t, Options{StatePath: path})
	mustSetFile(t, s, file)
	mustSet(t, s, kSplit, `"B"`, "alice")
	mustSet(t, s, kFlag, `"Y"`, "bob")
	mustSet(t, s, kCan, `{"percent":5}`, "bob")
	mustSet(t, s, kSplit, `"C"`, "carol")
	if _, err := s.Rollback("dave", nil); err != nil { // back to "B"
		t.Fatal(err)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", info.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}

	r := newStore(t, Options{StatePath: path})
	mustSetFile(t, r, file)
	if got, want := mustJSON(t, r.View().Entries), mustJSON(t, s.View().Entries); got != want {
		t.Errorf("view after restart\n got %s\nwant %s", got, want)
	}
	if got, want := mustJSON(t, r.Audit(0)), mustJSON(t, s.Audit(0)); got != want {
		t.Errorf("audit after restart\n got %s\nwant %s", got, want)
	}
	// Numbering continues, and the history is there to roll back.
	if ch := mustSet(t, r, kFlag, `"Z"`, "erin"); ch.Seq != 6 {
		t.Errorf("seq after restart %d, want 6", ch.Seq)
	}
	for _, want := range []struct {
		key   Key
		value string
	}{{kFlag, `"Y"`}, {kCan, ``}, {kFlag, `"X"`}, {kSplit, `"A"`}} {
		ch, err := r.Rollback("erin", nil)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Key != want.key || string(ch.After) != want.value {
			t.Errorf("rollback %s to %s, want %s to %s", ch.Key, ch.After, want.key, want.value)
		}
	}
	if _, err := r.Rollback("erin", nil); !errors.Is(err, ErrNothingToRollBack) {
		t.Errorf("history longer than expected: %v", err)
	}
}

// Before the first SetFile, a restored store shows the overrides against
// the file values they were made against, and can roll back.
func TestRestoredBeforeSetFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := newStore(t, Options{StatePath: path})
	mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`"X"`)})
	mustSet(t, s, kFlag, `"Y"`, "ops")

	r := newStore(t, Options{StatePath: path})
	if e := entry(t, r, kFlag); string(e.Value) != `"Y"` || string(e.File) != `"X"` || e.Source != FromRuntime {
		t.Errorf("restored entry %+v", e)
	}
	if ch, err := r.Rollback("ops", nil); err != nil || string(ch.After) != `"X"` {
		t.Errorf("rollback: %+v, %v", ch, err)
	}
}

// The file was edited while the gateway was down: the file wins at start.
func TestRestartAfterFileEdit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := newStore(t, Options{StatePath: path})
	mustSetFile(t, s, map[Key]json.RawMessage{kSplit: j(`"A"`)})
	mustSet(t, s, kSplit, `"B"`, "ops")

	r := newStore(t, Options{StatePath: path})
	ch, err := r.SetFile(map[Key]json.RawMessage{kSplit: j(`"A2"`)}, "start", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 1 || ch[0].Action != ActionDrop || string(ch[0].Before) != `"B"` || string(ch[0].After) != `"A2"` {
		t.Errorf("changes %+v", ch)
	}
	if e := r.Audit(1)[0]; e.Action != ActionDrop || e.Actor != "start" {
		t.Errorf("audit %+v", e)
	}
	if _, err := r.Rollback("ops", nil); !errors.Is(err, ErrNothingToRollBack) {
		t.Errorf("rollback across a file edit: %v", err)
	}
	// The drop is persisted: a second restart agrees.
	r2 := newStore(t, Options{StatePath: path})
	if _, ok := r2.View().Get(kSplit); ok || len(r2.Audit(0)) != 2 {
		t.Errorf("second restart: view %+v, audit %+v", r2.View(), r2.Audit(0))
	}
}

func TestLoadErrors(t *testing.T) {
	const at = `"2025-03-01T12:00:00Z"`
	ov := func(value string, seq string) string {
		return `{"value":` + value + `,"file":null,"by":"a","at":` + at + `,"seq":` + seq + `}`
	}
	stepJSON := func(seq, before, after string) string {
		return `{"seq":` + seq + `,"kind":"flag","name":"f","actor":"a","at":` + at + `,"file":null,"before":` + before + `,"after":` + after + `}`
	}
	item := `{"kind":"flag","name":"f","value":2,"file":null,"by":"a","at":` + at + `,"seq":2}`
	for _, tt := range []struct {
		name, content, want string
	}{
		{"empty", "", "file is empty"},
		{"truncated", `{"version":1,"items":[`, "not a state file"},
		{"not JSON", "version: 1\n", "not a state file"},
		{"other version", `{"version":2}`, "version 2, want 1"},
		{"no version", `{"items":[]}`, "version 0, want 1"},
		{"unknown field", `{"version":1,"overrides":[]}`, `unknown field "overrides"`},
		{"trailing data", `{"version":1} {}`, "data after the JSON object"},
		{"bad time", `{"version":1,"audit":[{"time":"yesterday","seq":1}]}`, "audit entry 1: time"},
		{"audit out of order", `{"version":1,"audit":[{"time":` + at + `,"seq":2},{"time":` + at + `,"seq":1}]}`, "audit entry 2: seq 1 does not follow 2"},
		{"empty key", `{"version":1,"items":[{"kind":"flag","name":"","value":1}]}`, "item 1: key"},
		{"duplicate item", `{"version":1,"items":[` + item + `,` + item + `]}`, "item 2: flag/f appears twice"},
		{"bad value", `{"version":1,"items":[{"kind":"flag","name":"f","value":"\u"}]}`, "not a state file"},
		{"broken history", `{"version":1,"items":[` + item + `],"history":[` + stepJSON("1", "null", ov("1", "1")) + `,` + stepJSON("2", "null", ov("2", "2")) + `]}`, "history step #2 (flag/f) does not follow from step #1"},
		{"history not ending at the item", `{"version":1,"items":[],"history":[` + stepJSON("1", "null", ov("1", "1")) + `]}`, "history of flag/f ends at step #1, which is not the item in force"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewStore(Options{StatePath: path})
			if err == nil || !strings.Contains(err.Error(), "state file "+path+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewStore: %v, want an error naming the file and %q", err, tt.want)
			}
			if readFile(t, path) != tt.content {
				t.Error("the unreadable state file was changed")
			}
		})
	}
	// A path that cannot be read at all.
	dir := t.TempDir()
	if _, err := NewStore(Options{StatePath: dir}); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("NewStore on a directory: %v", err)
	}
}

// A change that cannot be persisted does not happen.
func TestPersistFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "state.json")
	s := newStore(t, Options{StatePath: path})
	mustSetFile(t, s, map[Key]json.RawMessage{kFlag: j(`1`)})
	v := s.Version()
	if _, err := s.Set(kFlag, j(`2`), "ops", nil); err == nil || !strings.Contains(err.Error(), "state file "+path) {
		t.Errorf("Set: %v, want an error naming the state file", err)
	}
	if s.Version() != v || len(s.Audit(0)) != 0 || string(s.View().Value(kFlag)) != `1` {
		t.Error("a change that was not persisted became visible")
	}
	if _, err := s.Rollback("ops", nil); !errors.Is(err, ErrNothingToRollBack) {
		t.Errorf("the failed change entered history: %v", err)
	}
}
