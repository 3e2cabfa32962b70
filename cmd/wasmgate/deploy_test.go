package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wasmgate/wasmgate/host/config"
)

// TestDeployManifests checks the Kubernetes manifests of deploy/ offline
// (nothing is applied): every document parses; the gateway's config in its
// ConfigMap is a valid config; the Deployment runs three gateways on that
// config, with probes on the config's probe listener (/healthz, /readyz),
// ports that are the config's listeners, the admin token from a Secret,
// and a shutdown grace longer than the config's shutdown_timeout; the
// Service and the config's Redis address name the manifests' objects.
func TestDeployManifests(t *testing.T) {
	docs := map[string]map[string]any{} // kind/name -> document
	files, err := filepath.Glob("deploy/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kind, _ := doc["kind"].(string)
			name, _ := dig(doc, "metadata", "name").(string)
			if kind == "" || name == "" || doc["apiVersion"] == nil {
				t.Fatalf("%s: a document without apiVersion, kind or metadata.name", f)
			}
			docs[kind+"/"+name] = doc
		}
	}
	for _, want := range []string{"ConfigMap/wasmgate-config", "Deployment/wasmgate", "Service/wasmgate", "PodDisruptionBudget/wasmgate", "Deployment/wasmgate-redis", "Service/wasmgate-redis"} {
		if docs[want] == nil {
			t.Errorf("no %s", want)
		}
	}

	t.Setenv("WASMGATE_ADMIN_TOKEN", "deploy-test-token")
	text, _ := dig(docs["ConfigMap/wasmgate-config"], "data", "wasmgate.yaml").(string)
	cfg, err := config.Parse("wasmgate.yaml", []byte(text))
	if err != nil {
		t.Fatalf("the ConfigMap's config: %v", err)
	}
	port := func(addr string) string {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("address %q: %v", addr, err)
		}
		return p
	}
	if host, _, _ := net.SplitHostPort(cfg.Admin.Address); host != "127.0.0.1" {
		t.Errorf("admin on %s: keep it on loopback", cfg.Admin.Address)
	}

	dep := docs["Deployment/wasmgate"]
	if n, _ := dig(dep, "spec", "replicas").(int); n != 3 {
		t.Errorf("replicas %v, want 3", dig(dep, "spec", "replicas"))
	}
	pod := dig(dep, "spec", "template", "spec").(map[string]any)
	c := pod["containers"].([]any)[0].(map[string]any)
	ports := map[string]string{} // port name -> number
	for _, p := range c["ports"].([]any) {
		p := p.(map[string]any)
		ports[p["name"].(string)] = strings.TrimSpace(strings.Trim(yamlString(p["containerPort"]), "\""))
	}
	if ports["http"] != port(cfg.Listen.Address) || ports["probes"] != port(cfg.Listen.ProbeAddress) {
		t.Errorf("container ports %v, config listens on %s and probes on %s", ports, cfg.Listen.Address, cfg.Listen.ProbeAddress)
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if got := dig(c, probe, "httpGet", "path"); got != path || dig(c, probe, "httpGet", "port") != "probes" {
			t.Errorf("%s: %v on port %v, want %s on probes", probe, got, dig(c, probe, "httpGet", "port"), path)
		}
	}
	args := strings.Join(toStrings(c["args"]), " ")
	mount := ""
	for _, m := range c["volumeMounts"].([]any) {
		if m := m.(map[string]any); m["name"] == "config" {
			mount = m["mountPath"].(string)
		}
	}
	if args != "serve --config "+mount+"/wasmgate.yaml" {
		t.Errorf("args %q do not name the mounted config (%s)", args, mount)
	}
	env := c["env"].([]any)[0].(map[string]any)
	if env["name"] != "WASMGATE_ADMIN_TOKEN" || dig(env, "valueFrom", "secretKeyRef", "name") == nil {
		t.Errorf("the admin token does not come from a Secret: %v", env)
	}
	grace, _ := pod["terminationGracePeriodSeconds"].(int)
	if float64(grace) <= cfg.Listen.ShutdownTimeout.D().Seconds() {
		t.Errorf("terminationGracePeriodSeconds %d within shutdown_timeout %s: a draining gateway would be killed", grace, cfg.Listen.ShutdownTimeout.D())
	}
	if dig(docs["Service/wasmgate"], "spec", "ports").([]any)[0].(map[string]any)["targetPort"] != "http" {
		t.Error("the Service does not target the http port")
	}
	if cfg.Redis == nil || !strings.HasPrefix(cfg.Redis.Address, "wasmgate-redis:") {
		t.Errorf("the config's redis is not the manifests' Service wasmgate-redis: %+v", cfg.Redis)
	}
}

func dig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func yamlString(v any) string {
	b, _ := yaml.Marshal(v)
	return strings.TrimSpace(string(b))
}
