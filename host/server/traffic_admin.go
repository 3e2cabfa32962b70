package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/wasmgate/wasmgate/host/metrics"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/admin"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/traffic"
)

// trafficControl makes run-time traffic changes to the running snapshot:
// splits, switches, flags, plugin canaries, rollback, and what shows them.
// It shares the Server's build lock (a change and a reload or hot-load are
// serialized) and swaps snapshots with the Server's commit.
type trafficControl struct {
	mu      *sync.Mutex               // the Server's reloadMu
	current *atomic.Pointer[snapshot] // the running snapshot
	b       *builder
	log     *slog.Logger
	metrics *metrics.Metrics
	commit  func(old, next *snapshot) // swaps a snapshot in (Server.commit)
	fleet   *fleetSync                // the fleet the state is shared with; nil on a gateway serving a config file

	watching sync.Map // "plugin@sha" of the canaries being watched
}

// endpoints are every admin endpoint of traffic management.
func (tc *trafficControl) endpoints() []admin.Endpoint {
	return slices.Concat(tc.trafficEndpoints(), tc.shadowEndpoints(), tc.canaryEndpoints())
}

// trafficEndpoints are the admin endpoints of run-time traffic management:
// splits, blue-green switches, flags, the audit log and rollback.
func (tc *trafficControl) trafficEndpoints() []admin.Endpoint {
	return []admin.Endpoint{
		{Method: "GET", Path: "/traffic", Handler: admin.JSON(func(*fasthttp.RequestCtx) (TrafficView, error) { return tc.Traffic(), nil })},
		{Method: "PUT", Path: "/routes/{name}/split", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (TrafficChange, error) {
			return tc.SetSplit(admin.Param(ctx, "name"), ctx.PostBody(), actor(ctx))
		})},
		{Method: "POST", Path: "/routes/{name}/switch", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (TrafficChange, error) {
			return tc.Switch(admin.Param(ctx, "name"), ctx.PostBody(), actor(ctx))
		})},
		{Method: "PUT", Path: "/flags/{name}", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (TrafficChange, error) {
			return tc.SetFlag(admin.Param(ctx, "name"), ctx.PostBody(), actor(ctx))
		})},
		{Method: "GET", Path: "/audit", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (AuditView, error) {
			return tc.Audit(string(ctx.QueryArgs().Peek("limit")))
		})},
		{Method: "POST", Path: "/rollback", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (TrafficChange, error) {
			return tc.Rollback(actor(ctx))
		})},
	}
}

// actor names the client of an admin call in the audit log: its address,
// and who it says it is (X-Wasmgate-Actor, for the person or tool behind
// a shared token).
func actor(ctx *fasthttp.RequestCtx) string {
	a := "admin@" + ctx.RemoteAddr().String()
	if who := ctx.Request.Header.Peek("X-Wasmgate-Actor"); len(who) > 0 && len(who) <= 128 {
		a = strconv.Quote(string(who)) + " " + a
	}
	return a
}

// TrafficChange is the answer of a run-time traffic change or rollback.
type TrafficChange struct {
	Status string          `json:"status"` // "ok", or "unchanged" when the state already was so
	Kind   string          `json:"kind"`
	Name   string          `json:"name"`
	Action string          `json:"action,omitempty"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Seq    uint64          `json:"seq,omitempty"`
}

// TrafficView is GET /traffic: every split, switch and flag with its
// effective state, where it comes from and, for a run-time change, the
// file's value it overrides (the drift); and the segments.
type TrafficView struct {
	Version  uint64          `json:"version"`
	Sticky   string          `json:"sticky,omitempty"`
	Items    []TrafficItem   `json:"items"`
	Segments []SegmentView   `json:"segments"`
	Shadows  []ShadowSummary `json:"shadows"`
}

// TrafficItem is one split, switch or flag.
type TrafficItem struct {
	Kind      string          `json:"kind"`
	Name      string          `json:"name"`
	Value     json.RawMessage `json:"value"`
	Source    string          `json:"source"` // "file" or "runtime"
	File      json.RawMessage `json:"file,omitempty"`
	ChangedBy string          `json:"changed_by,omitempty"`
	ChangedAt string          `json:"changed_at,omitempty"`
}

// SegmentView is a segment as the config defines it.
type SegmentView struct {
	Name    string   `json:"name"`
	Keys    int      `json:"keys,omitempty"` // how many user keys (not the keys themselves)
	Source  string   `json:"source,omitempty"`
	Values  []string `json:"values,omitempty"`
	Percent *int     `json:"percent,omitempty"`
}

// AuditView is GET /audit, newest first.
type AuditView struct {
	Entries []traffic.AuditEntry `json:"entries"`
}

// Traffic is the traffic state as GET /traffic shows it.
func (tc *trafficControl) Traffic() TrafficView {
	snap := tc.current.Load()
	v := tc.b.traffic.View()
	out := TrafficView{Version: v.Version, Sticky: snap.cfg.Traffic.Sticky, Items: []TrafficItem{}, Segments: []SegmentView{}, Shadows: tc.shadowSummaries(snap)}
	for _, e := range v.Entries {
		it := TrafficItem{Kind: e.Kind, Name: e.Name, Value: e.Value, Source: e.Source}
		if e.Source == traffic.FromRuntime {
			it.File, it.ChangedBy = e.File, e.By
			if !e.At.IsZero() {
				it.ChangedAt = e.At.UTC().Format("2006-01-02T15:04:05.000Z07:00")
			}
		}
		out.Items = append(out.Items, it)
	}
	for _, sg := range snap.cfg.Traffic.Segments {
		out.Segments = append(out.Segments, SegmentView{Name: sg.Name, Keys: len(sg.Keys), Source: sg.Source, Values: sg.Values, Percent: sg.Percent})
	}
	return out
}

// SetSplit replaces a route's split at run time (PUT /routes/NAME/split).
func (tc *trafficControl) SetSplit(routeName string, body []byte, by string) (TrafficChange, error) {
	rc, err := tc.route(routeName)
	if err != nil {
		return TrafficChange{}, err
	}
	if rc.Active != "" {
		return TrafficChange{}, conflict("route %q is blue-green (active %q, standby %q): switch it with POST /routes/%s/switch", rc.Name, rc.Active, rc.Standby, rc.Name)
	}
	if rc.Upstream == "" && len(rc.Split) == 0 {
		return TrafficChange{}, conflict("route %q has no upstream: its plugins answer", rc.Name)
	}
	var entries []splitEntry
	if err := decodeStrict(body, &entries); err != nil {
		return TrafficChange{}, invalid("body: want [{\"upstream\": NAME, \"weight\": 0..100} or {\"upstream\": NAME, \"segment\": NAME}, ...]: %v", err)
	}
	if len(entries) == 0 {
		return TrafficChange{}, invalid("body: the split has no entries")
	}
	return tc.change(traffic.Key{Kind: kindSplit, Name: rc.Name}, entries, by)
}

// Switch flips a blue-green route (POST /routes/NAME/switch): to standby
// without a body, or {"to": "standby" | "active" | UPSTREAM}.
func (tc *trafficControl) Switch(routeName string, body []byte, by string) (TrafficChange, error) {
	rc, err := tc.route(routeName)
	if err != nil {
		return TrafficChange{}, err
	}
	if rc.Active == "" {
		return TrafficChange{}, conflict("route %q is not blue-green (it has no active and standby)", rc.Name)
	}
	var req struct {
		To string `json:"to"`
	}
	if len(body) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			return TrafficChange{}, invalid("body: want {\"to\": \"standby\"} or {\"to\": UPSTREAM}: %v", err)
		}
	}
	var cur switchState
	_ = json.Unmarshal(tc.b.traffic.View().Value(traffic.Key{Kind: kindSwitch, Name: rc.Name}), &cur)
	other := rc.Standby
	if cur.Active == rc.Standby {
		other = rc.Active
	}
	to := other
	switch req.To {
	case "", "standby": // the side not taking traffic now
	case rc.Active, rc.Standby:
		to = req.To
	default:
		return TrafficChange{}, invalid("to %q: want standby (the idle side), %q or %q", req.To, rc.Active, rc.Standby)
	}
	return tc.change(traffic.Key{Kind: kindSwitch, Name: rc.Name}, switchState{Active: to}, by)
}

// SetFlag sets a feature flag at run time (PUT /flags/NAME).
func (tc *trafficControl) SetFlag(name string, body []byte, by string) (TrafficChange, error) {
	cfg := tc.current.Load().cfg
	known := false
	for _, f := range cfg.Traffic.Flags {
		known = known || f.Name == name
	}
	if !known {
		return TrafficChange{}, &admin.Error{Status: http.StatusNotFound, Code: "unknown_flag",
			Message: fmt.Sprintf("no flag %q: flags are declared in the config's traffic.flags", name)}
	}
	var spec traffic.FlagSpec
	if err := decodeStrict(body, &spec); err != nil {
		return TrafficChange{}, invalid("body: want {\"enabled\": true|false, \"percent\": 0..100, \"segment\": NAME}: %v", err)
	}
	if spec.Percent == nil {
		hundred := 100
		spec.Percent = &hundred
	}
	return tc.change(traffic.Key{Kind: kindFlag, Name: name}, spec, by)
}

// RollbackTraffic restores the traffic state before the last run-time
// change (POST /rollback); each call goes one step further back.
func (tc *trafficControl) Rollback(by string) (TrafficChange, error) {
	ch, err := tc.apply(func(st *traffic.Store, check traffic.Check) (traffic.Change, error) {
		return st.Rollback(by, check)
	}, nil)
	return changeAnswer(ch), err
}

// Audit is GET /audit: the newest limit entries (default 100).
func (tc *trafficControl) Audit(limit string) (AuditView, error) {
	n := 100
	if limit != "" {
		var err error
		if n, err = strconv.Atoi(limit); err != nil || n < 1 {
			return AuditView{}, invalid("limit %q: want a number >= 1", limit)
		}
	}
	entries := tc.b.traffic.Audit(n)
	if entries == nil {
		entries = []traffic.AuditEntry{}
	}
	return AuditView{Entries: entries}, nil
}

// changeTraffic sets one traffic item at run time.
func (tc *trafficControl) change(key traffic.Key, value any, by string) (TrafficChange, error) {
	raw, err := json.Marshal(value)
	if err != nil {
		return TrafficChange{}, err
	}
	ch, err := tc.apply(func(st *traffic.Store, check traffic.Check) (traffic.Change, error) {
		return st.Set(key, raw, by, check)
	}, nil)
	return changeAnswer(ch), err
}

func changeAnswer(ch traffic.Change) TrafficChange {
	status := "ok"
	if ch.Seq == 0 {
		status = "unchanged"
	}
	return TrafficChange{Status: status, Kind: ch.Kind, Name: ch.Name, Action: ch.Action, Before: ch.Before, After: ch.After, Seq: ch.Seq}
}

// trafficRoute finds a route of the running config by name.
func (tc *trafficControl) route(name string) (*config.Route, error) {
	cfg := tc.current.Load().cfg
	for i := range cfg.Routes {
		if cfg.Routes[i].Name == name {
			return &cfg.Routes[i], nil
		}
	}
	return nil, &admin.Error{Status: http.StatusNotFound, Code: "unknown_route", Message: fmt.Sprintf("no route %q", name)}
}

// decodeStrict decodes one JSON value with no unknown fields and nothing after it.
func decodeStrict(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if err := d.Decode(new(json.RawMessage)); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

func invalid(format string, args ...any) error {
	return &admin.Error{Status: fasthttp.StatusUnprocessableEntity, Code: "traffic_rejected",
		Message: "nothing changed: " + fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &admin.Error{Status: http.StatusConflict, Code: "traffic_rejected",
		Message: "nothing changed: " + fmt.Sprintf(format, args...)}
}
