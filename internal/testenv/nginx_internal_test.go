package testenv

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
)

// TestNginxStartReportsBusyPort checks the error StartNginx retries on: nginx
// gives up on a port somebody else holds (after its own retries, about 2.5s).
func TestNginxStartReportsBusyPort(t *testing.T) {
	t.Parallel()
	bin := RequireNginx(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n := &Nginx{t: t, dir: t.TempDir(), port: l.Addr().(*net.TCPAddr).Port}
	t.Cleanup(n.Stop)
	userLine, err := nginxUser()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.confPath(), []byte(n.render(NginxConfig{}, userLine)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), nginxStartTimeout)
	defer cancel()
	if err := n.start(ctx, bin); !errors.Is(err, errNginxPortInUse) {
		t.Fatalf("start on a busy port: %v, want errNginxPortInUse; error log:\n%s", err, n.ErrorLog())
	}
	if n.cmd != nil {
		t.Error("a failed start left its command behind for Stop")
	}
}

func TestNumberLines(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\nb\n", "   1  a\n   2  b\n"},
		{"a", "   1  a\n"},
		{"", "   1  \n"},
	}
	for _, tt := range tests {
		if got := numberLines(tt.in); got != tt.want {
			t.Errorf("numberLines(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNginxUser(t *testing.T) {
	line, err := nginxUser()
	if err != nil {
		t.Fatal(err)
	}
	if root := os.Geteuid() == 0; root != strings.HasPrefix(line, "user ") || (!root && line != "") {
		t.Errorf("nginxUser() = %q as uid %d", line, os.Geteuid())
	}
}
