package socketio_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := leakCheck(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// upstreamTimer runs each one-shot timer of the upstream library.
const upstreamTimer = "github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout.func1"

// leakCheck is goleak's check, except that upstream's one-shot timers get
// the time to fire: a polling session that upstream closed while no poll
// was parked leaves its close timer running for 30 s (see gate.go), though
// the session is gone. Any other goroutine fails at once; a timer that is
// still there after 35 s (one that keeps rescheduling, such as the
// heartbeat of a leaked session) fails too.
func leakCheck() error {
	err := goleak.Find()
	if err == nil {
		return nil
	}
	if goleak.Find(goleak.IgnoreTopFunction(upstreamTimer)) != nil {
		return err
	}
	for deadline := time.Now().Add(35 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if err = goleak.Find(); err == nil {
			return nil
		}
	}
	return err
}
