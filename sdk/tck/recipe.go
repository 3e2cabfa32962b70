package tck

import (
	"os"
	"strings"
	"testing"
)

// ABIRecipe returns the first ```lang block of section 9 of the ABI
// document at path (sdk/ABI.md): the recipe a language's tests build as
// written.
func ABIRecipe(t testing.TB, path, lang string) string {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "\n## 9. Toolchain recipes")
	if !ok {
		t.Fatalf("%s has no section 9", path)
	}
	_, block, ok := strings.Cut(sec, "\n```"+lang+"\n")
	block, _, ok2 := strings.Cut(block, "\n```")
	if !ok || !ok2 {
		t.Fatalf("section 9 of %s has no ```%s block", path, lang)
	}
	return block
}
