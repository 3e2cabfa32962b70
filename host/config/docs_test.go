package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var updateReadme = flag.Bool("update", false, "rewrite the configuration reference in README.md")

const (
	refBegin = "<!-- BEGIN CONFIG REFERENCE -->\n"
	refEnd   = "<!-- END CONFIG REFERENCE -->"
)

// TestReadmeReference keeps the README's configuration reference equal to
// the one generated from the code. Run with -update to rewrite it.
func TestReadmeReference(t *testing.T) {
	const path = "../../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start, end := strings.Index(readme, refBegin), strings.Index(readme, refEnd)
	if start < 0 || end < start {
		t.Fatalf("README.md lacks the %q … %q markers", strings.TrimSpace(refBegin), refEnd)
	}
	want := Reference()
	if got := readme[start+len(refBegin) : end]; got != want {
		if !*updateReadme {
			t.Fatal("README.md's configuration reference is stale: go test ./host/config -run TestReadmeReference -update")
		}
		readme = readme[:start+len(refBegin)] + want + readme[end:]
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"max_concurrent_requests", "consistent_hash", "path_regex", "strip_prefix", "failure_policy"} {
		if !strings.Contains(want, key) {
			t.Errorf("reference lacks %q", key)
		}
	}
}
