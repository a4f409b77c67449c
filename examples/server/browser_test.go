package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/testenv"
)

// TestBrowser runs the demo page in headless Chromium against the demo
// backend (testdata/browser.js says what it checks). It needs Chromium,
// node with testdata/node_modules, and examples/node_modules.
//
// go test -artifacts -run TestBrowser ./examples/server keeps the screenshot.
func TestBrowser(t *testing.T) {
	node := testenv.RequireNode(t)
	chromium := testenv.RequireChromium(t)
	root := testenv.ModuleRoot(t)
	bundle := filepath.Join(root, "examples", "node_modules", "socket.io-client", "dist", "socket.io.min.js")
	_, err := os.Stat(bundle)
	testenv.Require(t, "examples/node_modules/socket.io-client", "run `npm ci --prefix examples`", err == nil)

	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Second)
	defer cancel()
	url := startDemo(t, appConfig{
		Secret:        randomSecret(t),
		DevMode:       true,
		BundlePath:    bundle,
		AnalysisDelay: 200 * time.Millisecond,
	})

	screenshot := filepath.Join(t.ArtifactDir(), "demo.png")
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "browser.js"), url, screenshot)
	cmd.Env = append(os.Environ(), "HERALD_TESTDATA="+testenv.TestdataDir(t), "HERALD_CHROMIUM="+chromium)
	// SIGTERM lets playwright close Chromium; SIGKILL follows if it hangs.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("browser.js output:\n%s", out)
	if ctx.Err() != nil {
		t.Fatalf("browser.js did not finish in time: %v", ctx.Err())
	}
	if err != nil {
		t.Fatalf("browser.js: %v", err)
	}
	if _, err := os.Stat(screenshot); err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot: %s", screenshot)
}

// startDemo serves a new app on 127.0.0.1 and returns its URL. The app and
// the HTTP server are shut down when the test ends, sockets first.
func startDemo(t *testing.T, cfg appConfig) string {
	t.Helper()
	a, err := newApp(cfg)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpSrv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// http.Server.Shutdown does not close WebSockets: the app does.
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("app Shutdown: %v", err)
		}
		if err := httpSrv.Shutdown(ctx); err != nil {
			t.Errorf("http Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String() + "/"
}

// TestBrowserDevRestart restarts the demo under an open page with another
// dev secret (as when the secret file is lost): the page's token is refused,
// and the page fetches a new one and carries on instead of stopping at
// "unauthorized (token_invalid)". testdata/devrestart.js drives the page.
func TestBrowserDevRestart(t *testing.T) {
	runRestartScript(t, "devrestart.js", "connected")
}

// TestBrowserJobReload: a page reloaded in the middle of a job gets its bar
// back at once (the server sends the job's state when the page connects),
// and after the demo restarts without its job state (a single node keeps
// it in memory) the page shows the job as lost rather than running
// forever. testdata/jobreload.js drives the page.
func TestBrowserJobReload(t *testing.T) {
	runRestartScript(t, "jobreload.js", "restart")
}

// runRestartScript runs testdata/script against a demo in dev mode and,
// when the script prints trigger, restarts the demo: a new app, with
// another secret and empty state, takes the listener's requests and the
// old one shuts down, closing the page's connection.
func runRestartScript(t *testing.T, script, trigger string) {
	node := testenv.RequireNode(t)
	chromium := testenv.RequireChromium(t)
	root := testenv.ModuleRoot(t)
	bundle := filepath.Join(root, "examples", "node_modules", "socket.io-client", "dist", "socket.io.min.js")
	_, err := os.Stat(bundle)
	testenv.Require(t, "examples/node_modules/socket.io-client", "run `npm ci --prefix examples`", err == nil)

	newDemo := func() *app {
		a, err := newApp(appConfig{Secret: randomSecret(t), DevMode: true, BundlePath: bundle})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	var current atomic.Pointer[app]
	current.Store(newDemo())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpSrv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { current.Load().Handler().ServeHTTP(w, r) }),
		ReadHeaderTimeout: 5 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := current.Load().Shutdown(ctx); err != nil {
			t.Errorf("app Shutdown: %v", err)
		}
		if err := httpSrv.Shutdown(ctx); err != nil {
			t.Errorf("http Shutdown: %v", err)
		}
		<-served
	})

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", script), "http://"+ln.Addr().String()+"/")
	cmd.Env = append(os.Environ(), "HERALD_TESTDATA="+testenv.TestdataDir(t), "HERALD_CHROMIUM="+chromium)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var out []string
	for sc.Scan() {
		out = append(out, sc.Text())
		if sc.Text() != trigger {
			continue
		}
		// The restart: a new process would answer on the same address
		// with a new secret; here a new app takes the listener's requests
		// and the old one shuts down, closing the page's connection.
		old := current.Swap(newDemo())
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		if err := old.Shutdown(sctx); err != nil {
			t.Errorf("old app Shutdown: %v", err)
		}
		scancel()
	}
	err = cmd.Wait()
	t.Logf("%s output:\n%s\n%s", script, strings.Join(out, "\n"), stderr.String())
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
}
