package traffic

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// stateVersion is the format of the state file; a file of another version
// is refused rather than misread.
const stateVersion = 1

// stateFile is the state file:
//
//	{"version": 1, "seq": N, "items": [...], "history": [...], "audit": [...]}
//
// items are the run-time overrides, each with the file value it was made
// against; history the steps Rollback can undo, oldest first; audit the
// audit log, oldest first; seq the last audit entry's number.
type stateFile struct {
	Version int          `json:"version"`
	Seq     uint64       `json:"seq"`
	Items   []stateItem  `json:"items"`
	History []step       `json:"history"`
	Audit   []AuditEntry `json:"audit"`
}

type stateItem struct {
	Key
	override
}

// load reads a state file; (nil, nil) when there is none.
func load(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a fresh start
	}
	if err != nil {
		return nil, fmt.Errorf("traffic: state file %s: %w", path, err)
	}
	st, err := parseState(b)
	if err != nil {
		return nil, fmt.Errorf("traffic: state file %s: %w", path, err)
	}
	return st, nil
}

func parseState(b []byte) (*state, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		// Never written empty (see save): something else truncated it.
		return nil, errors.New("file is empty")
	}
	var sf stateFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&sf); err != nil {
		return nil, fmt.Errorf("not a state file: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("not a state file: data after the JSON object")
	}
	if sf.Version != stateVersion {
		return nil, fmt.Errorf("version %d, want %d", sf.Version, stateVersion)
	}

	st := &state{file: map[Key]fileValue{}, over: map[Key]*override{}, seq: sf.Seq}
	seen := func(seq uint64) { st.seq = max(st.seq, seq) }
	// Until the first SetFile tells, the file is taken to hold what the
	// overrides and history were made against.
	setFile := func(k Key, v json.RawMessage) {
		if v != nil {
			st.file[k] = fileValue{value: v}
		}
	}
	for i := range sf.Items {
		it := &sf.Items[i]
		o, err := canonicalOverride(&it.override)
		if err != nil {
			return nil, fmt.Errorf("item %d (%s): %w", i+1, it.Key.path(), err)
		}
		if err := it.Key.check(); err != nil {
			return nil, fmt.Errorf("item %d: %w", i+1, err)
		}
		if _, dup := st.over[it.Key]; dup {
			return nil, fmt.Errorf("item %d: %s appears twice", i+1, it.Key.path())
		}
		st.over[it.Key] = o
		setFile(it.Key, o.File)
		seen(o.Seq)
	}

	// Each key's steps must chain (one's After is the next one's Before),
	// share the key's file value, and end at the key's current override.
	last := map[Key]*step{}
	for i := range sf.History {
		s := &sf.History[i]
		if err := s.Key.check(); err != nil {
			return nil, fmt.Errorf("history step %d: %w", i+1, err)
		}
		var err error
		if s.File, err = canonical(s.File); err == nil {
			if s.Before != nil {
				s.Before, err = canonicalOverride(s.Before)
			}
			if err == nil && s.After != nil {
				s.After, err = canonicalOverride(s.After)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("history step #%d (%s): %w", s.Seq, s.Key.path(), err)
		}
		for _, o := range []*override{s.Before, s.After} {
			if o != nil && !bytes.Equal(o.File, s.File) {
				return nil, fmt.Errorf("history step #%d (%s): an override made against another file value", s.Seq, s.Key.path())
			}
		}
		if p := last[s.Key]; p != nil && (!sameOverride(p.After, s.Before) || !bytes.Equal(p.File, s.File)) {
			return nil, fmt.Errorf("history step #%d (%s) does not follow from step #%d", s.Seq, s.Key.path(), p.Seq)
		}
		last[s.Key] = s
		setFile(s.Key, s.File)
		seen(s.Seq)
	}
	for k, s := range last {
		if !sameOverride(st.over[k], s.After) {
			return nil, fmt.Errorf("history of %s ends at step #%d, which is not the item in force", k.path(), s.Seq)
		}
	}
	st.history = sf.History

	for i := range sf.Audit {
		if i > 0 && sf.Audit[i].Seq <= sf.Audit[i-1].Seq {
			return nil, fmt.Errorf("audit entry %d: seq %d does not follow %d", i+1, sf.Audit[i].Seq, sf.Audit[i-1].Seq)
		}
		seen(sf.Audit[i].Seq)
	}
	st.audit = sf.Audit
	return st, nil
}

func canonicalOverride(o *override) (*override, error) {
	c := *o
	var err error
	if c.Value, err = canonical(o.Value); err != nil {
		return nil, fmt.Errorf("value: %w", err)
	}
	if c.File, err = canonical(o.File); err != nil {
		return nil, fmt.Errorf("file value: %w", err)
	}
	c.At = c.At.UTC()
	return &c, nil
}

// encode writes a state in the state file's format.
// A shared state's foreign overrides and steps are written with the
// others (a key has one kind or the other), history in Seq order.
func encode(st *state) ([]byte, error) {
	sf := stateFile{Version: stateVersion, Seq: st.seq, Items: []stateItem{}, History: st.history, Audit: st.audit}
	items := maps.Clone(st.over)
	if items == nil {
		items = map[Key]*override{}
	}
	maps.Copy(items, st.foreign)
	for _, k := range slices.SortedFunc(maps.Keys(items), compareKeys) {
		sf.Items = append(sf.Items, stateItem{Key: k, override: *items[k]})
	}
	if len(st.foreignHistory) > 0 {
		sf.History = slices.SortedStableFunc(slices.Values(slices.Concat(st.history, st.foreignHistory)),
			func(a, b step) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	if sf.History == nil {
		sf.History = []step{}
	}
	if sf.Audit == nil {
		sf.Audit = []AuditEntry{}
	}
	b, err := json.MarshalIndent(&sf, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// save writes the state atomically: a temporary file in the same directory,
// written, synced and renamed over path, so that a crash leaves the old file
// or the new one, never a mix. Mode 0600: the audit log names operators.
func save(path string, st *state) error {
	b, err := encode(st)
	if err != nil {
		return fmt.Errorf("traffic: state file %s: encode: %w", path, err)
	}

	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("traffic: state file %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(what string, err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("traffic: state file %s: %s: %w", path, what, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail("chmod", err)
	}
	if _, err := f.Write(b); err != nil {
		return fail("write", err)
	}
	if err := f.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("traffic: state file %s: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("traffic: state file %s: rename: %w", path, err)
	}
	// Make the rename durable. The new file is in place already, so a
	// failure here must not report the change as not made.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
