package bench

import (
	"bytes"
	"container/list"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/host/cache"
)

// This file holds the cache hit-ratio study: a Zipf trace replayed through
// host/cache's store (ristretto's TinyLFU admission and sampled-LFU
// eviction, as a route's Cache runs them) and through an exact LRU of the
// same byte budget, the baseline most caches (nginx, Varnish) implement.

// HitRatioOptions configures CacheHitRatio. Zero fields take the defaults
// noted.
type HitRatioOptions struct {
	// Objects is the number of distinct objects (default 100,000).
	Objects int `json:"objects"`
	// Requests is the length of each trace (default 1,000,000).
	Requests int `json:"requests"`
	// Skews are the Zipf exponents, one trace each; each must be > 1
	// (default 1.01 and 1.2).
	Skews []float64 `json:"skews"`
	// Budgets are the byte budgets as fractions of the working set, the
	// bytes of the distinct objects a trace requests (default 1%, 5%,
	// 10%).
	Budgets []float64 `json:"budgets"`
	// MinSize and MaxSize bound the object sizes, drawn log-normally
	// around MedianSize (defaults 1 KiB, 64 KiB, 8 KiB).
	MinSize    int `json:"min_size"`
	MaxSize    int `json:"max_size"`
	MedianSize int `json:"median_size"`
	// Seed makes the traces reproducible (default 1).
	Seed uint64 `json:"seed"`
}

func (o HitRatioOptions) withDefaults() HitRatioOptions {
	if o.Objects <= 0 {
		o.Objects = 100_000
	}
	if o.Requests <= 0 {
		o.Requests = 1_000_000
	}
	if len(o.Skews) == 0 {
		o.Skews = []float64{1.01, 1.2}
	}
	if len(o.Budgets) == 0 {
		o.Budgets = []float64{0.01, 0.05, 0.10}
	}
	if o.MinSize <= 0 {
		o.MinSize = 1 << 10
	}
	if o.MaxSize < o.MinSize {
		o.MaxSize = max(64<<10, o.MinSize)
	}
	if o.MedianSize <= 0 {
		o.MedianSize = min(max(8<<10, o.MinSize), o.MaxSize)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// HitRatioRow is one replay: a trace, a budget and a policy.
type HitRatioRow struct {
	Skew float64 `json:"skew"`
	// Budget is the fraction of the working set; BudgetBytes the bytes.
	Budget      float64 `json:"budget"`
	BudgetBytes int64   `json:"budget_bytes"`
	// Policy is "ristretto" (host/cache's store) or "lru" (exact LRU).
	Policy string `json:"policy"`
	// HitRatio is hits / requests; ByteHitRatio is body bytes served
	// from the cache / body bytes requested.
	HitRatio     Float `json:"hit_ratio"`
	ByteHitRatio Float `json:"byte_hit_ratio"`
	// Elapsed is the replay's wall time.
	Elapsed string `json:"elapsed"`
}

// HitRatioTrace describes one generated trace.
type HitRatioTrace struct {
	Skew float64 `json:"skew"`
	// Distinct is the number of objects the trace requests at least once;
	// WorkingSet their bytes.
	Distinct   int   `json:"distinct"`
	WorkingSet int64 `json:"working_set_bytes"`
	// OneHitWonders is the number of objects requested exactly once.
	OneHitWonders int `json:"one_hit_wonders"`
}

// HitRatioReport is the outcome of CacheHitRatio.
type HitRatioReport struct {
	Options HitRatioOptions `json:"options"`
	Traces  []HitRatioTrace `json:"traces"`
	// Rows has, per trace and budget, the ristretto row then the LRU row.
	Rows    []HitRatioRow `json:"rows"`
	Elapsed string        `json:"elapsed"`
	// Err is set when a replay could not run (an invalid option).
	Err string `json:"error,omitempty"`
}

// CacheHitRatio generates one Zipf trace per skew over objects of varied
// sizes and replays each through host/cache's store and through an exact
// LRU, at every budget, reporting request and byte hit ratios. Both
// policies charge an object the same bytes: the cost the store charges (its
// body, key and per-entry overhead).
func CacheHitRatio(o HitRatioOptions) HitRatioReport {
	o = o.withDefaults()
	start := time.Now()
	rep := HitRatioReport{Options: o}
	for _, s := range o.Skews {
		if !(s > 1) {
			rep.Err = fmt.Sprintf("skew %v: must be > 1", s)
			return rep
		}
	}
	sizes := objectSizes(o)
	keys := make([][]byte, o.Objects)
	for i := range keys {
		keys[i] = strconv.AppendInt([]byte("example.com/objects/"), int64(i), 10)
	}
	for ti, s := range o.Skews {
		trace := zipfTrace(o, s, uint64(ti))
		tr := HitRatioTrace{Skew: s}
		counts := make([]int32, o.Objects)
		for _, id := range trace {
			if counts[id] == 0 {
				tr.Distinct++
				tr.WorkingSet += int64(sizes[id])
			}
			counts[id]++
		}
		for _, n := range counts {
			if n == 1 {
				tr.OneHitWonders++
			}
		}
		rep.Traces = append(rep.Traces, tr)
		for _, b := range o.Budgets {
			budget := max(int64(b*float64(tr.WorkingSet)), 1)
			costs := make([]int64, o.Objects)
			row, err := replayStore(trace, keys, sizes, costs, budget)
			if err != nil {
				rep.Err = err.Error()
				return rep
			}
			row.Skew, row.Budget = s, b
			rep.Rows = append(rep.Rows, row)
			lru := replayLRU(trace, sizes, costs, budget)
			lru.Skew, lru.Budget = s, b
			rep.Rows = append(rep.Rows, lru)
		}
	}
	rep.Elapsed = time.Since(start).Round(time.Millisecond).String()
	return rep
}

// objectSizes draws each object's body size: log-normal around the median
// (sigma 1: most objects within a factor of e of it), clamped.
func objectSizes(o HitRatioOptions) []int {
	r := rand.New(rand.NewPCG(o.Seed, 0x5123))
	mu := math.Log(float64(o.MedianSize))
	sizes := make([]int, o.Objects)
	for i := range sizes {
		s := int(math.Exp(mu + r.NormFloat64()))
		sizes[i] = min(max(s, o.MinSize), o.MaxSize)
	}
	return sizes
}

// zipfTrace draws o.Requests object ids with Zipf exponent s; id 0 is the
// most popular. Sizes are drawn independently of popularity.
func zipfTrace(o HitRatioOptions, s float64, stream uint64) []uint32 {
	r := rand.New(rand.NewPCG(o.Seed, stream+1))
	z := rand.NewZipf(r, s, 1, uint64(o.Objects-1))
	trace := make([]uint32, o.Requests)
	for i := range trace {
		trace[i] = uint32(z.Uint64())
	}
	return trace
}

// replayStore replays trace through a cache.Store of budget bytes: a hit
// when Get finds the key, otherwise a fill with Add. It records in costs
// what the store charges each object.
func replayStore(trace []uint32, keys [][]byte, sizes []int, costs []int64, budget int64) (HitRatioRow, error) {
	st, err := cache.NewStore(budget)
	if err != nil {
		return HitRatioRow{}, fmt.Errorf("bench cachehit: %w", err)
	}
	defer st.Close()
	start := time.Now()
	var hits, hitBytes, bytes int64
	for _, id := range trace {
		bytes += int64(sizes[id])
		if st.Get(keys[id]) {
			hits++
			hitBytes += int64(sizes[id])
			continue
		}
		costs[id], _ = st.Add(keys[id], sizes[id])
	}
	return HitRatioRow{
		BudgetBytes: budget, Policy: "ristretto",
		HitRatio:     Float(float64(hits) / float64(max(len(trace), 1))),
		ByteHitRatio: Float(float64(hitBytes) / float64(max(bytes, 1))),
		Elapsed:      time.Since(start).Round(time.Millisecond).String(),
	}, nil
}

// lruCache is an exact LRU with a byte budget.
type lruCache struct {
	budget, used int64
	order        *list.List // front: most recent; values are object ids
	items        map[uint32]*list.Element
	cost         []int64
}

func newLRU(budget int64, cost []int64) *lruCache {
	return &lruCache{budget: budget, order: list.New(), items: map[uint32]*list.Element{}, cost: cost}
}

// get reports a hit and makes id the most recent.
func (l *lruCache) get(id uint32) bool {
	if e, ok := l.items[id]; ok {
		l.order.MoveToFront(e)
		return true
	}
	return false
}

// add stores id, evicting the least recent objects until it fits; an
// object larger than the budget is not stored.
func (l *lruCache) add(id uint32) {
	c := l.cost[id]
	if c > l.budget {
		return
	}
	for l.used+c > l.budget {
		e := l.order.Back()
		old := e.Value.(uint32)
		l.order.Remove(e)
		delete(l.items, old)
		l.used -= l.cost[old]
	}
	l.items[id] = l.order.PushFront(id)
	l.used += c
}

func replayLRU(trace []uint32, sizes []int, costs []int64, budget int64) HitRatioRow {
	start := time.Now()
	l := newLRU(budget, costs)
	var hits, hitBytes, bytes int64
	for _, id := range trace {
		bytes += int64(sizes[id])
		if l.get(id) {
			hits++
			hitBytes += int64(sizes[id])
			continue
		}
		l.add(id)
	}
	return HitRatioRow{
		BudgetBytes: budget, Policy: "lru",
		HitRatio:     Float(float64(hits) / float64(max(len(trace), 1))),
		ByteHitRatio: Float(float64(hitBytes) / float64(max(bytes, 1))),
		Elapsed:      time.Since(start).Round(time.Millisecond).String(),
	}
}

// Row returns the row for skew, budget and policy, or false.
func (r *HitRatioReport) Row(skew, budget float64, policy string) (HitRatioRow, bool) {
	for _, x := range r.Rows {
		if x.Skew == skew && x.Budget == budget && x.Policy == policy {
			return x, true
		}
	}
	return HitRatioRow{}, false
}

// Table renders the report: one line per trace and budget, ristretto and
// LRU side by side with their ratio.
func (r *HitRatioReport) Table() *Table {
	t := &Table{
		Columns: []string{"skew", "budget", "bytes", "ristretto hits", "LRU hits", "ratio", "ristretto byte hits", "LRU byte hits"},
		Align:   []Align{AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight},
	}
	for _, x := range r.Rows {
		if x.Policy != "ristretto" {
			continue
		}
		lru, _ := r.Row(x.Skew, x.Budget, "lru")
		t.Rows = append(t.Rows, []string{
			strconv.FormatFloat(x.Skew, 'g', -1, 64),
			strconv.FormatFloat(x.Budget*100, 'g', -1, 64) + "%",
			formatBytes(float64(x.BudgetBytes)),
			formatPercent(float64(x.HitRatio)),
			formatPercent(float64(lru.HitRatio)),
			FormatRatio(float64(x.HitRatio) / float64(lru.HitRatio)),
			formatPercent(float64(x.ByteHitRatio)),
			formatPercent(float64(lru.ByteHitRatio)),
		})
	}
	return t
}

// Chart renders request and byte hit ratios as bars, one group per trace,
// budget and policy.
func (r *HitRatioReport) Chart() *BarChart {
	c := &BarChart{Title: "Cache hit ratio, Zipf traces: host/cache (ristretto) vs exact LRU"}
	req := Series{Name: "request hit ratio", Format: formatPercent}
	byt := Series{Name: "byte hit ratio", Format: formatPercent}
	for _, x := range r.Rows {
		c.Groups = append(c.Groups, fmt.Sprintf("s=%g %g%% %s", x.Skew, x.Budget*100, x.Policy))
		req.Values = append(req.Values, float64(x.HitRatio))
		byt.Values = append(byt.Values, float64(x.ByteHitRatio))
	}
	c.Series = []Series{req, byt}
	return c
}

// WriteText writes the traces and the table for a terminal.
func (r *HitRatioReport) WriteText(w io.Writer) error {
	o := r.Options
	if _, err := fmt.Fprintf(w, "cache hit ratio: %d objects (%s..%s, median %s), %d requests per trace, seed %d\n",
		o.Objects, formatBytes(float64(o.MinSize)), formatBytes(float64(o.MaxSize)), formatBytes(float64(o.MedianSize)),
		o.Requests, o.Seed); err != nil {
		return err
	}
	for _, tr := range r.Traces {
		if _, err := fmt.Fprintf(w, "  skew %g: %d distinct objects, working set %s, %d requested once\n",
			tr.Skew, tr.Distinct, formatBytes(float64(tr.WorkingSet)), tr.OneHitWonders); err != nil {
			return err
		}
	}
	if r.Err != "" {
		_, err := fmt.Fprintf(w, "error: %s\n", r.Err)
		return err
	}
	return r.Table().WriteText(w)
}

func formatPercent(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
}

// RegisterFlags binds o's tunables to flags on fs.
func (o *HitRatioOptions) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.Objects, "objects", 100_000, "distinct objects")
	fs.IntVar(&o.Requests, "requests", 1_000_000, "requests per trace")
	fs.Uint64Var(&o.Seed, "seed", 1, "trace seed")
}

// Command returns the command line that reproduces a study with o.
func (o HitRatioOptions) Command(outDir string) string {
	o = o.withDefaults()
	return fmt.Sprintf("wasmgate bench cache -objects %d -requests %d -seed %d -out %s", o.Objects, o.Requests, o.Seed, outDir)
}

// RunCacheHitRatio runs the study, prints its table to out and writes
// cache-hitratio-<UTC time>.json (copied to cache-hitratio-latest.json),
// cache-hitratio-latest.md and cache-hitratio-latest.svg to outDir.
func RunCacheHitRatio(o HitRatioOptions, outDir string, out io.Writer) (*HitRatioReport, error) {
	if outDir == "" {
		outDir = defaultOutDir
	}
	started := time.Now().UTC()
	rep := CacheHitRatio(o)
	if rep.Err != "" {
		return &rep, fmt.Errorf("bench cache: %s", rep.Err)
	}
	if err := rep.WriteText(out); err != nil {
		return &rep, fmt.Errorf("bench cache: %w", err)
	}
	files := reportFiles(outDir, "cache-hitratio", started)
	var md bytes.Buffer
	fmt.Fprintf(&md, "# Cache hit ratio: host/cache (ristretto) vs an exact LRU of the same byte budget\n\n%s, %s.\n\n",
		started.Format("2006-01-02 15:04:05 UTC"), rep.Elapsed)
	_ = rep.WriteText(&md)
	fmt.Fprintf(&md, "\n![hit ratios](cache-hitratio-latest.svg)\n\nRaw rows: [cache-hitratio-latest.json](cache-hitratio-latest.json). %s\n\nReproduce:\n\n```sh\n%s\n```\n",
		rawDataNote(filepath.Base(files[0])), o.Command(outDir))
	if err := writeReports(files, rep, md.Bytes(), rep.Chart()); err != nil {
		return &rep, fmt.Errorf("bench cache: %w", err)
	}
	fmt.Fprintf(out, "reports: %s\n", strings.Join(files, ", "))
	return &rep, nil
}
