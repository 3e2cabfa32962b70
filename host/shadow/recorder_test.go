package shadow

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestRecorderRing(t *testing.T) {
	r := NewRecorder()
	if rep := r.Snapshot(); rep.Recent == nil || len(rep.Recent) != 0 || rep.Counts != (Counts{}) {
		t.Fatalf("empty recorder: %+v", rep)
	}
	diffs := []Difference{{Path: "status", Kind: KindChanged, Primary: "200", Candidate: "500"}}
	for i := range 25 {
		r.Sent()
		r.Compared([]byte("GET"), fmt.Appendf(nil, "/p%d?q=1", i), 200, 500, diffs)
		r.Sent()
		r.Compared([]byte("GET"), []byte("/same"), 200, 200, nil)
	}
	diffs[0].Path = "changed by the caller"
	rep := r.Snapshot()
	if len(rep.Recent) != RecentMismatches {
		t.Fatalf("%d mismatches kept, want %d", len(rep.Recent), RecentMismatches)
	}
	for k, m := range rep.Recent {
		if want := fmt.Sprintf("/p%d?q=1", 24-k); m.Path != want {
			t.Errorf("Recent[%d].Path = %q, want %q (newest first)", k, m.Path, want)
		}
		if m.Method != "GET" || m.PrimaryStatus != 200 || m.CandidateStatus != 500 || len(m.Differences) != 1 ||
			m.Differences[0].Path != "status" || m.Time.IsZero() {
			t.Errorf("Recent[%d] = %+v", k, m)
		}
	}
	if !rep.Recent[0].Time.After(rep.Recent[RecentMismatches-1].Time) && !rep.Recent[0].Time.Equal(rep.Recent[RecentMismatches-1].Time) {
		t.Errorf("times not newest first")
	}
	// A snapshot is a copy.
	rep.Recent[0].Differences[0].Path = "x"
	if r.Snapshot().Recent[0].Differences[0].Path != "status" {
		t.Errorf("a snapshot shares the ring's differences")
	}

	r.Dropped()
	r.Skipped()
	r.Skipped()
	r.Failed(errors.New("dial tcp 127.0.0.1:1: connect: connection refused"))
	r.Failed(nil)
	want := Counts{Sent: 50, Matches: 25, Mismatches: 25, Dropped: 1, Errors: 2, Skipped: 2}
	if got := r.Counts(); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
	rep = r.Snapshot()
	if rep.Counts != want || !strings.Contains(rep.LastError, "connection refused") {
		t.Errorf("Snapshot() = %+v", rep)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"sent":50`, `"matches":25`, `"mismatches":25`, `"dropped":1`, `"errors":2`, `"skipped":2`,
		`"last_error":"dial tcp`, `"recent_mismatches":[{"time":"`, `"method":"GET","path":"/p24?q=1","primary_status":200,"candidate_status":500`,
		`"differences":[{"path":"status","kind":"changed","primary":"200","candidate":"500"}]`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s:\n%s", key, b)
		}
	}
	if b, _ := json.Marshal(NewRecorder().Snapshot()); !strings.Contains(string(b), `"recent_mismatches":[]`) {
		t.Errorf("empty report: %s", b)
	}
}

func TestRecorderBoundsTarget(t *testing.T) {
	r := NewRecorder()
	r.Compared([]byte("POST"), []byte("/"+strings.Repeat("a", 10000)), 200, 201, []Difference{{Path: "status"}})
	if p := r.Snapshot().Recent[0].Path; len(p) > maxTargetSize+len("…") || !strings.HasSuffix(p, "…") {
		t.Errorf("kept a target of %d bytes", len(p))
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r := NewRecorder()
	var wg sync.WaitGroup
	const workers, each = 8, 500
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r.Sent()
				var d []Difference
				if i%2 == 0 {
					d = []Difference{{Path: fmt.Sprint(w, i)}}
				}
				r.Compared([]byte("GET"), []byte("/"), 200, 200, d)
				if i%50 == 0 {
					_ = r.Snapshot()
				}
			}
		}()
	}
	wg.Wait()
	c := r.Counts()
	if c.Sent != workers*each || c.Matches+c.Mismatches != c.Sent || c.Mismatches != workers*each/2 {
		t.Errorf("Counts() = %+v", c)
	}
	if n := len(r.Snapshot().Recent); n != RecentMismatches {
		t.Errorf("%d kept", n)
	}
}
