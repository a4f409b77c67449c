package testenv_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/herald-rt/herald/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a testing.TB whose Skip and Fatal record instead of stopping
// the goroutine, so Require's decisions can be checked.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatal(args ...any)                 { r.fatal = fmt.Sprint(args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Name() string                      { return "recorder" }
func (r *recorder) Logf(string, ...any)               {}

func TestRequire(t *testing.T) {
	tests := []struct {
		name        string
		integration string
		ok          bool
		wantSkip    bool
		wantFatal   bool
	}{
		{name: "present", integration: "", ok: true},
		{name: "present integration", integration: "1", ok: true},
		{name: "missing skips", integration: "", ok: false, wantSkip: true},
		{name: "missing other value skips", integration: "0", ok: false, wantSkip: true},
		{name: "missing integration fails", integration: "1", ok: false, wantFatal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(testenv.IntegrationEnv, tt.integration)
			r := &recorder{TB: t}
			testenv.Require(r, "widget", "apt-get install widget", tt.ok)
			if got := r.skipped != ""; got != tt.wantSkip {
				t.Errorf("skipped = %q, want skip %v", r.skipped, tt.wantSkip)
			}
			if got := r.fatal != ""; got != tt.wantFatal {
				t.Errorf("fatal = %q, want fatal %v", r.fatal, tt.wantFatal)
			}
			for _, msg := range []string{r.skipped, r.fatal} {
				if msg != "" && (!strings.Contains(msg, "widget") || !strings.Contains(msg, "apt-get install widget")) {
					t.Errorf("message %q does not name the program and how to install it", msg)
				}
			}
		})
	}
}

func TestModuleRoot(t *testing.T) {
	root := testenv.ModuleRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "module github.com/herald-rt/herald") {
		t.Errorf("ModuleRoot = %s, whose go.mod is not herald's", root)
	}
	if got, want := testenv.TestdataDir(t), filepath.Join(root, "testdata"); got != want {
		t.Errorf("TestdataDir = %s, want %s", got, want)
	}
}
