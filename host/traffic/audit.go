package traffic

import (
	"encoding/json"
	"fmt"
	"time"
)

// The actions of audit entries and changes.
const (
	// ActionSet is a run-time change (Store.Set).
	ActionSet = "set"
	// ActionRollback undoes a run-time change (Store.Rollback).
	ActionRollback = "rollback"
	// ActionDiscard is a rollback step that could not be restored, dropped
	// from the history (Store.Rollback).
	ActionDiscard = "discard"
	// ActionDrop is a run-time override ended by an edit of the file's
	// value for its key (Store.SetFile).
	ActionDrop = "drop"
	// ActionFile is a change of the file's value on a reload, for a key
	// with no override (Store.SetFile).
	ActionFile = "file"
)

// timeFormat is RFC 3339 with milliseconds, always UTC.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// AuditEntry records one change of the effective traffic state.
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Seq numbers entries from 1, without gaps, across restarts.
	Seq    uint64 `json:"seq"`
	Actor  string `json:"actor"`
	Action string `json:"action"`
	Key
	// Before and After are the effective values; null when absent.
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Note   string          `json:"note,omitempty"`
}

// MarshalJSON writes Time as RFC 3339 with milliseconds.
func (e AuditEntry) MarshalJSON() ([]byte, error) {
	type plain AuditEntry
	return json.Marshal(struct {
		Time string `json:"time"` // shallower, so it hides plain.Time
		plain
	}{e.Time.UTC().Format(timeFormat), plain(e)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *AuditEntry) UnmarshalJSON(b []byte) error {
	type plain AuditEntry
	var v struct {
		Time string `json:"time"`
		plain
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, v.Time)
	if err != nil {
		return fmt.Errorf("audit entry %d: time: %w", v.Seq, err)
	}
	*e = AuditEntry(v.plain)
	e.Time = t.UTC()
	e.Before, e.After = nullToNil(e.Before), nullToNil(e.After)
	return nil
}

// Audit returns up to limit entries, newest first; limit <= 0 means all
// that are kept (Options.AuditLimit).
func (s *Store) Audit(limit int) []AuditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.audit
	if limit <= 0 || limit > len(a) {
		limit = len(a)
	}
	out := make([]AuditEntry, limit)
	for i := range out {
		e := a[len(a)-1-i]
		e.Before, e.After = clone(e.Before), clone(e.After)
		out[i] = e
	}
	return out
}
