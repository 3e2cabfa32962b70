package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/etcdtest"
	"github.com/wasmgate/wasmgate/host/fleet"
)

// The Kubernetes manifests of deploy/ are checked offline: nothing is
// applied. TestDeployManifests checks the gateways, the Job that pushes
// their config and how they find etcd; TestDeployEtcd the etcd cluster;
// TestDeployConfigPush runs the Job's command on a local etcd.

// manifests are the documents of deploy/*.yaml by kind/name.
type manifests map[string]map[string]any

// loadManifests parses every document of every deploy/*.yaml file. Each
// needs apiVersion, kind and metadata.name, no two may share a kind and
// name, a workload's selector must select its own pods, and containers may
// hold only fields Kubernetes knows (a misspelt probe would be ignored).
func loadManifests(t *testing.T) manifests {
	t.Helper()
	docs := manifests{}
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
			if docs[kind+"/"+name] != nil {
				t.Fatalf("%s: %s/%s defined twice", f, kind, name)
			}
			docs[kind+"/"+name] = doc
		}
	}
	for key, doc := range docs {
		pod, ok := dig(doc, "spec", "template", "spec").(map[string]any)
		if !ok {
			continue
		}
		if sel := dig(doc, "spec", "selector", "matchLabels"); sel != nil && !selects(sel, podLabels(doc)) {
			t.Errorf("%s: selector %v does not select its pods %v", key, sel, podLabels(doc))
		}
		for _, list := range []string{"initContainers", "containers"} {
			cs, _ := pod[list].([]any)
			for _, c := range cs {
				for field := range c.(map[string]any) {
					if !containerFields[field] {
						t.Errorf("%s: %s: unknown container field %q", key, list, field)
					}
				}
			}
		}
	}
	for _, want := range []string{
		"ConfigMap/wasmgate-config", "Job/wasmgate-config-push", "Deployment/wasmgate", "Service/wasmgate", "PodDisruptionBudget/wasmgate",
		"StatefulSet/etcd", "Service/etcd", "Deployment/wasmgate-redis", "Service/wasmgate-redis",
	} {
		if docs[want] == nil {
			t.Fatalf("no %s in deploy/*.yaml", want)
		}
	}
	// Each Service and PodDisruptionBudget selects the pods of exactly one
	// workload (the Job's pods must not receive the gateways' traffic).
	for key, doc := range docs {
		if !strings.HasPrefix(key, "Service/") && !strings.HasPrefix(key, "PodDisruptionBudget/") {
			continue
		}
		sel := dig(doc, "spec", "selector")
		if m := dig(doc, "spec", "selector", "matchLabels"); m != nil {
			sel = m
		}
		var selected []string
		for wkey, w := range docs {
			if podLabels(w) != nil && selects(sel, podLabels(w)) {
				selected = append(selected, wkey)
			}
		}
		if len(selected) != 1 {
			t.Errorf("%s selects the pods of %v, want exactly one workload", key, selected)
		}
	}
	return docs
}

// containerFields are the fields of a Kubernetes container.
var containerFields = map[string]bool{
	"name": true, "image": true, "imagePullPolicy": true, "command": true, "args": true, "workingDir": true,
	"env": true, "envFrom": true, "ports": true, "resources": true, "resizePolicy": true, "restartPolicy": true,
	"volumeMounts": true, "volumeDevices": true, "livenessProbe": true, "readinessProbe": true, "startupProbe": true,
	"lifecycle": true, "securityContext": true, "terminationMessagePath": true, "terminationMessagePolicy": true,
	"stdin": true, "stdinOnce": true, "tty": true,
}

// TestDeployManifests checks the gateways: the ConfigMap's config is valid
// and the plugin modules it names are in the image; the Deployment runs
// three gateways on the fleet's config in etcd, through the etcd client
// Service, with probes on the config's probe listener (/healthz, /readyz),
// ports that are the config's listeners, the admin token and every other
// variable the config needs without a default in its environment, and a
// shutdown grace longer than the config's shutdown_timeout; the Job pushes
// the ConfigMap's file to the very URL the gateways read, retrying long
// enough for etcd to come up and without --revision (so that a re-run
// pushes again); the Service and the config's Redis address name the
// manifests' objects.
func TestDeployManifests(t *testing.T) {
	docs := loadManifests(t)

	t.Setenv("WASMGATE_ADMIN_TOKEN", "deploy-test-token")
	cm := docs["ConfigMap/wasmgate-config"]
	text, _ := dig(cm, "data", "wasmgate.yaml").(string)
	cfg, err := config.Parse("wasmgate.yaml", []byte(text))
	if err != nil {
		t.Fatalf("the ConfigMap's config: %v", err)
	}
	port := func(addr string) int {
		_, p, err := net.SplitHostPort(addr)
		n, err2 := strconv.Atoi(p)
		if err != nil || err2 != nil {
			t.Fatalf("address %q: want HOST:PORT", addr)
		}
		return n
	}
	if host, _, _ := net.SplitHostPort(cfg.Admin.Address); host != "127.0.0.1" {
		t.Errorf("admin on %s: keep it on loopback", cfg.Admin.Address)
	}
	for _, pc := range cfg.Plugins {
		if _, err := imageModule(t, pc.Module); err != nil {
			t.Errorf("plugin %s: %v", pc.Name, err)
		}
	}

	dep := docs["Deployment/wasmgate"]
	if n, _ := dig(dep, "spec", "replicas").(int); n != 3 {
		t.Errorf("replicas %v, want 3", dig(dep, "spec", "replicas"))
	}
	pod := dig(dep, "spec", "template", "spec").(map[string]any)
	c := container(t, pod, "wasmgate")
	if containerPort(t, c, "http") != port(cfg.Listen.Address) || containerPort(t, c, "probes") != port(cfg.Listen.ProbeAddress) {
		t.Errorf("container ports %v, config listens on %s and probes on %s", c["ports"], cfg.Listen.Address, cfg.Listen.ProbeAddress)
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		got, p := dig(c, probe, "httpGet", "path"), dig(c, probe, "httpGet", "port")
		if got != path || p == nil || containerPort(t, c, p) != port(cfg.Listen.ProbeAddress) {
			t.Errorf("%s: %v on port %v, want %s on the probe listener (%s)", probe, got, p, path, cfg.Listen.ProbeAddress)
		}
	}
	grace, _ := pod["terminationGracePeriodSeconds"].(int)
	if float64(grace) <= cfg.Listen.ShutdownTimeout.D().Seconds() {
		t.Errorf("terminationGracePeriodSeconds %d within shutdown_timeout %s: a draining gateway would be killed", grace, cfg.Listen.ShutdownTimeout.D())
	}
	svcPort := dig(docs["Service/wasmgate"], "spec", "ports").([]any)[0].(map[string]any)
	if containerPort(t, c, svcPort["targetPort"]) != port(cfg.Listen.Address) {
		t.Errorf("the Service targets port %v, not the proxy listener %s", svcPort["targetPort"], cfg.Listen.Address)
	}
	if cfg.Redis == nil || docs["Service/"+strings.Split(cfg.Redis.Address, ":")[0]] == nil {
		t.Errorf("the config's redis is not a Service of the manifests: %+v", cfg.Redis)
	}

	// The gateways serve the fleet's config, from the etcd client Service.
	args := toStrings(c["args"])
	if len(args) != 3 || args[0] != "serve" || args[1] != "--config" || !fleet.IsURL(args[2]) {
		t.Fatalf("gateway args %q, want serve --config etcd://HOST:PORT/PREFIX", args)
	}
	source := args[2]
	u, err := fleet.ParseURL(source)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range u.Endpoints {
		if err := isEtcdClientService(t, docs, ep); err != nil {
			t.Errorf("the gateways' --config %s: endpoint %s: %v", source, ep, err)
		}
	}
	// An init container waiting for the config must wait for that one.
	inits, _ := pod["initContainers"].([]any)
	for _, ic := range inits {
		ic := ic.(map[string]any)
		for _, a := range append(toStrings(ic["command"]), toStrings(ic["args"])...) {
			for _, w := range strings.Fields(a) {
				if strings.HasPrefix(strings.Trim(w, `"'`), fleet.Scheme) && strings.Trim(w, `"'`) != source {
					t.Errorf("init container %s waits for %s, the gateways serve %s", ic["name"], w, source)
				}
			}
		}
		if ic["image"] != c["image"] {
			t.Errorf("init container %s runs %v, the gateway %v", ic["name"], ic["image"], c["image"])
		}
	}

	// The Job pushes the ConfigMap's file to the gateways' source.
	job := docs["Job/wasmgate-config-push"]
	jpod := dig(job, "spec", "template", "spec").(map[string]any)
	if rp := jpod["restartPolicy"]; rp != "Never" && rp != "OnFailure" {
		t.Errorf("the Job's restartPolicy %v, want Never or OnFailure", rp)
	}
	limit := 6 // Kubernetes' default
	if n, ok := dig(job, "spec", "backoffLimit").(int); ok {
		limit = n
	}
	var wait time.Duration // the Job's back-off before each retry: 10 s, doubling, at most 6 min
	for i := range limit {
		d := 6 * time.Minute
		if i < 6 {
			d = min(10*time.Second<<i, d)
		}
		wait += d
	}
	if wait < 5*time.Minute || dig(job, "spec", "activeDeadlineSeconds") != nil {
		t.Errorf("the Job gives up after %s of back-off (backoffLimit %d) or has a deadline: it must outlast etcd's start", wait, limit)
	}
	jobs := jpod["containers"].([]any)
	if len(jobs) != 1 {
		t.Fatalf("the Job has %d containers, want 1", len(jobs))
	}
	jc := jobs[0].(map[string]any)
	if jc["image"] != c["image"] {
		t.Errorf("the Job runs %v, the gateways %v: the push must validate with the gateways' binary and plugins", jc["image"], c["image"])
	}
	file, to, rest := pushArgs(t, toStrings(jc["args"]))
	if to != source {
		t.Errorf("the Job pushes to %s, the gateways serve %s", to, source)
	}
	if slices.ContainsFunc(rest, func(a string) bool { return strings.HasPrefix(a, "--revision") || strings.HasPrefix(a, "-revision") }) {
		t.Errorf("the Job pushes with %q: a re-run of it must push whatever revision is there", rest)
	}
	if cmName := mountedConfigMap(t, jpod, jc, file); cmName != "wasmgate-config" {
		t.Errorf("the Job pushes %s, which is not a key of the ConfigMap wasmgate-config mounted there (%q)", file, cmName)
	} else if dig(cm, "data", filepath.Base(file)) == nil {
		t.Errorf("the Job pushes %s: the ConfigMap has no key %s", file, filepath.Base(file))
	}

	// Who expands the config's ${VAR}s: each gateway (serving it) and the
	// Job (validating it). A variable without a default must be set in both.
	for _, v := range requiredVars(text) {
		for who, ctr := range map[string]map[string]any{"the gateway": c, "the Job": jc} {
			if env := envVar(ctr, v); env == nil {
				t.Errorf("the config needs ${%s}, %s does not set it", v, who)
			} else if v == "WASMGATE_ADMIN_TOKEN" && dig(env, "valueFrom", "secretKeyRef", "name") == nil {
				t.Errorf("%s's admin token does not come from a Secret: %v", who, env)
			}
		}
	}
}

// TestDeployEtcd checks the etcd StatefulSet: an odd number of members
// started together; --initial-cluster names exactly its pods, each at its
// DNS name under the headless Service (which publishes members before they
// are ready) and at the URL each member advertises; the data directory is
// on a volumeClaimTemplate; the probes ask /health on a port etcd serves
// it on, liveness without needing a leader.
func TestDeployEtcd(t *testing.T) {
	docs := loadManifests(t)
	sts := docs["StatefulSet/etcd"]
	name := dig(sts, "metadata", "name").(string)
	n, _ := dig(sts, "spec", "replicas").(int)
	if n < 1 || n%2 == 0 {
		t.Errorf("%d members: want an odd number (an even one tolerates no more failures than one less)", n)
	}
	if n > 1 && dig(sts, "spec", "podManagementPolicy") != "Parallel" {
		t.Error("podManagementPolicy is not Parallel: a member waits for the previous one to be ready, which needs a quorum")
	}
	svcName, _ := dig(sts, "spec", "serviceName").(string)
	headless := docs["Service/"+svcName]
	switch {
	case headless == nil:
		t.Fatalf("serviceName %q: no such Service", svcName)
	case dig(headless, "spec", "clusterIP") != "None":
		t.Errorf("Service %s is not headless (clusterIP: None): the members get no DNS names", svcName)
	case dig(headless, "spec", "publishNotReadyAddresses") != true:
		t.Errorf("Service %s does not publish not-ready addresses: members cannot find each other before a quorum", svcName)
	case !selects(dig(headless, "spec", "selector"), podLabels(sts)):
		t.Errorf("Service %s does not select the members", svcName)
	}

	pod := dig(sts, "spec", "template", "spec").(map[string]any)
	c := container(t, pod, "etcd")
	flags := etcdFlags(t, c)
	podVar := strings.TrimSuffix(strings.TrimPrefix(flags["name"], "$("), ")")
	if env := envVar(c, podVar); env == nil || dig(env, "valueFrom", "fieldRef", "fieldPath") != "metadata.name" {
		t.Fatalf("--name=%s: want $(VAR) with VAR the pod's name (fieldRef metadata.name)", flags["name"])
	}
	member := func(s, pod string) string { return strings.ReplaceAll(s, "$("+podVar+")", pod) }
	_, peerPort := listenURL(t, flags, "listen-peer-urls")
	scheme, clientPort := listenURL(t, flags, "listen-client-urls")
	metricsPort := -1
	if flags["listen-metrics-urls"] != "" {
		_, metricsPort = listenURL(t, flags, "listen-metrics-urls")
	}
	for _, p := range []int{peerPort, clientPort} {
		if !slices.Contains(containerPorts(c), p) {
			t.Errorf("etcd listens on %d, the container does not declare it", p)
		}
	}
	// inDNS reports whether host is pod's name under the headless Service.
	inDNS := func(host, pod string) bool {
		return host == pod+"."+svcName || strings.HasPrefix(host, pod+"."+svcName+".")
	}

	var names []string
	for i, m := range strings.Split(flags["initial-cluster"], ",") {
		mname, peer, _ := strings.Cut(m, "=")
		names = append(names, mname)
		want := fmt.Sprintf("%s-%d", name, i)
		if mname != want {
			t.Errorf("--initial-cluster member %d is %q, the StatefulSet's pod %d is %s", i, mname, i, want)
			continue
		}
		if adv := member(flags["initial-advertise-peer-urls"], mname); peer != adv {
			t.Errorf("--initial-cluster has %s=%s, the member advertises %s", mname, peer, adv)
		}
		pu, err := url.Parse(peer)
		if err != nil || !inDNS(pu.Hostname(), mname) || pu.Port() != strconv.Itoa(peerPort) {
			t.Errorf("--initial-cluster %s=%s: want %s.%s:%d, its DNS name and peer port", mname, peer, mname, svcName, peerPort)
		}
		cu, err := url.Parse(member(flags["advertise-client-urls"], mname))
		if err != nil || !inDNS(cu.Hostname(), mname) || cu.Port() != strconv.Itoa(clientPort) || cu.Scheme != scheme {
			t.Errorf("--advertise-client-urls %s: want %s://%s.%s:%d", member(flags["advertise-client-urls"], mname), scheme, mname, svcName, clientPort)
		}
	}
	if len(names) != n {
		t.Errorf("--initial-cluster names %d members %v, the StatefulSet runs %d", len(names), names, n)
	}
	if flags["initial-cluster-state"] != "new" || flags["initial-cluster-token"] == "" {
		t.Errorf("--initial-cluster-state %q, --initial-cluster-token %q: want new and a token", flags["initial-cluster-state"], flags["initial-cluster-token"])
	}

	// The data directory is on the member's own volume.
	var claims []string
	for _, vct := range dig(sts, "spec", "volumeClaimTemplates").([]any) {
		claims = append(claims, dig(vct, "metadata", "name").(string))
	}
	dataDir, onClaim := flags["data-dir"], false
	for _, m := range c["volumeMounts"].([]any) {
		m := m.(map[string]any)
		mp := strings.TrimSuffix(m["mountPath"].(string), "/")
		if slices.Contains(claims, m["name"].(string)) && (dataDir == mp || strings.HasPrefix(dataDir, mp+"/")) {
			onClaim = true
		}
	}
	if dataDir == "" || !onClaim {
		t.Errorf("--data-dir %q is not on a volumeClaimTemplate (%v): a restarted member would lose its data", dataDir, claims)
	}

	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		path, _ := dig(c, probe, "httpGet", "path").(string)
		p := dig(c, probe, "httpGet", "port")
		if !strings.HasPrefix(path, "/health") || p == nil {
			t.Errorf("%s: %q on %v, want /health", probe, path, p)
			continue
		}
		if got := containerPort(t, c, p); got != clientPort && got != metricsPort {
			t.Errorf("%s on port %d: etcd serves /health on %d (client) and %d (metrics)", probe, got, clientPort, metricsPort)
		}
		if probe == "livenessProbe" && n > 1 && !strings.Contains(path, "serializable=true") {
			t.Errorf("livenessProbe %s needs a leader: losing the quorum would restart every member", path)
		}
	}
	if pdb := docs["PodDisruptionBudget/etcd"]; pdb != nil {
		if keep, _ := dig(pdb, "spec", "minAvailable").(int); keep < n/2+1 {
			t.Errorf("PodDisruptionBudget etcd keeps %v members, a quorum is %d", dig(pdb, "spec", "minAvailable"), n/2+1)
		}
	}
	if err := isEtcdClientService(t, docs, "etcd:"+strconv.Itoa(clientPort)); err != nil {
		t.Errorf("the client Service etcd: %v", err)
	}
}

// TestDeployConfigPush runs the Job's command, as the manifests write it,
// on a local etcd (the ConfigMap's file, its plugin modules taken from the
// repository's build instead of the image), twice as a re-run of the Job
// would, then reads the config back from the gateways' --config URL.
func TestDeployConfigPush(t *testing.T) {
	docs := loadManifests(t)
	text, _ := dig(docs["ConfigMap/wasmgate-config"], "data", "wasmgate.yaml").(string)
	t.Setenv("WASMGATE_ADMIN_TOKEN", "deploy-test-token") // for Parse; the Job's run below gets only the Job's environment
	cfg, err := config.Parse("wasmgate.yaml", []byte(text))
	if err != nil {
		t.Fatalf("the ConfigMap's config: %v", err)
	}
	for _, pc := range cfg.Plugins {
		repo, err := imageModule(t, pc.Module)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(repo); err != nil {
			skipOrFail(t, "example plugins not built (bash plugins/build.sh): "+err.Error())
		}
		text = strings.ReplaceAll(text, pc.Module, repo)
	}
	jc := dig(docs["Job/wasmgate-config-push"], "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	jobArgs := toStrings(jc["args"])
	file, to, _ := pushArgs(t, jobArgs)
	source := toStrings(container(t, dig(docs["Deployment/wasmgate"], "spec", "template", "spec").(map[string]any), "wasmgate")["args"])[2]

	etcd := etcdtest.Start(t)
	local := func(u string) string { // the same prefix, on the local etcd
		p, err := fleet.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		return etcd.URL(p.Prefix)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, filepath.Base(file))
	writeFile(t, path, text)
	args := slices.Clone(jobArgs)
	for i, a := range args {
		switch a {
		case file:
			args[i] = path
		case to:
			args[i] = local(to)
		}
	}
	// Only what the Job's pod sets: Secrets' values made up.
	var env []string
	for _, e := range jc["env"].([]any) {
		e := e.(map[string]any)
		v, _ := e["value"].(string)
		if v == "" {
			v = "deploy-test-" + strings.ToLower(e["name"].(string))
		}
		env = append(env, e["name"].(string)+"="+v)
	}
	for run := 1; run <= 2; run++ {
		code, stdout, stderr := runBin(t, testEnv(env...), args...)
		if code != 0 || !strings.Contains(stdout, "as revision ") {
			t.Fatalf("the Job's push, run %d: exit %d\n%s%s", run, code, stdout, stderr)
		}
		t.Logf("run %d: %s", run, strings.TrimSpace(stdout))
	}
	code, stdout, stderr := runBin(t, testEnv(), "config", "pull", local(source))
	if code != 0 || stdout != text {
		t.Fatalf("config pull %s (the gateways' source): exit %d, %d bytes, want the pushed file\n%s", local(source), code, len(stdout), stderr)
	}
}

// pushArgs checks args are `config push FILE --to URL [...]` and returns
// FILE, URL and the rest.
func pushArgs(t *testing.T, args []string) (file, to string, rest []string) {
	t.Helper()
	if len(args) < 3 || args[0] != "config" || args[1] != "push" {
		t.Fatalf("the Job's args %q, want config push FILE --to URL", args)
	}
	for i := 2; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "--to" || a == "-to") && i+1 < len(args):
			to = args[i+1]
			i++
		case strings.HasPrefix(a, "--to="), strings.HasPrefix(a, "-to="):
			_, to, _ = strings.Cut(a, "=")
		case !strings.HasPrefix(a, "-") && file == "":
			file = a
		default:
			rest = append(rest, a)
		}
	}
	if file == "" || !fleet.IsURL(to) {
		t.Fatalf("the Job's args %q: no FILE or no --to etcd://HOST:PORT/PREFIX", args)
	}
	return file, to, rest
}

// mountedConfigMap returns the ConfigMap mounted (whole, no subPath) on the
// directory of file in container c of pod.
func mountedConfigMap(t *testing.T, pod, c map[string]any, file string) string {
	t.Helper()
	for _, m := range c["volumeMounts"].([]any) {
		m := m.(map[string]any)
		if strings.TrimSuffix(m["mountPath"].(string), "/") != filepath.Dir(file) || m["subPath"] != nil {
			continue
		}
		for _, v := range pod["volumes"].([]any) {
			if v := v.(map[string]any); v["name"] == m["name"] {
				name, _ := dig(v, "configMap", "name").(string)
				return name
			}
		}
	}
	return ""
}

// isEtcdClientService checks that endpoint (HOST:PORT) is a Service of the
// manifests, on a port that reaches the client port of an etcd StatefulSet.
func isEtcdClientService(t *testing.T, docs manifests, endpoint string) error {
	t.Helper()
	host, p, err := net.SplitHostPort(endpoint)
	if err != nil {
		return err
	}
	svc := docs["Service/"+strings.Split(host, ".")[0]]
	if svc == nil {
		return fmt.Errorf("no Service %s in the manifests", host)
	}
	if dig(svc, "spec", "clusterIP") == "None" {
		return fmt.Errorf("Service %s is headless (it also lists members not ready): use the client Service", host)
	}
	for key, sts := range docs {
		if !strings.HasPrefix(key, "StatefulSet/") || !selects(dig(svc, "spec", "selector"), podLabels(sts)) {
			continue
		}
		c := dig(sts, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
		_, clientPort := listenURL(t, etcdFlags(t, c), "listen-client-urls")
		for _, sp := range dig(svc, "spec", "ports").([]any) {
			sp := sp.(map[string]any)
			if strconv.Itoa(sp["port"].(int)) != p {
				continue
			}
			target := sp["targetPort"]
			if target == nil {
				target = sp["port"]
			}
			if got := containerPort(t, c, target); got != clientPort {
				return fmt.Errorf("Service %s port %s goes to %d, etcd's clients are on %d", host, p, got, clientPort)
			}
			return nil
		}
		return fmt.Errorf("Service %s has no port %s", host, p)
	}
	return fmt.Errorf("Service %s selects no etcd StatefulSet", host)
}

// etcdFlags returns an etcd container's --flag=value arguments by flag.
func etcdFlags(t *testing.T, c map[string]any) map[string]string {
	t.Helper()
	flags := map[string]string{}
	all := append(toStrings(c["command"]), toStrings(c["args"])...)
	for i, a := range all {
		k, v, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case ok && strings.HasPrefix(a, "-"):
			flags[k] = v
		case i == 0 && strings.HasSuffix(a, "etcd"): // the command
		default:
			t.Fatalf("etcd argument %q: write --flag=value", a)
		}
	}
	return flags
}

// listenURL returns the scheme and port of etcd's --flag, one URL on all
// interfaces.
func listenURL(t *testing.T, flags map[string]string, flag string) (scheme string, port int) {
	t.Helper()
	u, err := url.Parse(flags[flag])
	if err == nil {
		port, err = strconv.Atoi(u.Port())
	}
	if err != nil || flags[flag] == "" || strings.Contains(flags[flag], ",") {
		t.Fatalf("--%s=%q: want one URL with a port", flag, flags[flag])
	}
	return u.Scheme, port
}

// imageModule maps a plugin module path of the image to the file the image
// is built with (the Dockerfile's COPY --from=build of the build stage's
// WORKDIR): its path in the repository, with an error if it is not in the
// image or not something the image's build makes (plugins/build.sh builds
// plugins/NAME/main.go into plugins/NAME/NAME.wasm).
func imageModule(t *testing.T, module string) (string, error) {
	t.Helper()
	b, err := os.ReadFile("deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(module, ".wasm") {
		return "", fmt.Errorf("%s: not a .wasm module", module)
	}
	workdir := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "WORKDIR" && workdir == "":
			workdir = f[1]
		case len(f) == 4 && f[0] == "COPY" && f[1] == "--from=build" && strings.HasPrefix(module, f[3]+"/"):
			src, ok := strings.CutPrefix(f[2], workdir+"/")
			if !ok {
				return "", fmt.Errorf("%s: the Dockerfile copies it from %s, outside the build's %s", module, f[2], workdir)
			}
			repo, err := filepath.Abs(filepath.Join("..", "..", src, strings.TrimPrefix(module, f[3]+"/")))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(repo); err == nil {
				return repo, nil
			}
			dir := filepath.Dir(repo)
			if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil || filepath.Base(repo) != filepath.Base(dir)+".wasm" ||
				!strings.Contains(string(b), "plugins/build.sh") {
				return "", fmt.Errorf("%s: the image's build (plugins/build.sh in the Dockerfile) does not make %s", module, repo)
			}
			return repo, nil
		}
	}
	return "", fmt.Errorf("%s: not under a directory the Dockerfile copies into the image (COPY --from=build)", module)
}

// requiredVars are the ${VAR}s of a config without a default.
func requiredVars(text string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?:^|[^$])\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(text, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

func container(t *testing.T, pod map[string]any, name string) map[string]any {
	t.Helper()
	for _, c := range pod["containers"].([]any) {
		if c := c.(map[string]any); c["name"] == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

// containerPort resolves a probe's or Service's port (a number or a
// container port's name) to a number the container declares.
func containerPort(t *testing.T, c map[string]any, port any) int {
	t.Helper()
	for _, p := range c["ports"].([]any) {
		p := p.(map[string]any)
		if p["name"] == port || p["containerPort"] == port {
			return p["containerPort"].(int)
		}
	}
	t.Errorf("container %s declares no port %v", c["name"], port)
	return -1
}

func containerPorts(c map[string]any) []int {
	var out []int
	for _, p := range c["ports"].([]any) {
		out = append(out, p.(map[string]any)["containerPort"].(int))
	}
	return out
}

func envVar(c map[string]any, name string) map[string]any {
	env, _ := c["env"].([]any)
	for _, e := range env {
		if e := e.(map[string]any); e["name"] == name {
			return e
		}
	}
	return nil
}

func podLabels(doc map[string]any) map[string]any {
	m, _ := dig(doc, "spec", "template", "metadata", "labels").(map[string]any)
	return m
}

// selects reports whether every label of selector is in labels.
func selects(selector, labels any) bool {
	sel, _ := selector.(map[string]any)
	lab, _ := labels.(map[string]any)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if lab[k] != v {
			return false
		}
	}
	return true
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
	list, _ := v.([]any)
	for _, x := range list {
		out = append(out, fmt.Sprint(x))
	}
	return out
}
