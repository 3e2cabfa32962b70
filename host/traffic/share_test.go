package traffic

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// sharedCopy is the shared state of a fleet as the stores see it: one
// document and its revision, written with compare-and-swap (the fleet's
// etcd does the same; the package host/fleet is tested against a real one).
type sharedCopy struct {
	doc []byte
	rev int
}

var errStale = errors.New("the shared copy moved on")

// member is one gateway's store on the shared copy.
type member struct {
	*Store
	seen   int // the revision of the copy it last read or wrote
	shares int // writes it made
}

func join(t *testing.T, sc *sharedCopy) *member {
	m := &member{}
	m.Store = newStore(t, Options{Shared: sc.doc, Share: func(b []byte) error {
		if sc.rev != m.seen {
			return fmt.Errorf("rev %d, saw %d: %w", sc.rev, m.seen, errStale)
		}
		sc.doc, sc.rev = b, sc.rev+1
		m.seen = sc.rev
		m.shares++
		return nil
	}})
	m.seen = sc.rev
	return m
}

func (m *member) sync(t *testing.T, sc *sharedCopy) {
	t.Helper()
	if err := m.Replace(sc.doc, nil); err != nil {
		t.Fatal(err)
	}
	m.seen = sc.rev
}

func TestSharedStateAcrossStores(t *testing.T) {
	file := map[Key]json.RawMessage{kSplit: j(`[{"upstream":"v1","weight":100}]`), kFlag: j(`{"enabled":false}`)}
	sc := &sharedCopy{}
	a, b := join(t, sc), join(t, sc)
	mustSetFile(t, a.Store, file)
	mustSetFile(t, b.Store, file)
	if a.shares+b.shares != 0 {
		t.Fatalf("SetFile wrote the shared copy %d times; the config's values are every gateway's own", a.shares+b.shares)
	}

	// A change on one store reaches the other, audit entry included.
	ch := mustSet(t, a.Store, kFlag, `{"enabled":true}`, "alice")
	b.sync(t, sc)
	wantEntry(t, b.Store, kFlag, `{"enabled":true}`, FromRuntime)
	if got := b.Audit(1); len(got) != 1 || got[0].Seq != ch.Seq || got[0].Actor != "alice" {
		t.Fatalf("b's audit log = %+v, want a's entry #%d", got, ch.Seq)
	}

	// A store that has not seen the newest copy cannot overwrite it: the
	// change is refused and nothing changes, until it reads the copy.
	mustSet(t, b.Store, kSplit, `[{"upstream":"v2","weight":100}]`, "bob")
	if _, err := a.Set(kFlag, j(`{"enabled":false}`), "alice", nil); !errors.Is(err, errStale) {
		t.Fatalf("a stale store's Set = %v, want it refused", err)
	}
	wantEntry(t, a.Store, kFlag, `{"enabled":true}`, FromRuntime)
	wantEntry(t, a.Store, kSplit, `[{"upstream":"v1","weight":100}]`, FromFile)
	a.sync(t, sc)
	wantEntry(t, a.Store, kSplit, `[{"upstream":"v2","weight":100}]`, FromRuntime)

	// Rollback on either store walks the one shared history.
	if _, err := a.Rollback("carol", nil); err != nil {
		t.Fatal(err)
	}
	b.sync(t, sc)
	wantEntry(t, b.Store, kSplit, `[{"upstream":"v1","weight":100}]`, FromFile)
	if got, want := actions(b.Store), []string{"set flag/new-checkout", "set split/users", "rollback split/users"}; !slices.Equal(got, want) {
		t.Fatalf("b's audit = %q, want %q", got, want)
	}
}

// A store whose config has another file value for a key than the store
// that shared an override drops the override, and its history, as SetFile
// would: it was made against a file this gateway does not serve.
func TestReplaceKeepsOverridesOfAnotherFile(t *testing.T) {
	sc := &sharedCopy{}
	a, b := join(t, sc), join(t, sc)
	mustSetFile(t, a.Store, map[Key]json.RawMessage{kFlag: j(`{"enabled":false}`)})
	mustSetFile(t, b.Store, map[Key]json.RawMessage{kFlag: j(`{"enabled":false,"percent":5}`)})
	mustSet(t, a.Store, kFlag, `{"enabled":true}`, "alice")
	b.sync(t, sc)
	wantEntry(t, b.Store, kFlag, `{"enabled":false,"percent":5}`, FromFile)
	if _, err := b.Rollback("bob", nil); !errors.Is(err, ErrNothingToRollBack) {
		t.Fatalf("rollback on b = %v, want nothing to roll back", err)
	}
	// The copy itself is untouched: a has the override still.
	a.sync(t, sc)
	wantEntry(t, a.Store, kFlag, `{"enabled":true}`, FromRuntime)

	// A change b makes on another key shares a's override back as it came:
	// no gateway loses what another made.
	b.sync(t, sc)
	mustSet(t, b.Store, kSplit, `[{"upstream":"v2","weight":100}]`, "bob")
	a.sync(t, sc)
	wantEntry(t, a.Store, kFlag, `{"enabled":true}`, FromRuntime)
	wantEntry(t, a.Store, kSplit, `[{"upstream":"v2","weight":100}]`, FromRuntime)
	if _, err := a.Rollback("carol", nil); err != nil { // bob's split
		t.Fatal(err)
	}
	if _, err := a.Rollback("carol", nil); err != nil { // alice's flag, made on a
		t.Fatal(err)
	}
	wantEntry(t, a.Store, kFlag, `{"enabled":false}`, FromFile)

	// Once b serves the file value a's override was made against, b takes
	// a foreign override into effect.
	mustSet(t, a.Store, kFlag, `{"enabled":true}`, "alice")
	b.sync(t, sc)
	wantEntry(t, b.Store, kFlag, `{"enabled":false,"percent":5}`, FromFile)
	mustSetFile(t, b.Store, map[Key]json.RawMessage{kFlag: j(`{"enabled":false}`)})
	wantEntry(t, b.Store, kFlag, `{"enabled":true}`, FromRuntime)
	if _, err := b.Rollback("bob", nil); err != nil {
		t.Fatal(err)
	}
	wantEntry(t, b.Store, kFlag, `{"enabled":false}`, FromFile)
}

// A store whose config ends an override another gateway still serves
// keeps it for that gateway.
func TestSetFileKeepsSharedOverridesOfTheOldFile(t *testing.T) {
	sc := &sharedCopy{}
	a, b := join(t, sc), join(t, sc)
	old := map[Key]json.RawMessage{kFlag: j(`{"enabled":false}`)}
	mustSetFile(t, a.Store, old)
	mustSetFile(t, b.Store, old)
	mustSet(t, a.Store, kFlag, `{"enabled":true}`, "alice")
	b.sync(t, sc)
	// b is pushed a new config first, and makes an unrelated change.
	mustSetFile(t, b.Store, map[Key]json.RawMessage{kFlag: j(`{"enabled":false,"percent":5}`)})
	wantEntry(t, b.Store, kFlag, `{"enabled":false,"percent":5}`, FromFile)
	mustSet(t, b.Store, kSplit, `[{"upstream":"v2","weight":100}]`, "bob")
	a.sync(t, sc)
	wantEntry(t, a.Store, kFlag, `{"enabled":true}`, FromRuntime)
}

func TestReplaceRefusesWhatCheckRejectsOrCannotParse(t *testing.T) {
	sc := &sharedCopy{}
	a, b := join(t, sc), join(t, sc)
	file := map[Key]json.RawMessage{kFlag: j(`{"enabled":false}`)}
	mustSetFile(t, a.Store, file)
	mustSetFile(t, b.Store, file)
	mustSet(t, a.Store, kFlag, `{"enabled":true}`, "alice")
	if err := b.Replace(sc.doc, func(View) error { return errors.New("no") }); err == nil {
		t.Fatal("Replace ignored check")
	}
	wantEntry(t, b.Store, kFlag, `{"enabled":false}`, FromFile)
	if err := b.Replace([]byte(`{"version":1,"items":[{"kind":"flag"}]}`), nil); err == nil {
		t.Fatal("Replace took a broken copy")
	}
	wantEntry(t, b.Store, kFlag, `{"enabled":false}`, FromFile)
}

// A store started on a shared copy restores it as one started on a state
// file does.
func TestStartFromSharedCopy(t *testing.T) {
	sc := &sharedCopy{}
	a := join(t, sc)
	file := map[Key]json.RawMessage{kFlag: j(`{"enabled":false}`)}
	mustSetFile(t, a.Store, file)
	mustSet(t, a.Store, kFlag, `{"enabled":true}`, "alice")
	c := join(t, sc)
	mustSetFile(t, c.Store, file)
	wantEntry(t, c.Store, kFlag, `{"enabled":true}`, FromRuntime)
	if _, err := c.Rollback("bob", nil); err != nil {
		t.Fatal(err)
	}
	wantEntry(t, c.Store, kFlag, `{"enabled":false}`, FromFile)
}
