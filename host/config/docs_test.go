package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var updateReference = flag.Bool("update", false, "rewrite the generated part of REFERENCE.md")

// referencePath is the configuration reference, beside the code that
// generates it.
const referencePath = "REFERENCE.md"

const (
	refBegin = "<!-- BEGIN CONFIG REFERENCE -->\n"
	refEnd   = "<!-- END CONFIG REFERENCE -->"
)

// TestReference keeps REFERENCE.md's generated part (between the markers)
// equal to Reference(), so that it cannot go stale. After changing a key or
// its tags, regenerate it:
//
//	go test ./host/config -run TestReference -update
func TestReference(t *testing.T) {
	data, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	start, end := strings.Index(doc, refBegin), strings.Index(doc, refEnd)
	if start < 0 || end < start {
		t.Fatalf("%s lacks the %q … %q markers", referencePath, strings.TrimSpace(refBegin), refEnd)
	}
	want := Reference()
	if got := doc[start+len(refBegin) : end]; got != want {
		if !*updateReference {
			t.Fatalf("%s is stale: go test ./host/config -run TestReference -update", referencePath)
		}
		doc = doc[:start+len(refBegin)] + want + doc[end:]
		if err := os.WriteFile(referencePath, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"max_concurrent_requests", "consistent_hash", "path_regex", "strip_prefix", "failure_policy"} {
		if !strings.Contains(want, key) {
			t.Errorf("reference lacks %q", key)
		}
	}
	// The command that regenerates it is written in the file.
	if !strings.Contains(doc[:start], "go test ./host/config -run TestReference -update") {
		t.Errorf("%s does not say how to regenerate it", referencePath)
	}
}
