// Package testenv finds the external programs that herald's integration tests
// need (Node.js with the npm packages in testdata/, Chromium, redis-server,
// nginx) and decides what a test does when one is missing. StartNginx also
// runs a private nginx as a reverse proxy in front of the servers of a test.
//
// A missing program skips the test with a message that says how to install it,
// unless the environment variable HERALD_INTEGRATION is "1" (CI sets it): then
// the test fails, so that CI can never pass by skipping everything.
//
// All helpers are safe for concurrent use. Only StartNginx keeps state: the
// *Nginx it returns, stopped by t.Cleanup.
package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// IntegrationEnv is the environment variable that turns a missing program
// into a test failure when it is "1".
const IntegrationEnv = "HERALD_INTEGRATION"

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// Integration reports whether missing programs must fail tests
// (HERALD_INTEGRATION=1).
func Integration() bool {
	return os.Getenv(IntegrationEnv) == "1"
}

// Require skips t, or fails it when Integration is true, unless ok.
// what names the missing thing, howToInstall says how to get it.
func Require(t testing.TB, what, howToInstall string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if Integration() {
		t.Fatalf("testenv: %s is missing and %s=1 requires it: %s", what, IntegrationEnv, howToInstall)
		return
	}
	t.Skipf("testenv: %s is missing: %s (set %s=1 to fail instead of skipping)", what, howToInstall, IntegrationEnv)
}

// ModuleRoot returns the directory holding go.mod, found by walking up from
// the working directory (go test runs in the package's directory).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestdataDir returns the module's top-level testdata directory, which holds
// the Node scripts and their package.json.
func TestdataDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(ModuleRoot(t), "testdata")
}

// RequireNode requires node on PATH and the npm packages of testdata/
// (socket.io-client) installed, and returns the path of node.
func RequireNode(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	Require(t, "node", "install Node.js 20 or newer (for example apt-get install nodejs npm), then run npm ci in testdata/", err == nil)
	Require(t, "testdata/node_modules/socket.io-client", "run `npm ci` in testdata/",
		exists(filepath.Join(TestdataDir(t), "node_modules", "socket.io-client", "package.json")))
	return node
}

// RequireChromium requires node (see RequireNode), Debian's Chromium at
// ChromiumPath and the playwright-core package of testdata/, and returns
// ChromiumPath.
func RequireChromium(t testing.TB) string {
	t.Helper()
	RequireNode(t)
	Require(t, ChromiumPath, "apt-get install chromium", isExecutable(ChromiumPath))
	Require(t, "testdata/node_modules/playwright-core", "run `npm ci` in testdata/",
		exists(filepath.Join(TestdataDir(t), "node_modules", "playwright-core", "package.json")))
	return ChromiumPath
}

// RequireRedis requires redis-server on PATH and returns its path.
func RequireRedis(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	Require(t, "redis-server", "apt-get install redis-server", err == nil)
	return path
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	for {
		if exists(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.mod in the working directory or any parent")
		}
		dir = parent
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&fs.ModePerm&0o111 != 0
}
