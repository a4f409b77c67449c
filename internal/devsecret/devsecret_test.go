package devsecret_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/herald-rt/herald/internal/devsecret"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLoadKeepsTheSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dev-secret")
	if _, err := devsecret.Read(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read before Load: %v, want fs.ErrNotExist", err)
	}
	first, created, err := devsecret.Load(path)
	if err != nil || !created || len(first) != devsecret.Size {
		t.Fatalf("first Load = %x, %v, %v; want %d new bytes", first, created, err, devsecret.Size)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("file mode %v: readable by others", perm)
	}
	again, created, err := devsecret.Load(path)
	if err != nil || created || !bytes.Equal(again, first) {
		t.Errorf("second Load = %x, %v, %v; want the first secret %x", again, created, err, first)
	}
	read, err := devsecret.Read(path)
	if err != nil || !bytes.Equal(read, first) {
		t.Errorf("Read = %x, %v; want %x", read, err, first)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".dev-secret-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestLoadRefusesForeignFile(t *testing.T) {
	for name, content := range map[string]string{
		"text":      "not a secret\n",
		"short hex": "abcd\n",
		"empty":     "",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dev-secret")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := devsecret.Load(path); !errors.Is(err, devsecret.ErrBadFile) {
				t.Errorf("Load = %v, want ErrBadFile", err)
			}
			if got, _ := os.ReadFile(path); string(got) != content {
				t.Errorf("file overwritten: %q", got)
			}
		})
	}
}

// Processes that start at once agree on one secret.
func TestLoadConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev-secret")
	const n = 8
	secrets := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { secrets[i], _, errs[i] = devsecret.Load(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !bytes.Equal(secrets[i], secrets[0]) {
			t.Errorf("Load %d = %x, %v; want %x", i, secrets[i], errs[i], secrets[0])
		}
	}
}

func TestPath(t *testing.T) {
	got, err := devsecret.Path(func(string) string { return "/x/y" })
	if err != nil || got != "/x/y" {
		t.Errorf("Path with %s set = %q, %v", devsecret.EnvFile, got, err)
	}
	t.Setenv("XDG_CACHE_HOME", "/cache")
	got, err = devsecret.Path(func(string) string { return "" })
	if err != nil || got != "/cache/herald/dev-secret" {
		t.Errorf("Path by default = %q, %v; want /cache/herald/dev-secret", got, err)
	}
}
