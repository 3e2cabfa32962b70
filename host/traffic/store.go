package traffic

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Key names one item of run-time traffic state. The gateway uses the kinds
// "split" and "switch" (per route), "flag" and "plugin_canary"; the store
// treats every kind alike.
type Key struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// path is the key as error messages write it, "kind/name". (Not a String
// method: the types that embed Key would print as their key.)
func (k Key) path() string { return k.Kind + "/" + k.Name }

func (k Key) check() error {
	if k.Kind == "" || k.Name == "" {
		return fmt.Errorf("key %q: kind and name must not be empty", k.path())
	}
	return nil
}

// The sources of an Entry's value.
const (
	FromFile    = "file"
	FromRuntime = "runtime"
)

// Entry is one item of the effective state.
type Entry struct {
	Key
	// Value is the effective value, nil when absent (an override may
	// remove a key the file defines).
	Value json.RawMessage `json:"value"`
	// Source is FromRuntime when an override is in force, else FromFile.
	Source string `json:"source"`
	// File is the config file's value, nil when the file lacks the key.
	// It differs from Value exactly when Source is FromRuntime: the drift.
	File json.RawMessage `json:"file"`
	// By and At say who made the override and when; for a file value, the
	// actor and time of the reload that last changed it.
	By string    `json:"by"`
	At time.Time `json:"at"`
	// Seq is the audit entry of the override (0 for a file value).
	Seq uint64 `json:"seq,omitempty"`
}

// MarshalJSON writes At as RFC 3339 with milliseconds.
func (e Entry) MarshalJSON() ([]byte, error) {
	type plain Entry
	return json.Marshal(struct {
		plain
		At string `json:"at"` // shallower, so it hides plain.At
	}{plain(e), e.At.UTC().Format(timeFormat)})
}

// View is the effective state: every key the file or an override defines,
// sorted by kind and name.
type View struct {
	// Version increases with every change of the store.
	Version uint64  `json:"version"`
	Entries []Entry `json:"items"`
}

// Get returns the entry of k.
func (v View) Get(k Key) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(v.Entries, k, func(e Entry, k Key) int { return compareKeys(e.Key, k) })
	if !ok {
		return Entry{}, false
	}
	return v.Entries[i], true
}

// FileView is the view of a file's items with no run-time overrides: what
// a config alone says, for a dry run that must not touch a Store.
func FileView(items map[Key]json.RawMessage) View {
	v := View{Entries: make([]Entry, 0, len(items))}
	for k, val := range items {
		v.Entries = append(v.Entries, Entry{Key: k, Value: val, Source: FromFile, File: val})
	}
	slices.SortFunc(v.Entries, func(a, b Entry) int { return compareKeys(a.Key, b.Key) })
	return v
}

// Value returns the effective value of k, nil when absent.
func (v View) Value(k Key) json.RawMessage {
	e, _ := v.Get(k)
	return e.Value
}

// Check validates a candidate state before it becomes visible. It runs under
// the store's lock: it must not call the Store.
type Check func(View) error

// Change is one change of the effective state.
type Change struct {
	Key
	Action string `json:"action"`
	// Before and After are the effective values, nil when absent.
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	// Seq is the change's audit entry, 0 when it was not audited (the
	// first SetFile, or a Set that changed nothing).
	Seq uint64 `json:"seq,omitempty"`
}

// Options configure a Store.
type Options struct {
	// StatePath is the state file; "" keeps the state in memory only.
	StatePath string
	// Share, when set, is where the state goes instead of the state file:
	// a store several gateways share (a fleet's etcd). It receives every
	// run-time change (Set, Rollback) encoded as the state file is, and
	// must fail, changing nothing, when the shared copy moved on since the
	// store last saw it (Replace); the change is then refused. SetFile
	// does not write to it: every gateway of a fleet applies the same
	// config file values itself.
	Share func(state []byte) error
	// Shared is the shared copy of the state at start (nil: none yet);
	// with Share set it takes the place of the state file.
	Shared []byte
	// HistoryLimit bounds the run-time changes kept for Rollback
	// (default 256).
	HistoryLimit int
	// AuditLimit bounds the audit entries kept (default 1000).
	AuditLimit int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ErrNothingToRollBack is returned by Rollback when no run-time change is
// left in history.
var ErrNothingToRollBack = errors.New("traffic: nothing to roll back")

// PersistError is a change that could not be written to the state file:
// the change did not happen, through no fault of its own.
type PersistError struct{ Err error }

func (e *PersistError) Error() string { return "traffic: state file: " + e.Err.Error() }
func (e *PersistError) Unwrap() error { return e.Err }

// DiscardedError is a rollback whose step could not be restored (check
// rejected it: a canary whose version is now the running one, a split
// naming an upstream a reload removed). The step is discarded, audited as
// such, so that the next rollback goes further back instead of failing
// on it forever.
type DiscardedError struct {
	Seq    uint64
	Key    Key
	Reason error
}

func (e *DiscardedError) Error() string {
	return fmt.Sprintf("traffic: change #%d (%s) cannot be restored, so it was discarded from the history (the next rollback goes further back): %v", e.Seq, e.Key.path(), e.Reason)
}
func (e *DiscardedError) Unwrap() error { return e.Reason }

// Store holds the traffic state: the config file's values and the run-time
// overrides, their history and the audit log. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	opts    Options
	st      state
	version uint64
	started bool // SetFile has succeeded once
}

// state is everything a change replaces at once. Values inside are never
// mutated, only replaced, so a shallow clone is a snapshot.
type state struct {
	file    map[Key]fileValue
	over    map[Key]*override
	history []step
	// foreign are the overrides, and foreignHistory their steps, of a
	// shared state (Replace) made against other file values than this
	// store's: other gateways of the fleet serve them. They are not in
	// effect here, and are written back as they came (a key has either
	// an override here or a foreign one).
	foreign        map[Key]*override
	foreignHistory []step
	audit          []AuditEntry
	seq            uint64 // the last audit Seq
}

type fileValue struct {
	value json.RawMessage
	by    string
	at    time.Time
}

// override is a run-time value and the file value it was made against.
type override struct {
	Value json.RawMessage `json:"value"` // nil: absent
	File  json.RawMessage `json:"file"`  // nil: the file lacked the key
	By    string          `json:"by"`
	At    time.Time       `json:"at"`
	Seq   uint64          `json:"seq"` // the audit entry of the Set
}

// step is one run-time change in history: the key's override before and
// after (nil: none). Every step's File equals the key's current file value:
// SetFile discards the steps of a key whose file value it changes.
type step struct {
	Seq uint64 `json:"seq"`
	Key
	Actor  string          `json:"actor"`
	At     time.Time       `json:"at"`
	File   json.RawMessage `json:"file"`
	Before *override       `json:"before"`
	After  *override       `json:"after"`
}

// NewStore returns a store, restored from opts.StatePath when that file
// exists. A state file that cannot be read or parsed is an error: the store
// would otherwise overwrite it at the first change.
func NewStore(opts Options) (*Store, error) {
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = 256
	}
	if opts.AuditLimit <= 0 {
		opts.AuditLimit = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{opts: opts, version: 1, st: state{file: map[Key]fileValue{}, over: map[Key]*override{}}}
	if opts.StatePath != "" || opts.Shared != nil {
		var st *state
		var err error
		if opts.Share != nil {
			if opts.Shared != nil {
				if st, err = parseState(opts.Shared); err != nil {
					err = fmt.Errorf("traffic: shared state: %w", err)
				}
			}
		} else {
			st, err = load(opts.StatePath)
		}
		if err != nil {
			return nil, err
		}
		if st != nil {
			// Limits lowered since the file was written apply now.
			if n := len(st.history) - opts.HistoryLimit; n > 0 {
				st.history = st.history[n:]
			}
			if n := len(st.audit) - opts.AuditLimit; n > 0 {
				st.audit = st.audit[n:]
			}
			s.st = *st
		}
	}
	return s, nil
}

// Version returns a number that increases with every change; a caller that
// compiled a View may compare it to know whether to compile again.
func (s *Store) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// View returns the effective state.
func (s *Store) View() View {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.st.view(s.version)
	for i := range v.Entries {
		e := &v.Entries[i]
		e.Value, e.File = clone(e.Value), clone(e.File)
	}
	return v
}

// SetFile replaces the config file's values, at start and on every reload.
// A nil or JSON null value counts as absent. An override stays in force
// while the file's value for its key is the one it was made against;
// otherwise (the value was edited, or the key added or removed) it is
// dropped, audited as ActionDrop, and the key's run-time history is
// discarded. Changes of the file's values of keys without an override are
// audited as ActionFile, except on the first call (the baseline).
//
// When check rejects the resulting state, or it cannot be persisted,
// nothing changes and the error says why. It returns the changes of the
// effective state, sorted by key.
func (s *Store) SetFile(items map[Key]json.RawMessage, actor string, check Check) ([]Change, error) {
	file := make(map[Key]json.RawMessage, len(items))
	for k, raw := range items {
		if err := k.check(); err != nil {
			return nil, fmt.Errorf("traffic: file: %w", err)
		}
		v, err := canonical(raw)
		if err != nil {
			return nil, fmt.Errorf("traffic: file: %s: %w", k.path(), err)
		}
		if v != nil {
			file[k] = v
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	old := s.st
	c := old.clone()
	c.file = make(map[Key]fileValue, len(file))
	for k, v := range file {
		fv := old.file[k]
		if !bytes.Equal(fv.value, v) {
			fv = fileValue{value: v, by: actor, at: now}
		}
		c.file[k] = fv
	}
	shared := s.opts.Share != nil
	if shared {
		// Overrides other gateways made against these file values come
		// into effect.
		for k, o := range c.foreign {
			if bytes.Equal(o.File, file[k]) {
				c.over[k] = o
				delete(c.foreign, k)
			}
		}
		c.foreignHistory = slices.DeleteFunc(c.foreignHistory, func(st step) bool {
			if _, in := c.over[st.Key]; in && bytes.Equal(st.File, file[st.Key]) {
				c.history = append(c.history, st)
				return true
			}
			return false
		})
		slices.SortStableFunc(c.history, func(a, b step) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	// The rule: an override lives while its file value is unchanged.
	dropped := map[Key]*override{}
	for k, o := range old.over {
		if !bytes.Equal(o.File, file[k]) {
			delete(c.over, k)
			dropped[k] = o
			if shared { // other gateways may serve it yet
				if c.foreign == nil {
					c.foreign = map[Key]*override{}
				}
				c.foreign[k] = o
			}
		}
	}
	stale := map[Key]int{}
	c.history = slices.DeleteFunc(c.history, func(st step) bool {
		if bytes.Equal(st.File, file[st.Key]) {
			return false
		}
		stale[st.Key]++
		if shared {
			c.foreignHistory = append(c.foreignHistory, st)
		}
		return true
	})

	keys := unionKeys(old, c)
	var changes []Change
	for _, k := range keys {
		before, after := old.effective(k), c.effective(k)
		o := dropped[k]
		if o == nil && bytes.Equal(before, after) {
			continue
		}
		ch := Change{Key: k, Action: ActionFile, Before: before, After: after}
		note := ""
		switch {
		case o != nil:
			ch.Action = ActionDrop
			note = dropNote(o, file[k], stale[k])
		case stale[k] > 0:
			note = fmt.Sprintf("%d rollback step(s) for this key discarded", stale[k])
		}
		if o != nil || s.started {
			ch.Seq = c.record(now, actor, ch.Action, k, before, after, note, s.opts.AuditLimit)
		}
		if !bytes.Equal(before, after) {
			changes = append(changes, ch)
		}
	}
	persist := s.opts.Share == nil && (len(dropped) > 0 || c.seq != old.seq || len(stale) > 0)
	if err := s.commit(c, check, persist); err != nil {
		return nil, err
	}
	s.started = true
	return changes, nil
}

func dropNote(o *override, now json.RawMessage, stale int) string {
	var b strings.Builder
	switch {
	case now == nil:
		b.WriteString("removed from the file")
	case o.File == nil:
		b.WriteString("added to the file")
	default:
		b.WriteString("the file's value changed")
	}
	fmt.Fprintf(&b, " since the run-time change #%d by %s at %s; the file wins", o.Seq, o.By, o.At.UTC().Format(timeFormat))
	if stale > 0 {
		fmt.Fprintf(&b, " (%d rollback step(s) for this key discarded)", stale)
	}
	return b.String()
}

// Set makes a run-time change of key to value (nil or JSON null: absent);
// the caller has validated value on its own, and check validates the whole
// candidate state (nil: none). The change is recorded in history and the
// audit log and persisted before it becomes visible; when check rejects it
// or persisting fails, nothing changes and the error says why.
//
// Setting the file's own value ends the override (the key's Source becomes
// FromFile again); setting the current effective value changes nothing and
// is not audited.
func (s *Store) Set(key Key, value json.RawMessage, actor string, check Check) (Change, error) {
	if err := key.check(); err != nil {
		return Change{}, fmt.Errorf("traffic: set: %w", err)
	}
	v, err := canonical(value)
	if err != nil {
		return Change{}, fmt.Errorf("traffic: set %s: %w", key.path(), err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.st
	before := old.effective(key)
	ch := Change{Key: key, Action: ActionSet, Before: before, After: v}
	if bytes.Equal(before, v) {
		return ch, nil
	}
	now := s.now()
	c := old.clone()
	c.forget(key)
	fileV := old.file[key].value
	note := ""
	var after *override
	if bytes.Equal(v, fileV) {
		note = "equals the file's value: the override ends"
		if v == nil {
			note = "the file lacks the key too: the override ends"
		}
		delete(c.over, key)
	}
	ch.Seq = c.record(now, actor, ActionSet, key, before, v, note, s.opts.AuditLimit)
	if note == "" {
		after = &override{Value: v, File: fileV, By: actor, At: now, Seq: ch.Seq}
		c.over[key] = after
	}
	c.history = append(c.history, step{Seq: ch.Seq, Key: key, Actor: actor, At: now, File: fileV, Before: old.over[key], After: after})
	if n := len(c.history) - s.opts.HistoryLimit; n > 0 {
		c.history = slices.Delete(c.history, 0, n)
	}
	if err := s.commit(c, check, true); err != nil {
		return Change{}, fmt.Errorf("traffic: set %s: %w", key.path(), err)
	}
	return ch, nil
}

// Rollback undoes the newest run-time change left in history, restoring
// its key's override (or file value) as it was before; called again, it
// undoes the one before. It is audited as ActionRollback but does not enter
// history itself, so rollbacks never undo each other. A change whose key's
// file value was edited since is no longer in history: a rollback never
// undoes a file edit. ErrNothingToRollBack when history is empty. When check
// rejects the restored state or persisting fails, nothing changes, the step
// stays, and the error says why.
func (s *Store) Rollback(actor string, check Check) (Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.st
	if len(old.history) == 0 {
		return Change{}, ErrNothingToRollBack
	}
	st := old.history[len(old.history)-1]
	if !sameOverride(old.over[st.Key], st.After) || !bytes.Equal(st.File, old.file[st.Key].value) {
		// The invariants (see step) make this unreachable.
		return Change{}, fmt.Errorf("traffic: rollback of #%d (%s): history does not match the current state", st.Seq, st.Key.path())
	}
	now := s.now()
	c := old.clone()
	c.history = c.history[:len(c.history)-1]
	if st.Before == nil {
		delete(c.over, st.Key)
	} else {
		c.over[st.Key] = st.Before
	}
	ch := Change{Key: st.Key, Action: ActionRollback, Before: old.effective(st.Key), After: c.effective(st.Key)}
	note := fmt.Sprintf("undoes #%d by %s at %s", st.Seq, st.Actor, st.At.UTC().Format(timeFormat))
	ch.Seq = c.record(now, actor, ActionRollback, st.Key, ch.Before, ch.After, note, s.opts.AuditLimit)
	if err := s.commit(c, check, true); err != nil {
		var pe *PersistError
		if errors.As(err, &pe) {
			return Change{}, fmt.Errorf("traffic: rollback of #%d (%s): %w", st.Seq, st.Key.path(), err)
		}
		// The step cannot be served: it goes, with nothing else changed.
		// Its change is folded into the key's previous step, which now
		// leads to the current value: rolling that one back restores
		// what was before both.
		d := old.clone()
		d.history = d.history[:len(d.history)-1]
		for i := len(d.history) - 1; i >= 0; i-- {
			if d.history[i].Key == st.Key {
				prev := d.history[i]
				prev.After = st.After
				d.history[i] = prev
				break
			}
		}
		cur := old.effective(st.Key)
		d.record(now, actor, ActionDiscard, st.Key, cur, cur, fmt.Sprintf("#%d by %s could not be restored: %v", st.Seq, st.Actor, err), s.opts.AuditLimit)
		if perr := s.commit(d, nil, true); perr != nil {
			return Change{}, fmt.Errorf("traffic: rollback of #%d (%s): %w", st.Seq, st.Key.path(), perr)
		}
		return Change{}, &DiscardedError{Seq: st.Seq, Key: st.Key, Reason: err}
	}
	return ch, nil
}

// commit checks the candidate, persists it when persist is set and a state
// file is configured, and only then makes it the state.
func (s *Store) commit(c state, check Check, persist bool) error {
	if check != nil {
		if err := check(c.view(s.version + 1)); err != nil {
			return fmt.Errorf("rejected: %w", err)
		}
	}
	switch {
	case !persist:
	case s.opts.Share != nil:
		b, err := encode(&c)
		if err == nil {
			err = s.opts.Share(b)
		}
		if err != nil {
			return &PersistError{Err: err}
		}
	case s.opts.StatePath != "":
		if err := save(s.opts.StatePath, &c); err != nil {
			return &PersistError{Err: err}
		}
	}
	s.st = c
	s.version++
	return nil
}

// Replace takes the run-time overrides, history and audit log from a
// shared copy of the state (what Share wrote, perhaps by another
// gateway), keeping this store's file values. An override or step made
// against a file value other than this store's is not in effect here (the
// gateway that wrote it runs another config), but is kept and shared back
// unchanged with this store's next change, so that no gateway loses what
// another made; a SetFile to that file value puts it in effect. The copy is refused, and nothing changes, when it is not a valid
// state or check rejects it.
func (s *Store) Replace(shared []byte, check Check) error {
	st, err := parseState(shared)
	if err != nil {
		return fmt.Errorf("traffic: shared state: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *st
	c.file = s.st.file
	c.foreign, c.foreignHistory = nil, nil
	c.partition()
	if n := len(c.history) - s.opts.HistoryLimit; n > 0 {
		c.history = c.history[n:]
	}
	if n := len(c.audit) - s.opts.AuditLimit; n > 0 {
		c.audit = c.audit[n:]
	}
	return s.commit(c, check, false)
}

func (s *Store) now() time.Time {
	// Milliseconds, as the audit log writes them, so that what is read back
	// from the state file equals what was kept.
	return s.opts.Now().UTC().Truncate(time.Millisecond)
}

func (st *state) clone() state {
	c := *st
	c.file = maps.Clone(st.file)
	c.over = maps.Clone(st.over)
	c.history = slices.Clone(st.history)
	c.foreign = maps.Clone(st.foreign)
	c.foreignHistory = slices.Clone(st.foreignHistory)
	c.audit = slices.Clone(st.audit)
	return c
}

// partition moves the overrides and steps made against other file values
// than st's from over and history to foreign and foreignHistory, and back
// those foreign ones made against st's. A key has one or the other.
func (st *state) partition() {
	for k, o := range st.foreign {
		if _, local := st.over[k]; !local && bytes.Equal(o.File, st.file[k].value) {
			st.over[k] = o
			delete(st.foreign, k)
		}
	}
	st.history = append(st.history, st.foreignHistory...)
	st.foreignHistory = nil
	slices.SortStableFunc(st.history, func(a, b step) int { return cmp.Compare(a.Seq, b.Seq) })
	for k, o := range st.over {
		if !bytes.Equal(o.File, st.file[k].value) {
			if st.foreign == nil {
				st.foreign = map[Key]*override{}
			}
			st.foreign[k] = o
			delete(st.over, k)
		}
	}
	st.history = slices.DeleteFunc(st.history, func(s step) bool {
		if bytes.Equal(s.File, st.file[s.Key].value) {
			return false
		}
		if _, gone := st.foreign[s.Key]; gone || st.over[s.Key] == nil {
			st.foreignHistory = append(st.foreignHistory, s)
		}
		return true
	})
}

// forget drops what is foreign of k: a change made here replaces it.
func (st *state) forget(k Key) {
	delete(st.foreign, k)
	st.foreignHistory = slices.DeleteFunc(st.foreignHistory, func(s step) bool { return s.Key == k })
}

// effective returns the value in force for k, nil when absent.
func (st *state) effective(k Key) json.RawMessage {
	if o, ok := st.over[k]; ok {
		return o.Value
	}
	return st.file[k].value
}

// record appends an audit entry and returns its Seq.
func (st *state) record(now time.Time, actor, action string, k Key, before, after json.RawMessage, note string, limit int) uint64 {
	st.seq++
	st.audit = append(st.audit, AuditEntry{Time: now, Seq: st.seq, Actor: actor, Action: action, Key: k, Before: before, After: after, Note: note})
	if n := len(st.audit) - limit; n > 0 {
		st.audit = slices.Delete(st.audit, 0, n)
	}
	return st.seq
}

func (st *state) view(version uint64) View {
	keys := unionKeys(*st)
	v := View{Version: version, Entries: make([]Entry, 0, len(keys))}
	for _, k := range keys {
		f := st.file[k]
		e := Entry{Key: k, Value: f.value, Source: FromFile, File: f.value, By: f.by, At: f.at}
		if o, ok := st.over[k]; ok {
			e.Value, e.Source, e.By, e.At, e.Seq = o.Value, FromRuntime, o.By, o.At, o.Seq
		}
		v.Entries = append(v.Entries, e)
	}
	return v
}

// unionKeys returns the keys of the states' files and overrides, sorted.
func unionKeys(sts ...state) []Key {
	set := map[Key]struct{}{}
	for _, st := range sts {
		for k := range st.file {
			set[k] = struct{}{}
		}
		for k := range st.over {
			set[k] = struct{}{}
		}
	}
	return slices.SortedFunc(maps.Keys(set), compareKeys)
}

func compareKeys(a, b Key) int {
	if c := strings.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

func sameOverride(a, b *override) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Seq == b.Seq && bytes.Equal(a.Value, b.Value) && bytes.Equal(a.File, b.File)
}

// canonical returns raw as canonical JSON (compact, object keys sorted,
// numbers as written), so that values that mean the same compare equal
// byte for byte; nil for empty input or JSON null (absent).
func canonical(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the value")
	}
	if v == nil {
		return nil, nil
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func nullToNil(b json.RawMessage) json.RawMessage {
	if string(b) == "null" {
		return nil
	}
	return b
}

func clone(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	return bytes.Clone(b)
}
