package tck

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestConfig checks the config Run hands a host: only the keys the host
// does not own, every plugin on the given module, the given addresses.
func TestConfig(t *testing.T) {
	text := Config("/m/hostcheck.wasm", "127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003")
	var c struct {
		Plugins []struct {
			Name   string `yaml:"name"`
			Module string `yaml:"module"`
		} `yaml:"plugins"`
		Upstreams []struct {
			Name    string `yaml:"name"`
			Targets []struct {
				Address string `yaml:"address"`
			} `yaml:"targets"`
		} `yaml:"upstreams"`
		Routes []map[string]any `yaml:"routes"`
	}
	var top map[string]any
	if err := yaml.Unmarshal([]byte(text), &top); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if len(top) != 4 || top["plugins"] == nil || top["traffic"] == nil || top["upstreams"] == nil || top["routes"] == nil {
		t.Errorf("top-level keys %v, want plugins, traffic, upstreams and routes only", slices.Collect(maps.Keys(top)))
	}
	if err := yaml.Unmarshal([]byte(text), &c); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range c.Plugins {
		if p.Module != "/m/hostcheck.wasm" {
			t.Errorf("plugin %s: module %q", p.Name, p.Module)
		}
		names = append(names, p.Name)
	}
	if len(names) != 18 || names[0] != "hostcheck" || !slices.Contains(names, "hc-buffers") || !slices.Contains(names, "hc-gateway") {
		t.Errorf("plugins %v", names)
	}
	if len(c.Upstreams) != 2 || c.Upstreams[0].Targets[0].Address != "127.0.0.1:1001" || c.Upstreams[1].Targets[0].Address != "127.0.0.1:1002" {
		t.Errorf("upstreams %+v", c.Upstreams)
	}
	if len(c.Routes) != 20 || !strings.Contains(text, `"http://127.0.0.1:1003/dead"`) {
		t.Errorf("%d routes; the dead address is in the outbound batch: %v", len(c.Routes), strings.Contains(text, "127.0.0.1:1003"))
	}
}

// TestUpstream checks the backend's answers by path.
func TestUpstream(t *testing.T) {
	u := StartUpstream(t, "u")
	r := Do(t, "POST", "http://"+u.Addr+"/echo/a%2Fb?q=1", []string{"X-Multi", "1", "X-Multi", "2", "Host", "h.test"}, []byte("body"))
	var e Echo
	r.JSON(t, &e)
	if r.Status != 200 || e.ID != "u" || e.Method != "POST" || e.URI != "/echo/a%2Fb?q=1" || e.Host != "h.test" ||
		e.Body != "body" || strings.Join(e.Headers["X-Multi"], ",") != "1,2" {
		t.Errorf("echo: %d %+v", r.Status, e)
	}
	if r.Get("X-Upstream") != "u" || r.Get("x-resp-multi") != "a" || r.Get("X-Upstream-Remove") != "gone" {
		t.Errorf("echo headers %v", r.Headers)
	}
	if r := Do(t, "GET", "http://"+u.Addr+"/x/status/418", nil, nil); r.Status != 418 || string(r.Body) != `{"status":418}` {
		t.Errorf("status: %d %s", r.Status, r.Body)
	}
	var part map[string]string
	Do(t, "GET", "http://"+u.Addr+"/part/one?x=1", []string{"X-Part", "p"}, nil).JSON(t, &part)
	if part["from"] != "u" || part["uri"] != "/part/one?x=1" || part["x_part"] != "p" {
		t.Errorf("part: %v", part)
	}
	if r := Do(t, "GET", "http://"+u.Addr+"/any/doc", nil, nil); string(r.Body) != DocBody {
		t.Errorf("doc: %s", r.Body)
	}
	if u.Hits() != 4 {
		t.Errorf("%d hits, want 4", u.Hits())
	}
	EqJSON(t, "EqJSON ignores key order", `{"b":[1,{"c":null}],"a":"x"}`, `{"a":"x","b":[1,{"c":null}]}`)
	if _, err := tryDo("GET", "http://"+DeadAddr(t)+"/", nil, nil); err == nil {
		t.Error("a request to DeadAddr got an answer")
	}
}
