package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCacheHitRatioTiny(t *testing.T) {
	o := HitRatioOptions{Objects: 2000, Requests: 30_000, Budgets: []float64{0.01, 0.1, 0.5, 2}, Seed: 7}
	rep := CacheHitRatio(o)
	if rep.Err != "" {
		t.Fatal(rep.Err)
	}
	if len(rep.Traces) != 2 || len(rep.Rows) != 2*4*2 {
		t.Fatalf("%d traces, %d rows", len(rep.Traces), len(rep.Rows))
	}
	for _, tr := range rep.Traces {
		if tr.Distinct <= 0 || tr.Distinct > o.Objects || tr.WorkingSet < int64(tr.Distinct)*1024 ||
			tr.WorkingSet > int64(tr.Distinct)*64<<10 || tr.OneHitWonders > tr.Distinct {
			t.Fatalf("trace %+v", tr)
		}
	}
	for _, r := range rep.Rows {
		for _, v := range []Float{r.HitRatio, r.ByteHitRatio} {
			if math.IsNaN(float64(v)) || v < 0 || v > 1 {
				t.Fatalf("row %+v: ratio out of [0,1]", r)
			}
		}
		if r.BudgetBytes <= 0 || (r.Policy != "ristretto" && r.Policy != "lru") {
			t.Fatalf("row %+v", r)
		}
	}
	for _, tr := range rep.Traces {
		prev := -1.0
		for _, b := range o.Budgets {
			lru, ok := rep.Row(tr.Skew, b, "lru")
			if !ok {
				t.Fatalf("no LRU row for %v %v", tr.Skew, b)
			}
			// An exact LRU never does worse with more room.
			if float64(lru.HitRatio) < prev {
				t.Fatalf("LRU hit ratio fell from %v to %v at budget %v", prev, lru.HitRatio, b)
			}
			prev = float64(lru.HitRatio)
		}
		// With room for everything (twice the working set, costs include
		// a small overhead), the LRU misses only first requests.
		all, _ := rep.Row(tr.Skew, 2, "lru")
		if want := 1 - float64(tr.Distinct)/float64(o.Requests); math.Abs(float64(all.HitRatio)-want) > 1e-9 {
			t.Fatalf("LRU with room for all: %v, want %v", all.HitRatio, want)
		}
		// A skewed trace hits more than its budget share even at 10%.
		if r, _ := rep.Row(tr.Skew, 0.1, "ristretto"); r.HitRatio < 0.1 {
			t.Fatalf("ristretto at 10%%: %v", r.HitRatio)
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "ristretto hits") || strings.Count(out, "\n") < 2+2+8 {
		t.Fatalf("text report:\n%s", out)
	}
	buf.Reset()
	if err := rep.Chart().WriteSVG(&buf); err != nil || !strings.Contains(buf.String(), "s=1.2 10% lru") {
		t.Fatalf("chart: %v", err)
	}
}

func TestCacheHitRatioRejectsBadSkew(t *testing.T) {
	if rep := CacheHitRatio(HitRatioOptions{Objects: 10, Requests: 10, Skews: []float64{1}}); rep.Err == "" {
		t.Fatal("skew 1 accepted")
	}
}

func TestLRU(t *testing.T) {
	costs := []int64{10, 10, 10, 25}
	l := newLRU(40, costs)
	for _, id := range []uint32{0, 1, 2} {
		l.add(id)
	}
	if !l.get(0) { // 0 becomes the most recent; 1 is now the least
		t.Fatal("0 missing")
	}
	l.add(3) // 30 + 25 > 40: evicts 1, then 2
	if l.get(1) || l.get(2) || !l.get(0) || !l.get(3) || l.used != 35 {
		t.Fatalf("LRU state: used %d", l.used)
	}
	big := newLRU(5, costs)
	big.add(0)
	if big.get(0) || big.used != 0 {
		t.Fatal("an object over the budget was stored")
	}
}

// TestCacheHitRatioStudy runs the full study (1M requests per trace) and
// prints it; set WASMGATE_CACHEHIT=1 to run it.
func TestCacheHitRatioStudy(t *testing.T) {
	if os.Getenv("WASMGATE_CACHEHIT") != "1" {
		t.Skip("set WASMGATE_CACHEHIT=1 to run the full study")
	}
	o := HitRatioOptions{}
	if n, err := strconv.Atoi(os.Getenv("WASMGATE_CACHEHIT_REQUESTS")); err == nil {
		o.Requests = n
	}
	rep := CacheHitRatio(o)
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	t.Logf("elapsed %s\n%s", rep.Elapsed, buf.String())
	for _, r := range rep.Rows {
		t.Logf("%s s=%g budget=%g: %s", r.Policy, r.Skew, r.Budget, r.Elapsed)
	}
}

// TestRunCacheHitRatioReports runs the study end to end on a tiny trace
// and checks the reports it writes are well formed (no timing asserted).
func TestRunCacheHitRatioReports(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	rep, err := RunCacheHitRatio(HitRatioOptions{Objects: 300, Requests: 3000, Skews: []float64{1.1}, Budgets: []float64{0.05}}, dir, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || !strings.Contains(out.String(), "ristretto hits") {
		t.Fatalf("rows %d, output:\n%s", len(rep.Rows), out.String())
	}
	var back HitRatioReport
	b, err := os.ReadFile(filepath.Join(dir, "cache-hitratio-latest.json"))
	if err != nil || json.Unmarshal(b, &back) != nil || len(back.Rows) != 2 {
		t.Fatalf("latest JSON: %v %s", err, b)
	}
	md, err := os.ReadFile(filepath.Join(dir, "cache-hitratio-latest.md"))
	if err != nil || !strings.Contains(string(md), "wasmgate bench cache -objects 300 -requests 3000") {
		t.Fatalf("markdown: %v\n%s", err, md)
	}
	checkLinksCommitted(t, md)
	if svg, err := os.ReadFile(filepath.Join(dir, "cache-hitratio-latest.svg")); err != nil || !bytes.HasPrefix(svg, []byte("<svg")) {
		t.Fatalf("svg: %v %.40s", err, svg)
	}
}
