package server

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestAdminTableMatchesRouter: the README's admin table lists exactly the
// endpoints the admin router serves.
func TestAdminTableMatchesRouter(t *testing.T) {
	g := startGateway(t, 100, "")
	var served []string
	for _, e := range g.Server.admin.Endpoints() {
		served = append(served, e.Method+" "+e.Path)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Admin API\n")
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([A-Z]+) (/[^`\\[]*)(?:\\[[^`]*\\])?` \\|")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1]+" "+m[2])
	}
	slices.Sort(served)
	slices.Sort(documented)
	if !slices.Equal(served, documented) {
		t.Fatalf("README's admin table and the router differ:\n  served:     %q\n  documented: %q", served, documented)
	}
}
