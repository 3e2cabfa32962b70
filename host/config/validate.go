package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// validator checks a decoded config and records every problem it finds. It
// also normalizes what it checks: methods are upper-cased, hosts lower-cased.
type validator struct {
	add   func(p Pos, format string, args ...any) // records a problem
	bad   map[Pos]bool                            // decoding already reported a problem here
	elems map[*string]Pos                         // positions of string list elements
	regex map[string]compiled                     // each regular expression, compiled once
	file  string                                  // the config file: upstream TLS paths are relative to its directory
	pem   map[string]string                       // each upstream TLS file check, done once: its problem or ""
}

type compiled struct {
	re  *regexp.Regexp
	err error
}

// compile compiles a regular expression. An alias may repeat a long one
// thousands of times: compiling it once keeps validation linear.
func (v *validator) compile(expr string) (*regexp.Regexp, error) {
	c, ok := v.regex[expr]
	if !ok {
		c.re, c.err = regexp.Compile(expr)
		v.regex[expr] = c
	}
	return c.re, c.err
}

func (v *validator) errorf(p Pos, format string, args ...any) {
	if !v.bad[p] {
		v.add(p, format, args...)
	}
}

// elem returns the position of one element of a string list.
func (v *validator) elem(s *string, fallback Pos) Pos {
	if p, ok := v.elems[s]; ok {
		return p
	}
	return fallback
}

// maxWasmtimePoolSlots keeps the pool's reservation (4 GiB of address
// space per slot) well inside a 64-bit address space of 128 TiB.
const maxWasmtimePoolSlots = 10000

func (v *validator) config(c *Config) {
	v.file = c.File
	// Engines first: a wazero mode where an engine goes gets its own
	// message instead of the enum's.
	rt := &c.Runtime
	v.engine(rt.Engine, rt.At.Of("engine", rt.Pos), "plugin_runtime.engine: ")
	if n := rt.WasmtimePoolSlots; n < 0 || n > maxWasmtimePoolSlots {
		v.errorf(rt.At.Of("wasmtime_pool_slots", rt.Pos), "plugin_runtime.wasmtime_pool_slots must be between 0 and %d (each slot reserves 4 GiB of address space), got %d", maxWasmtimePoolSlots, n)
	}
	for i := range c.Plugins {
		pl := &c.Plugins[i]
		v.engine(pl.Engine, pl.At.Of("engine", pl.Pos), label("plugin", pl.Name, i)+"engine: ")
	}
	v.tags(reflect.ValueOf(c).Elem(), "config", c.Pos)
	l := &c.Listen
	v.address(l.Address, l.At.Of("address", l.Pos), "listen.address", 0)
	for i := range l.TrustedProxies {
		s := &l.TrustedProxies[i]
		if _, err := netip.ParsePrefix(*s); err != nil {
			if _, err := netip.ParseAddr(*s); err != nil {
				v.errorf(v.elem(s, l.At.Of("trusted_proxies", l.Pos)), "bad CIDR %q in trusted_proxies (want e.g. 10.0.0.0/8 or 192.0.2.1)", *s)
			}
		}
	}
	v.address(c.Admin.Address, c.Admin.At.Of("address", c.Admin.Pos), "admin.address", 0)
	if l.ProbeAddress != "" {
		v.address(l.ProbeAddress, l.At.Of("probe_address", l.Pos), "listen.probe_address", 0)
	}
	if t := l.TLS; t != nil {
		v.address(t.Address, t.At.Of("address", t.Pos), "listen.tls.address", 0)
		if t.Address != "" && t.Address == l.Address && !strings.HasSuffix(t.Address, ":0") {
			v.errorf(t.At.Of("address", t.Pos), "listen.tls.address %q is listen.address too", t.Address)
		}
	}
	if a := c.Log.AccessLog; a == "" || strings.ContainsAny(a, "\x00\n\r") || strings.HasSuffix(a, "/") {
		v.errorf(c.Log.At.Of("access_log", c.Log.Pos), "bad access_log %q (want stdout, stderr, off, or a file path)", a)
	}

	sc := &scope{upstreams: newNames("upstream"), plugins: newNames("plugin"), segments: newNames("segment"), flags: newNames("flag")}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		sc.upstreams.define(v, u.Name, u.At.Of("name", u.Pos))
		v.upstream(u, label("upstream", u.Name, i))
	}
	for i := range c.Plugins {
		pl := &c.Plugins[i]
		sc.plugins.define(v, pl.Name, pl.At.Of("name", pl.Pos))
		pfx := label("plugin", pl.Name, i)
		v.limits(&pl.Limits, pfx)
		if pl.Limits.CallTimeout <= 0 {
			v.errorf(pl.Limits.At.Of("call_timeout", pl.Limits.Pos), "%scall_timeout must be > 0", pfx)
		}
		if pl.Pool.MaxInstances < 1 {
			v.errorf(pl.Pool.At.Of("max_instances", pl.Pool.Pos), "%spool.max_instances must be >= 1", pfx)
		}
		if pl.Pool.MinInstances > pl.Pool.MaxInstances {
			v.errorf(pl.Pool.At.Of("min_instances", pl.Pool.Pos), "%spool.min_instances %d exceeds max_instances %d", pfx, pl.Pool.MinInstances, pl.Pool.MaxInstances)
		}
		if pl.Quarantine.After < 1 {
			v.errorf(pl.Quarantine.At.Of("after", pl.Quarantine.Pos), "%squarantine.after must be >= 1", pfx)
		}
	}
	v.traffic(&c.Traffic, sc.segments, sc.flags)
	routes := newNames("route")
	for i := range c.Routes {
		r := &c.Routes[i]
		routes.define(v, r.Name, r.At.Of("name", r.Pos))
		pfx := label("route", r.Name, i)
		v.route(r, pfx, sc)
		v.routePlugins(r, pfx, sc)
		v.authorize(r, pfx)
		v.cache(r.Cache, pfx)
		v.rateLimits(r.RateLimits, c.Redis != nil, pfx)
		v.idempotency(r, c.Redis != nil, pfx)
	}
	if rd := c.Redis; rd != nil {
		v.address(rd.Address, rd.At.Of("address", rd.Pos), "redis.address", 1)
		if rd.Timeout <= 0 {
			v.errorf(rd.At.Of("timeout", rd.Pos), "redis.timeout must be > 0")
		}
		if rd.ProbeInterval <= 0 {
			v.errorf(rd.At.Of("probe_interval", rd.Pos), "redis.probe_interval must be > 0")
		}
	}
	if f := c.Fleet; f.CheckInterval < Duration(100*time.Millisecond) || f.CheckInterval > Duration(time.Hour) {
		v.errorf(f.At.Of("check_interval", f.Pos), "fleet.check_interval must be between 100ms and 1h")
	}
}

// cache checks a route's cache settings.
func (v *validator) cache(c *Cache, pfx string) {
	if c == nil {
		return
	}
	if c.MaxBytes <= 0 {
		v.errorf(c.At.Of("max_bytes", c.Pos), "%scache.max_bytes must be > 0", pfx)
	}
	if c.MaxObjectBytes <= 0 || c.MaxObjectBytes > c.MaxBytes {
		v.errorf(c.At.Of("max_object_bytes", c.Pos), "%scache.max_object_bytes must be > 0 and at most max_bytes (%d), got %d", pfx, c.MaxBytes, c.MaxObjectBytes)
	}
	for _, st := range c.Statuses {
		if st < 100 || st > 599 {
			v.errorf(c.At.Of("statuses", c.Pos), "%scache.statuses: %d is not an HTTP status", pfx, st)
		}
	}
	if !httpsyntax.IsToken(c.StatusHeader) {
		v.errorf(c.At.Of("status_header", c.Pos), "%scache.status_header %q is not a header name", pfx, c.StatusHeader)
	}
	k := &c.Key
	for i := range k.Headers {
		if h := &k.Headers[i]; !httpsyntax.IsToken(*h) {
			v.errorf(v.elem(h, k.At.Of("headers", k.Pos)), "%scache.key.headers: %q is not a header name", pfx, *h)
		}
	}
	for _, list := range []struct {
		key   string
		names []string
	}{{"query", k.Query}, {"ignore_query", k.IgnoreQuery}, {"cookies", k.Cookies}} {
		for i := range list.names {
			if n := &list.names[i]; *n == "" || strings.ContainsAny(*n, "&=;, \t") {
				v.errorf(v.elem(n, k.At.Of(list.key, k.Pos)), "%scache.key.%s: bad name %q", pfx, list.key, *n)
			}
		}
	}
	// Sets, as trying every pattern on every name would be quadratic.
	names, prefixes := map[string]bool{}, map[string]bool{}
	for _, ig := range k.IgnoreQuery {
		if p, ok := strings.CutSuffix(ig, "*"); ok {
			prefixes[p] = true
		} else {
			names[ig] = true
		}
	}
	for i := range k.Query {
		q := &k.Query[i]
		if queryIgnored(names, prefixes, *q) {
			v.errorf(v.elem(q, k.At.Of("query", k.Pos)), "%scache.key: query parameter %q is both keyed and ignored", pfx, *q)
		}
	}
}

// queryIgnored reports whether ignore_query, split into its names and the
// prefixes of its patterns ending in *, matches name.
func queryIgnored(names, prefixes map[string]bool, name string) bool {
	if names[name] {
		return true
	}
	for i := range len(name) + 1 {
		if prefixes[name[:i]] {
			return true
		}
	}
	return false
}

// rateLimits checks a route's rate limits.
func (v *validator) rateLimits(limits []RateLimit, haveRedis bool, pfx string) {
	names := map[string]Pos{}
	for i := range limits {
		l := &limits[i]
		p := l.At.Of("name", l.Pos)
		if first, dup := names[l.Name]; dup && l.Name != "" {
			v.errorf(p, "%sduplicate rate limit name %q (first at %d:%d)", pfx, l.Name, first.Line, first.Col)
		} else if !dup {
			names[l.Name] = p
		}
		if l.Name != "" && !httpsyntax.IsToken(l.Name) {
			v.errorf(p, "%srate limit name %q must be a token (letters, digits, -_.)", pfx, l.Name)
		}
		if _, written := l.At["rate"]; written && l.Rate < 1 {
			v.errorf(l.At.Of("rate", l.Pos), "%srate limit %q: rate must be >= 1, got %d", pfx, l.Name, l.Rate)
		}
		if l.Period <= 0 {
			v.errorf(l.At.Of("period", l.Pos), "%srate limit %q: period must be > 0", pfx, l.Name)
		}
		if l.Burst < 0 {
			v.errorf(l.At.Of("burst", l.Pos), "%srate limit %q: burst must be >= 0 (0: the rate), got %d", pfx, l.Name, l.Burst)
		}
		switch name, isHeader := strings.CutPrefix(l.Key, "header:"); {
		case isHeader && !httpsyntax.IsToken(name):
			v.errorf(l.At.Of("key", l.Pos), "%srate limit %q: key %q names no valid header", pfx, l.Name, l.Key)
		case !isHeader && !slices.Contains([]string{"client_ip", "route", "consumer", "plugin"}, l.Key):
			v.errorf(l.At.Of("key", l.Pos), "%srate limit %q: bad key %q (want client_ip, route, consumer, header:NAME or plugin)", pfx, l.Name, l.Key)
		}
		if l.Store == "redis" && !haveRedis {
			v.errorf(l.At.Of("store", l.Pos), "%srate limit %q: store redis needs a top-level redis section", pfx, l.Name)
		}
	}
}

// routePlugins checks a route's chain: known plugins, sane overrides, and
// outbound destinations that exist.
func (v *validator) routePlugins(r *Route, pfx string, sc *scope) {
	for i := range r.Plugins {
		rp := &r.Plugins[i]
		sc.plugins.check(v, rp.At.Of("name", rp.Pos), pfx, rp.Name)
		v.limits(&rp.Limits, pfx)
		if o := rp.Outbound; o != nil {
			for j := range o.Upstreams {
				name := &o.Upstreams[j]
				sc.upstreams.check(v, v.elem(name, o.At.Of("upstreams", o.Pos)), pfx+"outbound: ", *name)
			}
			for j := range o.Hosts {
				v.address(o.Hosts[j], v.elem(&o.Hosts[j], o.At.Of("hosts", o.Pos)), "outbound host", 1)
			}
		}
	}
}

// limits checks plugin sandbox limits (a zero field is "inherit" in a route).
// engine checks an engine name beyond its enum: "compiler" and
// "interpreter", which plugin_runtime.engine took before there were two
// engines, and wasmtime in a build without it.
func (v *validator) engine(name string, p Pos, pfx string) {
	switch name {
	case "compiler", "interpreter":
		v.errorf(p, "%s%q is a wazero mode: write engine: wazero (or leave it out) and plugin_runtime.wazero_mode: %s", pfx, name, name)
		v.bad[p] = true // not "bad engine" again
	case "wasmtime":
		if !wasmtimeBuilt {
			v.errorf(p, "%s%s", pfx, wasmtimeMissing)
		}
	}
}

func (v *validator) limits(l *PluginLimits, pfx string) {
	if l.MemoryPages < 0 || l.MemoryPages > 65536 {
		v.errorf(l.At.Of("memory_pages", l.Pos), "%smemory_pages must be between 1 and 65536 (64 KiB each), got %d", pfx, l.MemoryPages)
	}
}

// tags checks what the struct tags declare, everywhere below rv: required
// keys, enum values, non-negative durations and max_* limits.
// A struct the file does not write is where its parent wrote about it.
func (v *validator) tags(rv reflect.Value, noun string, parent Pos) {
	switch rv.Kind() {
	case reflect.Pointer:
		if !rv.IsNil() {
			v.tags(rv.Elem(), noun, parent)
		}
	case reflect.Slice:
		for i := range rv.Len() {
			v.tags(rv.Index(i), strings.TrimSuffix(noun, "s"), parent)
		}
	case reflect.Struct:
		pos, at := book(rv)
		if pos == (Pos{}) {
			pos = parent
		}
		for _, f := range fieldsOf(rv.Type()) {
			fv, p := rv.Field(f.index), at.Of(f.key, pos)
			if f.sf.Tag.Get("required") == "true" {
				// Decoded structs know what was written (defaults may have
				// filled an absent struct); built ones only what is zero.
				_, written := at[f.key]
				switch {
				case !written && (at != nil || fv.IsZero()):
					v.errorf(pos, "missing required key %q in %s", f.key, noun)
					continue // its own contents would only repeat the problem
				case fv.Kind() == reflect.String && fv.Len() == 0:
					v.errorf(p, "%s must not be empty", f.key)
				}
			}
			// An enum without a default is optional: empty means "inherit".
			_, hasDefault := f.sf.Tag.Lookup("default")
			if enum := f.sf.Tag.Get("enum"); enum != "" && !(fv.String() == "" && !hasDefault) && !slices.Contains(strings.Split(enum, ","), fv.String()) {
				v.errorf(p, "bad %s %q (want one of: %s)", f.key, fv.String(), strings.ReplaceAll(enum, ",", ", "))
			}
			switch {
			case fv.Type() == durationType && fv.Int() < 0:
				v.errorf(p, "%s must not be negative, got %v", f.key, Duration(fv.Int()).D())
			case strings.HasPrefix(f.key, "max_") && fv.CanInt() && fv.Int() < 0:
				v.errorf(p, "%s must be >= 0, got %d", f.key, fv.Int())
			}
			v.tags(fv, f.key, p)
		}
	}
}

// nameList lists names in a message, the first few of them: with every
// name, a message per route could be as large as the config.
func nameList(names []string) string {
	const show = 10
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}

// label names a route or upstream in messages, by position when it has no name.
func label(kind, name string, i int) string {
	if name == "" {
		return fmt.Sprintf("%s #%d: ", kind, i+1)
	}
	return fmt.Sprintf("%s %q: ", kind, name)
}

func (v *validator) upstream(u *Upstream, pfx string) {
	if len(u.Targets) == 0 && u.Discovery == nil {
		v.errorf(u.Pos, "%sneeds targets or discovery", pfx)
	}
	for i := range u.Targets {
		t := &u.Targets[i]
		v.address(t.Address, t.At.Of("address", t.Pos), pfx+"target address", 1)
		if t.Weight < 1 {
			v.errorf(t.At.Of("weight", t.Pos), "%starget weight must be >= 1, got %d", pfx, t.Weight)
		}
	}
	if u.Balance == "consistent_hash" && u.Hash == nil {
		v.errorf(u.At.Of("balance", u.Pos), "%sbalance consistent_hash needs hash (source: header, cookie or client_ip)", pfx)
	}
	if h := u.Hash; h != nil && (h.Source == "header" || h.Source == "cookie") && h.Name == "" {
		v.errorf(h.Pos, "%shash source %s needs a name", pfx, h.Source)
	}
	if d := u.Discovery; d != nil && d.DNS.Name != "" {
		dn := &d.DNS
		if !isHostname(dn.Name) {
			v.errorf(dn.At.Of("name", dn.Pos), "%sbad DNS name %q", pfx, dn.Name)
		}
		if dn.Type == "SRV" && dn.Port != 0 {
			v.errorf(dn.At.Of("port", dn.Pos), "%sSRV discovery takes ports from the records; remove port", pfx)
		} else if (dn.Type == "A" || dn.Type == "AAAA") && (dn.Port < 1 || dn.Port > 65535) {
			v.errorf(dn.At.Of("port", dn.Pos), "%s%s discovery needs a port between 1 and 65535, got %d", pfx, dn.Type, dn.Port)
		}
		if dn.Resolver != "" {
			v.address(dn.Resolver, dn.At.Of("resolver", dn.Pos), pfx+"resolver", 1)
		}
		if dn.Interval == 0 {
			v.errorf(dn.At.Of("interval", dn.Pos), "%sdiscovery interval must be > 0", pfx)
		}
	}
	if h := u.HealthCheck; h != nil {
		if !strings.HasPrefix(h.Path, "/") {
			v.errorf(h.At.Of("path", h.Pos), "%shealth_check path %q must start with \"/\"", pfx, h.Path)
		}
		if h.Interval == 0 {
			v.errorf(h.At.Of("interval", h.Pos), "%shealth_check interval must be > 0", pfx)
		}
		if h.UnhealthyThreshold < 1 {
			v.errorf(h.At.Of("unhealthy_threshold", h.Pos), "%sunhealthy_threshold must be >= 1, got %d", pfx, h.UnhealthyThreshold)
		}
		if h.HealthyThreshold < 1 {
			v.errorf(h.At.Of("healthy_threshold", h.Pos), "%shealthy_threshold must be >= 1, got %d", pfx, h.HealthyThreshold)
		}
	}
	if cb := u.CircuitBreaker; cb != nil && cb.ConsecutiveFailures < 1 {
		v.errorf(cb.At.Of("consecutive_failures", cb.Pos), "%sconsecutive_failures must be >= 1, got %d", pfx, cb.ConsecutiveFailures)
	}
	v.retries(u.Retries, pfx)
	v.upstreamTLS(u.TLS, pfx)
}

func (v *validator) retries(r *Retries, pfx string) {
	if r == nil {
		return
	}
	if r.Attempts < 0 {
		v.errorf(r.At.Of("attempts", r.Pos), "%sretries attempts must be >= 0, got %d", pfx, r.Attempts)
	}
	for i := range r.On {
		s := &r.On[i]
		switch *s {
		case "connect_error", "timeout", "reset":
		default:
			if len(*s) != 3 || (*s)[0] != '5' || strings.Trim(*s, "0123456789") != "" {
				v.errorf(v.elem(s, r.At.Of("on", r.Pos)), "%sunknown retry condition %q (want connect_error, timeout, reset, or a 5xx status such as 503)", pfx, *s)
			}
		}
	}
}

func (v *validator) route(r *Route, pfx string, sc *scope) {
	v.routeTraffic(r, pfx, sc)
	params := v.match(&r.Match, pfx)
	if rw := r.Rewrite; rw != nil {
		v.rewrite(rw, &r.Match, params, pfx)
	}
	v.retries(r.Retries, pfx)
}

// match checks a route's match and returns the params it defines.
func (v *validator) match(m *Match, pfx string) []string {
	var forms []string
	for _, f := range []struct{ key, val string }{{"path", m.Path}, {"path_prefix", m.PathPrefix}, {"path_regex", m.PathRegex}} {
		if f.val != "" {
			forms = append(forms, f.key)
		}
	}
	if len(forms) > 1 {
		v.errorf(m.At.Of(forms[1], m.Pos), "%smatch may use only one of path, path_prefix, path_regex (got %s)", pfx, strings.Join(forms, " and "))
	}
	var params []string
	if m.Path != "" {
		p := m.At.Of("path", m.Pos)
		if !strings.HasPrefix(m.Path, "/") {
			v.errorf(p, "%spath %q must start with \"/\"", pfx, m.Path)
		} else if names, err := templateParams(m.Path, false); err != nil {
			v.errorf(p, "%sbad path %q: %v", pfx, m.Path, err)
		} else {
			params = names
		}
	}
	if m.PathPrefix != "" {
		p := m.At.Of("path_prefix", m.Pos)
		if !strings.HasPrefix(m.PathPrefix, "/") {
			v.errorf(p, "%spath_prefix %q must start with \"/\"", pfx, m.PathPrefix)
		} else if strings.ContainsAny(m.PathPrefix, "{}") {
			v.errorf(p, "%spath_prefix %q is literal; {params} are only allowed in path", pfx, m.PathPrefix)
		}
	}
	if m.PathRegex != "" {
		if re, err := v.compile(m.PathRegex); err != nil {
			v.errorf(m.At.Of("path_regex", m.Pos), "%sbad path_regex: %v", pfx, err)
		} else {
			for _, n := range re.SubexpNames() {
				if n != "" {
					params = append(params, n)
				}
			}
		}
	}
	for i := range m.Methods {
		s := &m.Methods[i]
		if !httpsyntax.IsToken(*s) {
			v.errorf(v.elem(s, m.At.Of("methods", m.Pos)), "%sbad method %q", pfx, *s)
		}
		*s = strings.ToUpper(*s)
	}
	for i := range m.Hosts {
		s := &m.Hosts[i]
		*s = strings.ToLower(*s)
		if h, _ := strings.CutPrefix(*s, "*."); !isHostname(h) || strings.HasSuffix(h, ".") {
			v.errorf(v.elem(s, m.At.Of("hosts", m.Pos)), "%sbad host %q (want a hostname like api.example.com or a wildcard like *.example.com)", pfx, *s)
		}
	}
	for _, group := range []struct {
		kind  string
		conds []KeyCond
	}{{"header", m.Headers}, {"query", m.Query}, {"cookie", m.Cookies}} {
		for i := range group.conds {
			k := &group.conds[i]
			if k.Name != "" && group.kind != "query" && !httpsyntax.IsToken(k.Name) {
				v.errorf(k.At.Of("name", k.Pos), "%sbad %s name %q", pfx, group.kind, k.Name)
			}
			switch {
			case k.Value != "" && k.Regex != "":
				v.errorf(k.Pos, "%s%s %q: use either value or regex, not both", pfx, group.kind, k.Name)
			case k.Absent && (k.Value != "" || k.Regex != ""):
				v.errorf(k.At.Of("absent", k.Pos), "%s%s %q: absent cannot be combined with value or regex", pfx, group.kind, k.Name)
			}
			if k.Regex != "" {
				if _, err := v.compile(k.Regex); err != nil {
					v.errorf(k.At.Of("regex", k.Pos), "%s%s %q: bad regex: %v", pfx, group.kind, k.Name, err)
				}
			}
		}
	}
	return params
}

func (v *validator) rewrite(rw *Rewrite, m *Match, params []string, pfx string) {
	if rw.StripPrefix != "" {
		p := rw.At.Of("strip_prefix", rw.Pos)
		switch {
		case rw.Path != "":
			v.errorf(p, "%srewrite: use either strip_prefix or path, not both", pfx)
		case m.PathPrefix != "" && strings.HasPrefix(m.PathPrefix, rw.StripPrefix), m.Path != "" && strings.HasPrefix(m.Path, rw.StripPrefix):
		case m.PathPrefix == "" && m.Path == "":
			v.errorf(p, "%sstrip_prefix needs match.path_prefix or match.path", pfx)
		default:
			v.errorf(p, "%sstrip_prefix %q is not a prefix of the matched path %q", pfx, rw.StripPrefix, m.PathPrefix+m.Path)
		}
	}
	if rw.Path == "" {
		return
	}
	p := rw.At.Of("path", rw.Pos)
	if !strings.HasPrefix(rw.Path, "/") {
		v.errorf(p, "%srewrite path %q must start with \"/\"", pfx, rw.Path)
		return
	}
	used, err := templateParams(rw.Path, true)
	if err != nil {
		v.errorf(p, "%sbad rewrite path %q: %v", pfx, rw.Path, err)
		return
	}
	known := map[string]bool{}
	for _, name := range params {
		known[name] = true
	}
	for _, name := range used {
		if !known[name] {
			defined := "the match defines no params"
			if len(params) > 0 {
				defined = "defined: " + nameList(params)
			}
			v.errorf(p, "%srewrite path uses {%s}, which the match does not define (%s)", pfx, name, defined)
		}
	}
}

// templateParams parses a path template: literal segments and whole-segment
// {name} params, with an optional {name...} catch-all as the last segment.
// It returns the param names in order.
func templateParams(path string, allowDup bool) ([]string, error) {
	segs := strings.Split(path, "/")
	var names []string
	seen := map[string]bool{}
	for i, s := range segs {
		if !strings.ContainsAny(s, "{}") {
			continue
		}
		if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || strings.Count(s, "{") != 1 || strings.Count(s, "}") != 1 {
			return nil, fmt.Errorf("segment %q: a {param} must be a whole segment", s)
		}
		name := s[1 : len(s)-1]
		if n, ok := strings.CutSuffix(name, "..."); ok {
			if i != len(segs)-1 {
				return nil, fmt.Errorf("catch-all {%s} must be the last segment", name)
			}
			name = n
		}
		if !isIdent(name) {
			return nil, fmt.Errorf("bad param name %q (want letters, digits and _, not starting with a digit)", name)
		}
		if !allowDup && seen[name] {
			return nil, fmt.Errorf("duplicate param {%s}", name)
		}
		seen[name] = true
		names = append(names, name)
	}
	return names, nil
}

// address checks a host:port. Port 0 is allowed when minPort is 0 (a
// listener on a port the kernel picks, as tests do); the host may then be
// empty (all interfaces).
func (v *validator) address(addr string, p Pos, what string, minPort int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(p, "bad %s %q: want host:port", what, addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < minPort || n > 65535 {
		v.errorf(p, "bad %s %q: port must be a number between %d and 65535", what, addr, minPort)
	}
	if host == "" && minPort > 0 || host != "" && !isHostname(host) {
		if _, err := netip.ParseAddr(host); err != nil {
			v.errorf(p, "bad %s %q: bad host %q", what, addr, host)
		}
	}
}

// isHostname accepts DNS names: dot-separated labels of letters, digits, '-'
// and '_' (SRV names), at most 63 bytes each and 253 in all, with an optional
// trailing dot.
func isHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'z') {
				return false
			}
		}
	}
	return true
}

// upstreamTLS checks an upstream's tls block and reads its files, so that a
// missing, unreadable or wrong file is refused when the config is loaded, at
// the key that names it, rather than found at the first connection. Relative
// paths are made relative to the config file's directory (as plugin modules
// are) and written back: the proxy, which does not know the config file,
// then reads the same files, and a moved config that names other files is a
// changed upstream. host/proxy reads the files again the same way (a file
// may change between the check and the read, or later on disk).
func (v *validator) upstreamTLS(t *UpstreamTLS, pfx string) {
	if t == nil {
		return
	}
	at := func(key string) Pos { return t.At.Of(key, t.Pos) }
	for _, p := range []*string{&t.CA, &t.ClientCert, &t.ClientKey} {
		if *p != "" && !filepath.IsAbs(*p) && v.file != "" {
			*p = filepath.Join(filepath.Dir(v.file), *p)
		}
	}
	if t.ServerName != "" && !isHostname(t.ServerName) && net.ParseIP(t.ServerName) == nil {
		v.errorf(at("server_name"), "%sbad tls.server_name %q (want a host name or an IP address)", pfx, t.ServerName)
	}
	if t.CA != "" {
		if msg := v.pemCheck("certs\x00"+t.CA, func() string { return checkCertsFile(t.CA) }); msg != "" {
			v.errorf(at("ca"), "%stls.ca: %s", pfx, msg)
		}
	}
	switch {
	case t.ClientCert != "" && t.ClientKey == "":
		v.errorf(at("client_cert"), "%stls.client_cert needs tls.client_key (both or neither)", pfx)
	case t.ClientKey != "" && t.ClientCert == "":
		v.errorf(at("client_key"), "%stls.client_key needs tls.client_cert (both or neither)", pfx)
	case t.ClientCert != "":
		if msg := v.pemCheck("certs\x00"+t.ClientCert, func() string { return checkCertsFile(t.ClientCert) }); msg != "" {
			v.errorf(at("client_cert"), "%stls.client_cert: %s", pfx, msg)
		} else if msg := v.pemCheck("pair\x00"+t.ClientCert+"\x00"+t.ClientKey, func() string { return checkKeyFile(t.ClientCert, t.ClientKey) }); msg != "" {
			v.errorf(at("client_key"), "%stls.client_key: %s", pfx, msg)
		}
	}
}

// pemCheck runs a file check once per validation: YAML aliases may repeat a
// tls block thousands of times, and a CA bundle takes a while to parse.
func (v *validator) pemCheck(key string, check func() string) string {
	if msg, ok := v.pem[key]; ok {
		return msg
	}
	if v.pem == nil {
		v.pem = map[string]string{}
	}
	msg := check()
	v.pem[key] = msg
	return msg
}

// maxPEMBytes bounds an upstream TLS file; a bundle of every public root CA
// is about 200 KiB.
const maxPEMBytes = 1 << 20

// readPEMFile reads a TLS file: a regular file (never a device or a pipe,
// which could block or never end) of at most maxPEMBytes.
func readPEMFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	} else if err == nil && fi.Size() > maxPEMBytes {
		err = fmt.Errorf("larger than %d bytes", maxPEMBytes)
	}
	var data []byte
	if err == nil {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			data, err = io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
			f.Close()
			if err == nil && len(data) > maxPEMBytes {
				err = fmt.Errorf("larger than %d bytes", maxPEMBytes)
			}
		}
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return nil, fmt.Errorf("cannot read %s: %v", path, err)
	}
	return data, nil
}

// pemCertificates parses every CERTIFICATE block of a PEM file; other
// blocks are skipped (as crypto/x509 does), but at least one certificate
// must be there and each must parse.
func pemCertificates(data []byte) (int, error) {
	n := 0
	var other []string
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			other = append(other, b.Type)
			continue
		}
		n++
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return 0, fmt.Errorf("certificate #%d does not parse: %v", n, err)
		}
	}
	if n == 0 {
		if len(other) > 0 {
			return 0, fmt.Errorf("no certificate in PEM (found %s)", nameList(other))
		}
		return 0, errors.New("no certificate in PEM")
	}
	return n, nil
}

// checkCertsFile checks a PEM file of certificates (tls.ca, tls.client_cert).
func checkCertsFile(path string) string {
	data, err := readPEMFile(path)
	if err != nil {
		return err.Error()
	}
	if _, err := pemCertificates(data); err != nil {
		return path + ": " + err.Error()
	}
	return ""
}

// checkKeyFile checks that the key file holds one unencrypted private key
// that matches the first certificate of certPath.
func checkKeyFile(certPath, keyPath string) string {
	keyPEM, err := readPEMFile(keyPath)
	if err != nil {
		return err.Error()
	}
	found := false
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] == "4,ENCRYPTED" {
			return keyPath + ": the private key is encrypted (not supported: give an unencrypted key, readable by the gateway only)"
		}
		if b.Type == "PRIVATE KEY" || strings.HasSuffix(b.Type, " PRIVATE KEY") {
			found = true
		}
	}
	if !found {
		return keyPath + ": no private key in PEM"
	}
	certPEM, err := readPEMFile(certPath)
	if err != nil {
		return err.Error()
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return fmt.Sprintf("%s does not match the certificate of tls.client_cert %s", keyPath, certPath)
		}
		return keyPath + ": " + strings.TrimPrefix(err.Error(), "tls: ")
	}
	return ""
}
