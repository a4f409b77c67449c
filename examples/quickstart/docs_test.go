package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/herald-rt/herald/internal/testenv"
)

// The README stays a newcomer's page: deep material goes to docs/.
func TestREADMELength(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(readme), "\n"); n >= 250 {
		t.Errorf("README.md has %d lines, want under 250: move deep material to docs/", n)
	}
}

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile("(?m)^#{1,6} +(.+)$")
	fence   = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchors returns the GitHub anchors of a Markdown file's headings.
func anchors(md string) map[string]bool {
	md = fence.ReplaceAllString(md, "") // "# comments" in code blocks
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(md, -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}

// Every relative link of the README and docs/ names a file of the
// repository, and a heading of it when it has a #fragment.
func TestDocLinks(t *testing.T) {
	root := testenv.ModuleRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"), filepath.Join(root, "SECURITY.md"), filepath.Join(root, "BENCHMARKS.md"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, file)
		for _, m := range mdLink.FindAllStringSubmatch(fence.ReplaceAllString(string(data), ""), -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(link, "#")
			target := file
			if path != "" {
				target = filepath.Join(filepath.Dir(file), path)
			}
			fi, err := os.Stat(target)
			if err != nil {
				t.Errorf("%s: link %q: %v", rel, link, err)
				continue
			}
			if frag == "" || fi.IsDir() || !strings.HasSuffix(target, ".md") {
				continue
			}
			md, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(string(md))[frag] {
				t.Errorf("%s: link %q: no heading with anchor #%s", rel, link, frag)
			}
		}
	}
}
