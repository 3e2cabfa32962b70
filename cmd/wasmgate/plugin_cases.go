package main

// `wasmgate plugin test`: request/expectation cases, run offline through
// the same sandbox and exchange as `plugin run`.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"
)

const testUsage = `usage: wasmgate plugin test [flags] FILE.wasm CASES.yaml

Runs the cases of CASES.yaml through the plugin, offline (as plugin run
does: no gateway, the upstream a stub each case describes), prints PASS or
FAIL per case with what differed, and exits 1 when a case fails.

CASES.yaml:

  config: {header: X-Hello}        # the plugin's config for every case (any YAML)
  outbound: {hosts: ["127.0.0.1:9000"], upstreams: {idp: "http://127.0.0.1:9001"}}
  cases:
    - name: sets the header
      config: {...}                # replaces the config above for this case
      client_ip: 192.0.2.1         # default 127.0.0.1
      request:
        method: POST               # default GET
        path: /users?id=1          # default /
        headers: {X-Api-Key: k1, Accept: [a, b]}
        body: "text"               # or json: {any: yaml} (sets Content-Type)
      upstream:                    # the stub upstream's answer (default 200, no body)
        status: 200
        headers: {Content-Type: application/json}
        body: '{"id":1}'           # or json: {id: 1}
      expect:
        status: 200
        local: false               # true: the plugin answered (the upstream was not called)
        headers:                   # of the response the client gets
          X-Hello: world           #   equal (all values, joined with ", ")
          Server: ~                #   absent
          X-Id: {present: true}    #   or {absent: true}, {equal: v}, {contains: s}, {matches: regexp}
        body: exact text           # or {equal: s, contains: s or [s...], json: {subset}}
        upstream_received:         # the request the upstream got
          method: GET
          path: /users?id=1        # path and query, exactly
          headers: {X-Hello: world, Cookie: ~}
          body: {json: {name: x}}
        error: substring           # the plugin fails (a hook), with this in its message
        config_error: substring    # on_init rejects the config, with this in its reason
        log: [substring]           # each in some line the plugin logged
        consumer: alice            # what set_consumer named
        claims: {sub: alice}       # a JSON subset of set_claims

A JSON subset: every member of an expected object is in the actual one
(recursively), arrays have the same length and match element by element,
numbers compare by value.

Flags:
`

// casesFile is a CASES.yaml.
type casesFile struct {
	Config   *yamlValue `yaml:"config"`
	Outbound struct {
		Hosts     []string          `yaml:"hosts"`
		Upstreams map[string]string `yaml:"upstreams"`
	} `yaml:"outbound"`
	Cases []testCase `yaml:"cases"`
}

type testCase struct {
	Name     string        `yaml:"name"`
	Config   *yamlValue    `yaml:"config"`
	ClientIP string        `yaml:"client_ip"`
	Request  caseRequest   `yaml:"request"`
	Upstream *caseUpstream `yaml:"upstream"`
	Expect   caseExpect    `yaml:"expect"`
	line     int
}

type caseRequest struct {
	Method  string     `yaml:"method"`
	Path    string     `yaml:"path"`
	Headers fieldList  `yaml:"headers"`
	Body    *string    `yaml:"body"`
	JSON    *yamlValue `yaml:"json"`
}

type caseUpstream struct {
	Status  int        `yaml:"status"`
	Headers fieldList  `yaml:"headers"`
	Body    *string    `yaml:"body"`
	JSON    *yamlValue `yaml:"json"`
}

type caseExpect struct {
	Status           int             `yaml:"status"`
	Local            *bool           `yaml:"local"`
	Headers          headerExpects   `yaml:"headers"`
	Body             *bodyExpect     `yaml:"body"`
	UpstreamReceived *receivedExpect `yaml:"upstream_received"`
	Error            *string         `yaml:"error"`
	ConfigError      *string         `yaml:"config_error"`
	Log              []string        `yaml:"log"`
	Consumer         *string         `yaml:"consumer"`
	Claims           *yamlValue      `yaml:"claims"`
}

type receivedExpect struct {
	Method  string        `yaml:"method"`
	Path    *string       `yaml:"path"`
	Headers headerExpects `yaml:"headers"`
	Body    *bodyExpect   `yaml:"body"`
}

// yamlValue is any YAML value, kept as its node. (yaml.v3 applies
// KnownFields inside a plain yaml.Node field: this type takes the node as
// it is.)
type yamlValue struct{ node *yaml.Node }

func (v *yamlValue) UnmarshalYAML(n *yaml.Node) error {
	v.node = n
	return nil
}

// fieldList is a YAML mapping of header names to a value or a list of
// values, in order.
type fieldList []field

func (l *fieldList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: headers: want a mapping of names to values", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch v.Kind {
		case yaml.ScalarNode:
			*l = append(*l, field{k.Value, v.Value})
		case yaml.SequenceNode:
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: header %s: want a value or a list of values", item.Line, k.Value)
				}
				*l = append(*l, field{k.Value, item.Value})
			}
		default:
			return fmt.Errorf("line %d: header %s: want a value or a list of values", v.Line, k.Value)
		}
	}
	return nil
}

// headerExpect is what a header must be.
type headerExpect struct {
	name     string
	equal    *string
	values   []string // a list: exactly these values
	contains *string
	matches  *regexp.Regexp
	present  *bool
}

type headerExpects []headerExpect

func (l *headerExpects) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: headers: want a mapping of names to expectations", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		e := headerExpect{name: k.Value}
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			e.present = new(bool)
		case v.Kind == yaml.ScalarNode:
			e.equal = &v.Value
		case v.Kind == yaml.SequenceNode:
			e.values = []string{}
			for _, item := range v.Content {
				e.values = append(e.values, item.Value)
			}
		case v.Kind == yaml.MappingNode:
			var m struct {
				Equal    *string `yaml:"equal"`
				Contains *string `yaml:"contains"`
				Matches  *string `yaml:"matches"`
				Present  *bool   `yaml:"present"`
				Absent   *bool   `yaml:"absent"`
			}
			if err := decodeStrict(v, &m); err != nil {
				return fmt.Errorf("line %d: header %s: %v", v.Line, k.Value, err)
			}
			e.equal, e.contains, e.present = m.Equal, m.Contains, m.Present
			if m.Absent != nil {
				p := !*m.Absent
				e.present = &p
			}
			if m.Matches != nil {
				re, err := regexp.Compile(*m.Matches)
				if err != nil {
					return fmt.Errorf("line %d: header %s: matches: %v", v.Line, k.Value, err)
				}
				e.matches = re
			}
		default:
			return fmt.Errorf("line %d: header %s: want a value, ~ (absent), a list or {equal|contains|matches|present|absent}", v.Line, k.Value)
		}
		*l = append(*l, e)
	}
	return nil
}

// bodyExpect is what a body must be.
type bodyExpect struct {
	equal    *string
	contains []string
	json     any // a JSON subset; nil: not checked
	hasJSON  bool
}

func (b *bodyExpect) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		b.equal = &n.Value
		return nil
	case yaml.MappingNode:
	default:
		return fmt.Errorf("line %d: body: want text or {equal, contains, json}", n.Line)
	}
	var m struct {
		Equal    *string    `yaml:"equal"`
		Contains *yamlValue `yaml:"contains"`
		JSON     *yamlValue `yaml:"json"`
	}
	if err := decodeStrict(n, &m); err != nil {
		return fmt.Errorf("line %d: body: %v", n.Line, err)
	}
	b.equal = m.Equal
	if m.Contains != nil {
		c := m.Contains.node
		switch c.Kind {
		case yaml.ScalarNode:
			b.contains = []string{c.Value}
		case yaml.SequenceNode:
			for _, item := range c.Content {
				b.contains = append(b.contains, item.Value)
			}
		default:
			return fmt.Errorf("line %d: body.contains: want text or a list of texts", c.Line)
		}
	}
	if m.JSON != nil {
		v, err := yamlJSONValue(m.JSON.node)
		if err != nil {
			return fmt.Errorf("line %d: body.json: %v", m.JSON.node.Line, err)
		}
		b.json, b.hasJSON = v, true
	}
	return nil
}

// decodeStrict decodes a mapping node, refusing keys v has no field for.
func decodeStrict(n *yaml.Node, v any) error {
	out, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		// The lines are those of the node's own text: name the node's.
		return errors.New(yamlMessage(unknownLine.ReplaceAllString(yamlMessage(err), "")))
	}
	return nil
}

var (
	unknownField = regexp.MustCompile(`field (\S+) not found in type (struct \{[^\n]*\}|\S+)`)
	unknownLine  = regexp.MustCompile(`line \d+: `)
)

// fileError is a YAML error of a file, one problem a line, each as
// FILE:LINE: message.
func fileError(path string, err error) error {
	var lines []string
	for _, l := range strings.Split(yamlMessage(err), "\n") {
		l = strings.TrimSpace(l)
		if m := lineNumber.FindStringSubmatch(l); m != nil {
			l = path + ":" + m[1] + ": " + l[len(m[0]):]
		} else {
			l = path + ": " + l
		}
		lines = append(lines, l)
	}
	return errors.New(strings.Join(lines, "\n"))
}

var lineNumber = regexp.MustCompile(`^line (\d+): `)

// yamlMessage is a YAML error without the decoder's Go types: "unknown key
// "stauts"" rather than "field stauts not found in type main.caseExpect".
func yamlMessage(e any) string {
	msg := fmt.Sprint(e)
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.Replace(msg, "unmarshal errors:\n  ", "", 1)
	return unknownField.ReplaceAllString(msg, `unknown key "$1"`)
}

// yamlJSONValue turns a YAML value into the JSON value it stands for,
// decoded as JSON decodes it (numbers as json.Number).
func yamlJSONValue(n *yaml.Node) (any, error) {
	b, err := yamlJSON(n)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err = d.Decode(&v)
	return v, err
}

// yamlJSON renders a YAML value as JSON, with the gateway's rules.
func yamlJSON(n *yaml.Node) ([]byte, error) {
	text, err := yaml.Marshal(n)
	if err != nil {
		return nil, err
	}
	return pluginConfigJSON(text)
}

// loadCases reads a CASES.yaml.
func loadCases(path string) (*casesFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fileError(path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f casesFile
	if err := dec.Decode(&f); err != nil {
		return nil, fileError(path, err)
	}
	if len(f.Cases) == 0 {
		return nil, fmt.Errorf("%s: no cases (want a list under cases:)", path)
	}
	// Line numbers of the cases, for messages.
	if doc := root.Content; len(doc) == 1 && doc[0].Kind == yaml.MappingNode {
		for i := 0; i+1 < len(doc[0].Content); i += 2 {
			if doc[0].Content[i].Value == "cases" && doc[0].Content[i+1].Kind == yaml.SequenceNode {
				for j, c := range doc[0].Content[i+1].Content {
					if j < len(f.Cases) {
						f.Cases[j].line = c.Line
					}
				}
			}
		}
	}
	seen := map[string]bool{}
	for i := range f.Cases {
		c := &f.Cases[i]
		if c.Name == "" {
			c.Name = "case " + strconv.Itoa(i+1)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("%s:%d: two cases named %q", path, c.line, c.Name)
		}
		seen[c.Name] = true
		if c.Request.Body != nil && c.Request.JSON != nil {
			return nil, fmt.Errorf("%s:%d: request: body and json both given", path, c.line)
		}
		if u := c.Upstream; u != nil && u.Body != nil && u.JSON != nil {
			return nil, fmt.Errorf("%s:%d: upstream: body and json both given", path, c.line)
		}
	}
	return &f, nil
}

func pluginTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugin test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, testUsage)
		fs.PrintDefaults()
	}
	var sf sandboxFlags
	sf.register(fs)
	runFlag := fs.String("run", "", "run only the cases whose name matches this regexp")
	verbose := fs.Bool("v", false, "print each case's full exchange, as plugin run does")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 {
		fmt.Fprint(stderr, "usage: wasmgate plugin test [flags] FILE.wasm CASES.yaml (-h for more)\n")
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "wasmgate plugin test: "+format+"\n", a...)
		return code
	}
	var only *regexp.Regexp
	if *runFlag != "" {
		if only, err = regexp.Compile(*runFlag); err != nil {
			return fail(2, "-run: %v", err)
		}
	}
	wasmPath, casesPath := pos[0], pos[1]
	cases, err := loadCases(casesPath)
	if err != nil {
		return fail(2, "%v", err)
	}
	sf.allowHosts = append(sf.allowHosts, cases.Outbound.Hosts...)
	for name, u := range cases.Outbound.Upstreams {
		sf.allowUpstream = append(sf.allowUpstream, name+"="+u)
	}
	o, err := sf.options()
	if err != nil {
		return fail(2, "%v", err)
	}
	ctx := context.Background()
	sb, err := openSandbox(ctx, wasmPath, o)
	if err != nil {
		return fail(1, "%v", err)
	}
	defer sb.close(ctx)

	w := &reportWriter{w: stdout}
	passed, failed, skipped := 0, 0, 0
	for i := range cases.Cases {
		c := &cases.Cases[i]
		if only != nil && !only.MatchString(c.Name) {
			skipped++
			continue
		}
		start := time.Now()
		x, problems := runCase(ctx, sb, cases, c)
		d := roundDuration(time.Since(start))
		if len(problems) == 0 {
			passed++
			w.printf("PASS  %s (%s)\n", c.Name, d)
		} else {
			failed++
			w.printf("FAIL  %s (%s)\n", c.Name, d)
			w.printf("      %s:%d\n", casesPath, c.line)
			for _, p := range problems {
				for _, l := range strings.Split(strings.TrimRight(p, "\n"), "\n") {
					w.printf("      %s\n", l)
				}
			}
		}
		if *verbose && x != nil {
			iw := &reportWriter{w: &indentWriter{w: stdout, indent: "    | "}}
			x.report(iw, sb)
		}
	}
	if w.err != nil {
		return fail(1, "%v", w.err)
	}
	summary := fmt.Sprintf("%d passed", passed)
	if skipped > 0 {
		summary += fmt.Sprintf(", %d skipped (-run)", skipped)
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "FAIL: %d of %d case(s) failed, %s (%s)\n", failed, failed+passed, summary, casesPath)
		return 1
	}
	if passed == 0 {
		fmt.Fprintf(stdout, "no case matches -run %q (%s)\n", *runFlag, casesPath)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %s (%s)\n", summary, casesPath)
	return 0
}

// indentWriter prefixes every line written through it.
type indentWriter struct {
	w      io.Writer
	indent string
	mid    bool // inside a line
}

func (iw *indentWriter) Write(p []byte) (int, error) {
	var b bytes.Buffer
	for _, c := range p {
		if !iw.mid {
			b.WriteString(iw.indent)
			iw.mid = true
		}
		b.WriteByte(c)
		if c == '\n' {
			iw.mid = false
		}
	}
	if _, err := iw.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// runCase runs one case and returns what went wrong (nothing: it passed).
func runCase(ctx context.Context, sb *sandbox, f *casesFile, c *testCase) (*exchange, []string) {
	cfgNode := f.Config
	if c.Config != nil {
		cfgNode = c.Config
	}
	var cfg []byte
	if cfgNode != nil {
		var err error
		if cfg, err = yamlJSON(cfgNode.node); err != nil {
			return nil, []string{"config: " + err.Error()}
		}
	}
	req, err := caseHTTPRequest(&c.Request)
	if err != nil {
		return nil, []string{"request: " + err.Error()}
	}
	clientIP := c.ClientIP
	if clientIP == "" {
		clientIP = "127.0.0.1"
	}
	var received *fasthttp.Request
	stub := func(r *fasthttp.Request, resp *fasthttp.Response) (string, error) {
		received = &fasthttp.Request{}
		r.CopyTo(received)
		resp.Reset()
		resp.SetStatusCode(fasthttp.StatusOK)
		u := c.Upstream
		if u == nil {
			return "the case's stub upstream answered 200", nil
		}
		if u.Status != 0 {
			resp.SetStatusCode(u.Status)
		}
		for _, h := range u.Headers {
			resp.Header.Add(h.name, h.value)
		}
		switch {
		case u.JSON != nil:
			b, err := yamlJSON(u.JSON.node)
			if err != nil {
				return "", err
			}
			if len(u.Headers.values("Content-Type")) == 0 {
				resp.Header.SetContentType("application/json")
			}
			resp.SetBody(b)
		case u.Body != nil:
			resp.SetBodyString(*u.Body)
		}
		return fmt.Sprintf("the case's stub upstream answered %d", resp.StatusCode()), nil
	}
	x := sb.exchange(ctx, exchangeSpec{config: cfg, clientIP: clientIP, req: req, upstream: stub})
	return x, checkCase(x, &c.Expect, received)
}

func (l fieldList) values(name string) []string {
	var vs []string
	for _, f := range l {
		if strings.EqualFold(f.name, name) {
			vs = append(vs, f.value)
		}
	}
	return vs
}

// caseHTTPRequest makes the request of a case, as parseHTTPFile would
// from the same request written out.
func caseHTTPRequest(r *caseRequest) (*fasthttp.Request, error) {
	method, path := r.Method, r.Path
	if method == "" {
		method = "GET"
	}
	if path == "" {
		path = "/"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\n", method, path)
	hasCT := false
	for _, h := range r.Headers {
		fmt.Fprintf(&b, "%s: %s\n", h.name, h.value)
		hasCT = hasCT || strings.EqualFold(h.name, "Content-Type")
	}
	var body []byte
	switch {
	case r.JSON != nil:
		j, err := yamlJSON(r.JSON.node)
		if err != nil {
			return nil, err
		}
		if !hasCT {
			b.WriteString("Content-Type: application/json\n")
		}
		body = j
	case r.Body != nil:
		body = []byte(*r.Body)
	}
	if len(body) > 0 {
		fmt.Fprintf(&b, "Content-Length: %d\n", len(body))
	}
	b.WriteString("\n")
	b.Write(body)
	return parseHTTPFile("request", []byte(b.String()))
}

// checkCase compares an exchange with a case's expectations.
func checkCase(x *exchange, e *caseExpect, received *fasthttp.Request) []string {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	if e.ConfigError != nil {
		switch {
		case x.initErr == nil:
			add("config_error: on_init accepted the config, want a rejection containing %q", *e.ConfigError)
		case !strings.Contains(x.initProblem(), *e.ConfigError):
			add("config_error: got %q, want it to contain %q", x.initProblem(), *e.ConfigError)
		}
		return problems
	}
	if x.initErr != nil {
		add("the plugin did not start: %s", x.initProblem())
		return append(problems, logLines(x)...)
	}

	hookErr := x.reqErr
	if hookErr == nil {
		hookErr = x.respErr
	}
	switch {
	case e.Error != nil && hookErr == nil:
		add("error: the plugin did not fail, want a failure containing %q", *e.Error)
	case e.Error != nil && !strings.Contains(hookErr.Error(), *e.Error):
		add("error: got %q, want it to contain %q", hookErr.Error(), *e.Error)
	case e.Error == nil && hookErr != nil:
		add("the plugin failed: %v", hookErr)
		problems = append(problems, logLines(x)...)
	}
	if x.upstreamErr != nil {
		add("the stub upstream: %v", x.upstreamErr)
	}

	if e.Status != 0 && x.final.status != e.Status {
		add("status: got %d, want %d", x.final.status, e.Status)
	}
	if e.Local != nil && x.local != *e.Local {
		if x.local {
			add("local: the plugin answered locally (%d), want the request sent upstream", x.respBefore.status)
		} else {
			add("local: the request went upstream, want the plugin to answer it")
		}
	}
	for _, h := range e.Headers {
		if p := checkHeader("header", &x.final, h); p != "" {
			add("%s", p)
		}
	}
	if e.Body != nil {
		problems = append(problems, checkBody("body", x.final.body, e.Body)...)
	}
	if r := e.UpstreamReceived; r != nil {
		if received == nil {
			add("upstream_received: the upstream received nothing (%s)", whyNoUpstream(x))
		} else {
			got := requestMessage(received)
			if r.Method != "" && got.method != r.Method {
				add("upstream_received.method: got %s, want %s", got.method, r.Method)
			}
			if r.Path != nil && got.target() != *r.Path {
				add("upstream_received.path: got %q, want %q", got.target(), *r.Path)
			}
			for _, h := range r.Headers {
				if p := checkHeader("upstream_received.header", &got, h); p != "" {
					add("%s", p)
				}
			}
			if r.Body != nil {
				problems = append(problems, checkBody("upstream_received.body", got.body, r.Body)...)
			}
		}
	}
	for _, want := range e.Log {
		found := false
		for _, l := range x.rec.logs {
			found = found || strings.Contains(l.msg, want)
		}
		if !found {
			add("log: no line contains %q", want)
			problems = append(problems, logLines(x)...)
		}
	}
	if e.Consumer != nil && x.consumer != *e.Consumer {
		add("consumer: got %q, want %q", x.consumer, *e.Consumer)
	}
	if e.Claims != nil {
		want, err := yamlJSONValue(e.Claims.node)
		if err != nil {
			add("claims: %v", err)
		} else if x.claims == "" {
			add("claims: none set, want %s", compactJSON(want))
		} else if got, err := decodeJSON([]byte(x.claims)); err != nil {
			add("claims: not JSON: %v", err)
		} else if diffs := jsonSubset("claims", want, got); len(diffs) > 0 {
			problems = append(problems, diffs...)
		}
	}
	return problems
}

func whyNoUpstream(x *exchange) string {
	switch {
	case x.local:
		return fmt.Sprintf("the plugin answered locally with %d", x.respBefore.status)
	case x.reqErr != nil:
		return "on_request failed"
	}
	return "the request did not go upstream"
}

// logLines lists what the plugin logged, to explain a failure.
func logLines(x *exchange) []string {
	x.rec.mu.Lock()
	defer x.rec.mu.Unlock()
	if len(x.rec.logs) == 0 {
		return nil
	}
	out := []string{"the plugin's log:"}
	for _, l := range x.rec.logs {
		out = append(out, fmt.Sprintf("  %s %s: %s", l.hook, l.level, l.msg))
	}
	return out
}

// checkHeader checks one header expectation; "" when it holds.
func checkHeader(what string, m *message, h headerExpect) string {
	vs := m.header(h.name)
	got := "absent"
	if len(vs) > 0 {
		got = strconv.Quote(strings.Join(vs, ", "))
	}
	switch {
	case h.present != nil && *h.present && len(vs) == 0:
		return fmt.Sprintf("%s %s: got absent, want it present", what, h.name)
	case h.present != nil && !*h.present && len(vs) > 0:
		return fmt.Sprintf("%s %s: got %s, want it absent", what, h.name, got)
	case h.equal != nil && (len(vs) == 0 || strings.Join(vs, ", ") != *h.equal):
		return fmt.Sprintf("%s %s: got %s, want %q", what, h.name, got, *h.equal)
	case h.values != nil && !slices.Equal(vs, h.values):
		return fmt.Sprintf("%s %s: got values %q, want %q", what, h.name, vs, h.values)
	case h.contains != nil && (len(vs) == 0 || !strings.Contains(strings.Join(vs, ", "), *h.contains)):
		return fmt.Sprintf("%s %s: got %s, want it to contain %q", what, h.name, got, *h.contains)
	case h.matches != nil && (len(vs) == 0 || !h.matches.MatchString(strings.Join(vs, ", "))):
		return fmt.Sprintf("%s %s: got %s, want it to match %q", what, h.name, got, h.matches)
	}
	return ""
}

// checkBody checks a body expectation.
func checkBody(what string, body []byte, e *bodyExpect) []string {
	var problems []string
	if e.equal != nil && string(body) != *e.equal {
		p := fmt.Sprintf("%s: not equal (- want, + got):", what)
		for _, l := range lineDiff(displayLines([]byte(*e.equal)), displayLines(body)) {
			p += "\n  " + l
		}
		if len(body) == 0 {
			p += "\n  (got an empty body)"
		}
		problems = append(problems, p)
	}
	for _, s := range e.contains {
		if !bytes.Contains(body, []byte(s)) {
			problems = append(problems, fmt.Sprintf("%s: does not contain %q; got:\n%s", what, s, indentBody(body)))
		}
	}
	if e.hasJSON {
		got, err := decodeJSON(body)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: not JSON (%v); got:\n%s", what, err, indentBody(body)))
		} else if diffs := jsonSubset(what, e.json, got); len(diffs) > 0 {
			problems = append(problems, diffs...)
			problems = append(problems, fmt.Sprintf("%s (got):\n%s", what, indentBody(body)))
		}
	}
	return problems
}

// indentBody shows a body in a failure: JSON indented, at most 40 lines.
func indentBody(b []byte) string {
	lines := displayLines(b)
	if len(lines) == 0 {
		return "  (empty)"
	}
	if len(lines) > 40 {
		lines = append(lines[:40], fmt.Sprintf("…(%d lines in all)", len(lines)))
	}
	return "  " + strings.Join(lines, "\n  ")
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func compactJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// jsonSubset reports where got does not contain want (see testUsage).
func jsonSubset(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want an object", path, jsonKind(got))}
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var out []string
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing, want %s", path, k, compactJSON(w[k])))
				continue
			}
			out = append(out, jsonSubset(path+"."+k, w[k], gv)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want an array", path, jsonKind(got))}
		}
		if len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %d elements, want %d: %s", path, len(g), len(w), compactJSON(g))}
		}
		var out []string
		for i := range w {
			out = append(out, jsonSubset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	case json.Number:
		g, ok := got.(json.Number)
		if !ok || !sameNumber(w, g) {
			return []string{fmt.Sprintf("%s: got %s, want %s", path, compactJSON(got), w)}
		}
		return nil
	default:
		if !jsonEqual(want, got) {
			return []string{fmt.Sprintf("%s: got %s, want %s", path, compactJSON(got), compactJSON(want))}
		}
		return nil
	}
}

func jsonEqual(a, b any) bool {
	return compactJSON(a) == compactJSON(b)
}

func sameNumber(a, b json.Number) bool {
	x, okx := new(big.Float).SetString(string(a))
	y, oky := new(big.Float).SetString(string(b))
	return okx && oky && x.Cmp(y) == 0
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string " + compactJSON(v)
	case json.Number:
		return "a number " + compactJSON(v)
	case bool:
		return compactJSON(v)
	case nil:
		return "null"
	}
	return compactJSON(v)
}
