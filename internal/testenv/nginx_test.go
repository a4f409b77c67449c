package testenv_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/internal/testenv"
)

// get fetches url without keeping the connection, so no transport
// goroutine outlives the test.
func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, string(body)
}

// backend is an httptest server on 127.0.0.1 that says its name, the path
// and the X-Via header it received.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s via=%s", name, r.URL.RequestURI(), r.Header.Get("X-Via"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func hostPort(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	return strings.TrimPrefix(srv.URL, "http://")
}

// waitFor polls cond until it holds or 10s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// group returns the processes of process group pgid, read from /proc.
func group(t *testing.T, pgid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) {
			pid, _ := strconv.Atoi(strings.Fields(s)[0])
			pids = append(pids, pid)
		}
	}
	return pids
}

func masterPID(t *testing.T, n *testenv.Nginx) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(n.Dir(), "nginx.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestRequireNginx(t *testing.T) {
	path := testenv.RequireNginx(t)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		t.Errorf("RequireNginx = %s, not an executable: %v", path, err)
	}
}

func TestRequireNginxOutsidePath(t *testing.T) {
	if _, err := os.Stat(testenv.NginxPath); err != nil {
		t.Skipf("%s: %v", testenv.NginxPath, err)
	}
	t.Setenv("PATH", t.TempDir())
	if got := testenv.RequireNginx(t); got != testenv.NginxPath {
		t.Errorf("RequireNginx without nginx on PATH = %s, want %s", got, testenv.NginxPath)
	}
}

func TestStartNginxProxies(t *testing.T) {
	t.Parallel()
	be := backend(t, "backend")
	n := testenv.StartNginx(t, testenv.NginxConfig{
		HTTP: fmt.Sprintf("upstream backend { server %s; }", hostPort(t, be)),
		Server: `location / {
			proxy_pass http://backend;
			proxy_set_header X-Via "nginx $server_port";
		}`,
	})

	host, port, err := net.SplitHostPort(n.Addr())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr = %s (%v), want 127.0.0.1:port", n.Addr(), err)
	}
	if n.URL() != "http://"+n.Addr() {
		t.Errorf("URL = %s, want http://%s", n.URL(), n.Addr())
	}

	resp, body := get(t, n.URL()+"/some/path?q=1")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Server"), "nginx") {
		t.Errorf("status %s, Server %q; want 200 from nginx", resp.Status, resp.Header.Get("Server"))
	}
	if want := "backend /some/path?q=1 via=nginx " + port; body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
	waitFor(t, "the access log", func() bool { return strings.Contains(n.AccessLog(), "GET /some/path?q=1") })

	// Nothing outside the temp dir.
	conf := n.Conf()
	for _, want := range []string{"daemon off;", "master_process on;", "worker_processes 1;", "listen " + n.Addr() + ";"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %q:\n%s", want, conf)
		}
	}
	for _, bad := range []string{"/etc/nginx", "/var/log", "/var/lib", "/run/"} {
		if strings.Contains(conf, bad) {
			t.Errorf("nginx.conf mentions %s:\n%s", bad, conf)
		}
	}
	for _, dir := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		if want := fmt.Sprintf("%s_temp_path %q;", dir, filepath.Join(n.Dir(), dir+"_temp")); !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %s", want)
		}
	}
}

func TestStartNginxEmptyConfig(t *testing.T) {
	t.Parallel()
	n := testenv.StartNginx(t, testenv.NginxConfig{})
	if resp, _ := get(t, n.URL()+"/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / = %s, want 404", resp.Status)
	}
}

// TestStartNginxIPHashWebSocket runs the configuration herald's cluster
// tests use: two backends behind ip_hash, WebSocket upgrade on /socket.io/.
func TestStartNginxIPHashWebSocket(t *testing.T) {
	t.Parallel()
	var handlers sync.WaitGroup
	t.Cleanup(handlers.Wait) // runs after the servers are closed
	upgrader := websocket.Upgrader{}
	newBackend := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") == "" {
				fmt.Fprint(w, name)
				return
			}
			handlers.Add(1)
			defer handlers.Done()
			conn, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			for {
				typ, msg, err := conn.ReadMessage()
				if err != nil {
					return
				}
				if err := conn.WriteMessage(typ, append([]byte(name+":"), msg...)); err != nil {
					return
				}
			}
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	a, b := newBackend("a"), newBackend("b")
	n := testenv.StartNginx(t, testenv.NginxConfig{
		HTTP: fmt.Sprintf("upstream herald { ip_hash; server %s; server %s; }", hostPort(t, a), hostPort(t, b)),
		Server: `location /socket.io/ {
			proxy_pass http://herald;
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection "upgrade";
			proxy_set_header Host $host;
			proxy_read_timeout 30s;
		}`,
	})

	// ip_hash: every request from 127.0.0.1 reaches the same backend.
	_, first := get(t, n.URL()+"/socket.io/")
	if first != "a" && first != "b" {
		t.Fatalf("GET /socket.io/ = %q, want a or b", first)
	}
	for range 5 {
		if _, got := get(t, n.URL()+"/socket.io/"); got != first {
			t.Fatalf("GET /socket.io/ = %q after %q: ip_hash is not sticky", got, first)
		}
	}

	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := dialer.Dial("ws://"+n.Addr()+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatalf("WebSocket through nginx: %v (response %v); error log:\n%s", err, resp, n.ErrorLog())
	}
	defer ws.Close()
	if err := ws.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"hello", "again"} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if want := first + ":" + msg; string(got) != want {
			t.Errorf("echo = %q, want %q", got, want)
		}
	}
}

func TestStartNginxBadConfig(t *testing.T) {
	t.Parallel()
	testenv.RequireNginx(t) // on t: the recorder below would not stop at a skip
	r := &recorder{TB: t}
	if n := testenv.StartNginx(r, testenv.NginxConfig{Server: "bogus_directive on;"}); n != nil {
		t.Errorf("StartNginx with a bad config = %v, want nil", n)
	}
	for _, want := range []string{"nginx -t", `unknown directive "bogus_directive"`, "bogus_directive on;"} {
		if !strings.Contains(r.fatal, want) {
			t.Errorf("failure does not contain %q:\n%s", want, r.fatal)
		}
	}
}

func TestNginxStop(t *testing.T) {
	t.Parallel()
	n := testenv.StartNginx(t, testenv.NginxConfig{Server: "location / { return 204; }"})
	if resp, _ := get(t, n.URL()); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("GET / = %s, want 204", resp.Status)
	}
	master := masterPID(t, n)
	var workers []int
	waitFor(t, "a worker", func() bool {
		workers = nil
		for _, pid := range group(t, master) {
			if pid != master {
				workers = append(workers, pid)
			}
		}
		return len(workers) > 0
	})
	// Workers run as the test's user, whatever nginx's compiled-in default.
	for _, pid := range workers {
		fi, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Geteuid() {
			t.Errorf("worker %d runs as uid %d, want %d", pid, uid, os.Geteuid())
		}
	}

	n.Stop()
	if pids := group(t, master); len(pids) != 0 {
		t.Errorf("processes %v of nginx's group are left after Stop", pids)
	}
	if _, err := net.DialTimeout("tcp", n.Addr(), 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial after Stop: %v, want connection refused", err)
	}
	n.Stop() // idempotent
	if log := n.ErrorLog(); strings.Contains(log, "[emerg]") || strings.Contains(log, "[alert]") {
		t.Errorf("error log:\n%s", log)
	}
}
