package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The README's Quickstart is this program, byte for byte: the README shows
// what CI builds and runs.
func TestREADMEShowsQuickstart(t *testing.T) {
	root := testenv.ModuleRoot(t)
	src, err := os.ReadFile(filepath.Join(root, "examples", "quickstart", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := "```go\n" + string(src) + "```\n"
	if !bytes.Contains(readme, []byte(block)) {
		t.Errorf("README.md does not show examples/quickstart/main.go verbatim in a ```go block; copy the file into the Quickstart section")
	}
}

// quickstart is the running program.
type quickstart struct {
	cmd    *exec.Cmd
	url    string // http://127.0.0.1:PORT
	token  string // user-42's, as printed
	stderr *bytes.Buffer
	exited chan error
}

var (
	tokenLine  = regexp.MustCompile(`token for user-42: (\S+)`)
	listenLine = regexp.MustCompile(`listening on (http://\S+)`)
)

// buildQuickstart builds the program once per test into a temp dir.
func buildQuickstart(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "quickstart")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startQuickstart runs bin with env and reads its log until it listens.
func startQuickstart(t *testing.T, bin string, env ...string) *quickstart {
	t.Helper()
	q := &quickstart{cmd: exec.Command(bin), stderr: new(bytes.Buffer), exited: make(chan error, 1)}
	q.cmd.Env = append(os.Environ(), env...)
	pipe, err := q.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := q.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = q.cmd.Process.Kill()
		for range lines { // until the pipe closes
		}
		<-q.exited
	})
	go func() {
		// Wait only once every line is read: lines is drained by the test
		// or by the cleanup above.
		q.exited <- q.cmd.Wait()
	}()
	deadline := time.After(30 * time.Second)
	for q.url == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("quickstart exited before listening:\n%s", q.stderr)
			}
			q.stderr.WriteString(line + "\n")
			if m := tokenLine.FindStringSubmatch(line); m != nil {
				q.token = m[1]
			}
			if m := listenLine.FindStringSubmatch(line); m != nil {
				q.url = m[1]
			}
		case <-deadline:
			t.Fatalf("quickstart did not listen within 30s:\n%s", q.stderr)
		}
	}
	go func() { // keep the pipe drained
		for line := range lines {
			_ = line
		}
	}()
	return q
}

// TestQuickstart runs the Quickstart as a newcomer would and connects the
// real socket.io-client with the token it printed: a POST to the job
// endpoint reaches the client as job_progress, and SIGTERM ends the
// program cleanly.
func TestQuickstart(t *testing.T) {
	testenv.RequireNode(t)
	bin := buildQuickstart(t)
	q := startQuickstart(t, bin, "JWT_SECRET=quickstart-test-secret-32-bytes!!", "ADDR=127.0.0.1:0")
	if q.token == "" {
		t.Fatalf("no token in the quickstart's log:\n%s", q.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c := nodeclient.Start(t, nodeclient.Options{URL: q.url, Auth: map[string]any{"token": q.token}})
	if _, err := c.WaitType(ctx, "connect"); err != nil {
		t.Fatal(err)
	}
	// A wrong token gets the documented connect_error.
	bad := nodeclient.Start(t, nodeclient.Options{URL: q.url, Auth: map[string]any{"token": q.token + "x"}})
	m, err := bad.WaitType(ctx, "connect_error")
	if err != nil {
		t.Fatal(err)
	}
	if m.Message != "unauthorized" || !strings.Contains(string(m.Data), `"token_invalid"`) {
		t.Errorf("connect_error with a bad signature = %q %s, want unauthorized with code token_invalid", m.Message, m.Data)
	}

	resp, err := http.Post(q.url+"/jobs/j1/progress", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /jobs/j1/progress = %s %s", resp.Status, body)
	}
	ev, err := c.WaitEvent(ctx, "job_progress")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		JobID     string `json:"jobId"`
		Progress  int    `json:"progress"`
		Timestamp string `json:"timestamp"`
	}
	if len(ev.Args) != 1 || json.Unmarshal(ev.Args[0], &p) != nil || p.JobID != "j1" || p.Progress != 40 || p.Timestamp == "" {
		t.Errorf("job_progress args = %s, want one object with jobId j1, progress 40 and a timestamp", ev.Args)
	}

	resp, err = http.Get(q.url + "/api/v1/websocket/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats map[string]any
	err = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET stats = %s, %v", resp.Status, err)
	}

	if err := q.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-q.exited:
		q.exited <- err // for the cleanup
		if err != nil {
			t.Errorf("quickstart after SIGTERM: %v, want exit status 0", err)
		}
	case <-ctx.Done():
		t.Fatal("quickstart did not exit after SIGTERM")
	}
	if _, err := c.WaitType(ctx, "disconnect"); err != nil {
		t.Errorf("client not disconnected by the shutdown: %v", err)
	}
}

// Without a usable secret the program says so and exits 1.
func TestQuickstartNeedsSecret(t *testing.T) {
	bin := buildQuickstart(t)
	for _, secret := range []string{"", "short"} {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "JWT_SECRET="+secret, "ADDR=127.0.0.1:0")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("JWT_SECRET=%q: %v, want exit status 1", secret, err)
		}
		if !strings.Contains(strings.ToLower(string(out)), "secret") {
			t.Errorf("JWT_SECRET=%q: output does not mention the secret:\n%s", secret, out)
		}
	}
}
