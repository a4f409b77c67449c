package socketio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

const upgradeHead = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"

// frame returns a server frame (unmasked) with the given first byte and
// payload length, its payload filled with 'p'.
func frame(b0 byte, n int) []byte {
	return append(appendFrameHeader(nil, b0, n), bytes.Repeat([]byte{'p'}, n)...)
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestFrameTracker(t *testing.T) {
	head := []byte(upgradeHead)
	tests := []struct {
		name     string
		stream   []byte
		messages int
		boundary bool
		bad      bool
	}{
		{"nothing yet", nil, 0, false, false},
		{"upgrade response only", head, 0, true, false},
		{"half the response", head[:20], 0, false, false},
		{"text frame", concat(head, frame(0x81, 5)), 1, true, false},
		{"empty text frame", concat(head, frame(0x81, 0)), 1, true, false},
		{"16-bit length", concat(head, frame(0x82, 300)), 1, true, false},
		{"64-bit length", concat(head, frame(0x81, 70000)), 1, true, false},
		{"three messages", concat(head, frame(0x81, 1), frame(0x81, 200), frame(0x82, 3)), 3, true, false},
		{"frame cut in its payload", concat(head, frame(0x81, 10))[:len(head)+5], 0, false, false},
		{"frame cut in its header", concat(head, frame(0x81, 300))[:len(head)+3], 0, false, false},
		{"fragment begun", concat(head, frame(0x01, 1024)), 0, false, false},
		{"fragments ended", concat(head, frame(0x01, 1024), frame(0x00, 1024), frame(0x80, 0)), 1, true, false},
		{"ping inside a message", concat(head, frame(0x01, 10), frame(0x89, 4)), 0, false, false},
		{"ping inside, then the end", concat(head, frame(0x01, 10), frame(0x89, 4), frame(0x80, 2)), 1, true, false},
		{"close frame", concat(head, frame(0x81, 2), frame(0x88, 2)), 1, true, false},
		{"continuation without a start", concat(head, frame(0x80, 1)), 0, false, true},
		{"new message inside a message", concat(head, frame(0x01, 1), frame(0x81, 1)), 0, false, true},
		{"fragmented control frame", concat(head, frame(0x09, 1)), 0, false, true},
		{"control frame too long", concat(head, frame(0x89, 126)), 0, false, true},
		{"absurd length", concat(head, []byte{0x81, 127, 0xFF, 0, 0, 0, 0, 0, 0, 0}), 0, false, true},
		{"masked frame", concat(head, []byte{0x81, 0x82, 1, 2, 3, 4, 'a', 'b'}), 1, true, false},
		{"CR inside the head", concat([]byte("HTTP/1.1 101 X\r\r\n\r\n"), frame(0x81, 1)), 1, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Whole, then in every two-piece split, then byte by byte:
			// where the writes are cut must not matter.
			check := func(how string, pieces [][]byte) {
				t.Helper()
				var ft frameTracker
				n := 0
				for _, p := range pieces {
					n += ft.feed(p)
				}
				if n != tc.messages || ft.atBoundary() != tc.boundary || ft.bad != tc.bad {
					t.Fatalf("%s: messages %d, boundary %v, bad %v; want %d, %v, %v", how, n, ft.atBoundary(), ft.bad, tc.messages, tc.boundary, tc.bad)
				}
			}
			check("whole", [][]byte{tc.stream})
			for i := range tc.stream {
				check("split", [][]byte{tc.stream[:i], tc.stream[i:]})
			}
			var bytewise [][]byte
			for i := range tc.stream {
				bytewise = append(bytewise, tc.stream[i:i+1])
			}
			check("byte by byte", bytewise)
		})
	}
}

// FuzzFrameTracker feeds any bytes in two pieces: the tracker must not
// panic, and the cut must not change what it concludes.
func FuzzFrameTracker(f *testing.F) {
	f.Add(concat([]byte(upgradeHead), frame(0x81, 5), frame(0x01, 3), frame(0x89, 0), frame(0x80, 1)), 40)
	f.Add(concat([]byte(upgradeHead), frame(0x82, 70000)), 90)
	f.Add([]byte("\r\n\r\n\x81\x7f\xff\xff\xff\xff\xff\xff\xff\xff"), 6)
	f.Add([]byte("\r\n\r\n\x00\x00"), 1)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		if cut < 0 || cut > len(b) {
			cut = len(b) / 2
		}
		var whole, split frameTracker
		n1 := whole.feed(b)
		n2 := split.feed(b[:cut]) + split.feed(b[cut:])
		if n1 != n2 || whole != split {
			t.Fatalf("cut at %d: %d messages and %+v, whole: %d and %+v", cut, n2, split, n1, whole)
		}
		if n1 < 0 || n1 > len(b) {
			t.Fatalf("%d messages in %d bytes", n1, len(b))
		}
	})
}

func TestAppendTextFrame(t *testing.T) {
	for _, n := range []int{0, 1, 124, 125, 126, 0xFFFE, 0xFFFF, 70000} {
		payload := bytes.Repeat([]byte{'x'}, n)
		f := appendTextFrame(nil, payload)
		var ft frameTracker
		ft.feed([]byte("\r\n\r\n"))
		if got := ft.feed(f); got != 1 || !ft.atBoundary() {
			t.Fatalf("payload %d: tracker saw %d messages, boundary %v", n, got, ft.atBoundary())
		}
		if f[0] != 0x81 {
			t.Fatalf("payload %d: first byte %#x, want FIN|text", n, f[0])
		}
		var length, hl int
		switch f[1] {
		case 126:
			length, hl = int(binary.BigEndian.Uint16(f[2:4])), 4
		case 127:
			length, hl = int(binary.BigEndian.Uint64(f[2:10])), 10
		default:
			length, hl = int(f[1]), 2
		}
		if n+1 < 126 && hl != 2 || n+1 >= 126 && n+1 <= 0xFFFF && hl != 4 || n+1 > 0xFFFF && hl != 10 {
			t.Fatalf("payload %d: header of %d bytes is not the shortest", n, hl)
		}
		if length != n+1 || len(f) != hl+n+1 || f[hl] != '4' || !bytes.Equal(f[hl+1:], payload) {
			t.Fatalf("payload %d: frame length %d, %d bytes, body %q…", n, length, len(f), f[hl:min(len(f), hl+8)])
		}
	}
}

// wirePair returns a wireConn over a real loopback TCP connection, with an
// open gate, and the peer's end.
func wirePair(t *testing.T) (*wireConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	g := newConnGate()
	g.open()
	wc := newWireConn(srv, g)
	t.Cleanup(func() {
		_ = wc.Close()
		_ = peer.Close()
	})
	return wc, peer
}

func mustWrite(t *testing.T, w io.Writer, b []byte) {
	t.Helper()
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestWireConnOrder: herald's frames go in only between upstream's
// messages, and only once upstream has written every packet it created;
// the peer reads one byte stream in the order of acceptance.
func TestWireConnOrder(t *testing.T) {
	wc, peer := wirePair(t)
	mine := appendTextFrame(nil, []byte(`2["mine"]`))
	var want bytes.Buffer
	write := func(b []byte) { mustWrite(t, wc, b); want.Write(b) }
	try := func(ok bool) {
		t.Helper()
		if got := wc.writeFrame(mine); got != ok {
			t.Fatalf("writeFrame = %v, want %v (pending %d)", got, ok, wc.pending.Load())
		}
		if ok {
			want.Write(mine)
		}
	}

	try(false) // nothing written yet: not even the upgrade response
	write([]byte(upgradeHead))
	try(false) // the OPEN packet is pending
	open := frame(0x81, 40)
	write(open[:3]) // cut inside the header
	try(false)
	write(open[3:])
	try(true)
	try(true)

	wc.pending.Add(1) // upstream creates a large packet: fragmented
	try(false)
	write(frame(0x01, 2048))
	try(false) // inside the message
	write(frame(0x89, 0))
	try(false) // a ping inside the message changes nothing
	write(frame(0x80, 0))
	try(true)

	wc.pending.Add(2) // two packets, written in one piece
	write(concat(frame(0x81, 3), frame(0x81, 70000)))
	try(true)

	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	try(false) // closed
	got, err := io.ReadAll(peer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("peer read %d bytes, want %d; first difference at %d", len(got), want.Len(), firstDiff(got, want.Bytes()))
	}
}

// waitUntil polls cond until it holds or 10 s pass (a wait for the kernel,
// not a measurement).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestWireConnSlowPeer: a peer that reads nothing never blocks herald's
// writes; they are refused once the connection holds wireMaxBuffered, and
// accepted again once the peer has read.
func TestWireConnSlowPeer(t *testing.T) {
	wc, peer := wirePair(t)
	mustWrite(t, wc, concat([]byte(upgradeHead), frame(0x81, 1)))
	big := appendTextFrame(nil, bytes.Repeat([]byte{'z'}, 64<<10))
	accepted := 0
	for wc.writeFrame(big) {
		accepted++
		if accepted > 1000 {
			t.Fatal("still accepting after 64 MiB to a peer that reads nothing")
		}
	}
	if accepted < wireMaxBuffered/len(big) {
		t.Fatalf("refused after %d frames, before the %d bytes allowed", accepted, wireMaxBuffered)
	}
	want := int64(len(upgradeHead) + 3 + accepted*len(big))
	n, err := io.CopyN(io.Discard, peer, want)
	if err != nil {
		t.Fatalf("peer read %d of %d: %v", n, want, err)
	}
	waitUntil(t, "the buffer to drain", func() bool {
		wc.mu.Lock()
		defer wc.mu.Unlock()
		return !wc.flushing
	})
	if !wc.writeFrame(big) {
		t.Fatal("refused once the peer had read everything")
	}
}

// TestWireConnPeerGone: once a write fails, writes report the error and
// herald's frames are refused; the flusher does not linger (goleak).
func TestWireConnPeerGone(t *testing.T) {
	wc, peer := wirePair(t)
	mustWrite(t, wc, concat([]byte(upgradeHead), frame(0x81, 1)))
	if err := peer.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	_ = peer.Close() // a reset: the next writes fail
	var err error
	waitUntil(t, "a write error", func() bool {
		_, err = wc.Write(frame(0x81, 1000))
		return err != nil
	})
	if errors.Is(err, net.ErrClosed) {
		t.Fatalf("got %v, want the connection's own error", err)
	}
	if wc.writeFrame(appendTextFrame(nil, []byte("x"))) {
		t.Fatal("writeFrame accepted after a write error")
	}
}

// TestWireConnCloseFlushes: Close writes everything accepted before it
// closes the connection.
func TestWireConnCloseFlushes(t *testing.T) {
	wc, peer := wirePair(t)
	mustWrite(t, wc, concat([]byte(upgradeHead), frame(0x81, 1)))
	body := appendTextFrame(nil, []byte(strings.Repeat("q", 300<<10)))
	if !wc.writeFrame(body) {
		t.Fatal("writeFrame refused")
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if want := len(upgradeHead) + 3 + len(body); len(b) != want {
			t.Fatalf("peer read %d bytes before EOF, want %d", len(b), want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("peer saw no EOF")
	}
	if err := wc.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
}

// readN reads exactly n bytes from peer, or fails the test.
func readN(t *testing.T, peer net.Conn, n int) []byte {
	t.Helper()
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(peer, b); err != nil {
		t.Fatalf("peer read %d bytes: %v", n, err)
	}
	return b
}

func (c *wireConn) writeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// TestWireConnHoldUntilIdle: the upgrade response waits for the OPEN
// packet, and both leave in one write.
func TestWireConnHoldUntilIdle(t *testing.T) {
	wc, peer := wirePair(t) // pending 1: the OPEN packet
	wc.holdUntilIdle(wireHoldMax)
	open := frame(0x81, 90)
	mustWrite(t, wc, []byte(upgradeHead))
	if n := wc.writeCount(); n != 0 {
		t.Fatalf("upgrade response written alone (%d writes) while OPEN is pending", n)
	}
	mustWrite(t, wc, open)
	if got, want := readN(t, peer, len(upgradeHead)+len(open)), concat([]byte(upgradeHead), open); !bytes.Equal(got, want) {
		t.Fatalf("peer read %q", got)
	}
	if n := wc.writeCount(); n != 1 {
		t.Fatalf("%d writes, want 1", n)
	}
	// The hold is over: the next message goes out at once, alone.
	mustWrite(t, wc, frame(0x81, 5))
	readN(t, peer, 7)
	if n := wc.writeCount(); n != 2 {
		t.Fatalf("%d writes after the hold, want 2", n)
	}
}

// TestWireConnHold: between hold and release, upstream's messages and
// herald's frames wait; after release, until upstream has written what it
// created; then all of it leaves in one write, in order.
func TestWireConnHold(t *testing.T) {
	wc, peer := wirePair(t)
	mustWrite(t, wc, concat([]byte(upgradeHead), frame(0x81, 1)))
	readN(t, peer, len(upgradeHead)+3)
	before := wc.writeCount()

	wc.hold(wireHoldMax)
	wc.pending.Add(1)
	connect := frame(0x81, 30)
	mustWrite(t, wc, connect) // the CONNECT answer
	mine := appendTextFrame(nil, []byte("mine"))
	if !wc.writeFrame(mine) {
		t.Fatal("writeFrame refused with nothing pending")
	}
	wc.pending.Add(2) // the greeting, and one more, created before release
	wc.release()
	greet := frame(0x81, 60)
	mustWrite(t, wc, greet)
	if n := wc.writeCount() - before; n != 0 {
		t.Fatalf("%d writes while a created packet is unwritten", n)
	}
	last := frame(0x82, 200)
	mustWrite(t, wc, last)
	want := concat(connect, mine, greet, last)
	if got := readN(t, peer, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("peer read %q, want %q", got, want)
	}
	if n := wc.writeCount() - before; n != 1 {
		t.Fatalf("%d writes, want 1", n)
	}

	// An unmatched release changes nothing.
	wc.release()
	mustWrite(t, wc, frame(0x81, 3))
	readN(t, peer, 5)
}

// TestWireConnHoldEnds: a hold nobody releases, or a packet upstream never
// writes, keeps nothing back for longer than wireHoldMax; nor does a hold
// hold more than wireMaxBuffered; Close writes what a hold kept.
func TestWireConnHoldEnds(t *testing.T) {
	t.Run("never released", func(t *testing.T) {
		wc, peer := wirePair(t)
		mustWrite(t, wc, concat([]byte(upgradeHead), frame(0x81, 1)))
		readN(t, peer, len(upgradeHead)+3)
		wc.hold(wireHoldMax)
		msg := frame(0x81, 10)
		mustWrite(t, wc, msg)
		if got := readN(t, peer, len(msg)); !bytes.Equal(got, msg) {
			t.Fatalf("peer read %q", got)
		}
	})
	t.Run("never idle", func(t *testing.T) {
		wc, peer := wirePair(t)
		wc.holdUntilIdle(wireHoldMax)
		wc.pending.Add(5) // packets that will never be written
		mustWrite(t, wc, []byte(upgradeHead))
		readN(t, peer, len(upgradeHead))
	})
	t.Run("full", func(t *testing.T) {
		wc, peer := wirePair(t)
		mustWrite(t, wc, concat([]byte(upgradeHead), frame(0x81, 1)))
		readN(t, peer, len(upgradeHead)+3)
		wc.hold(wireHoldMax)
		defer wc.release()
		small, big := frame(0x81, 100), frame(0x82, wireMaxBuffered)
		mustWrite(t, wc, small)
		done := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(io.LimitReader(peer, int64(len(small)+len(big))))
			done <- b
		}()
		mustWrite(t, wc, big)
		wc.mu.Lock()
		holds := wc.holds
		wc.mu.Unlock()
		if holds != 0 {
			t.Fatal("the hold survived a write past wireMaxBuffered")
		}
		if got := <-done; !bytes.Equal(got, concat(small, big)) {
			t.Fatalf("peer read %d bytes, want %d in order", len(got), len(small)+len(big))
		}
	})
	t.Run("closed", func(t *testing.T) {
		wc, peer := wirePair(t)
		wc.holdUntilIdle(wireHoldMax)
		mustWrite(t, wc, []byte(upgradeHead))
		if err := wc.Close(); err != nil {
			t.Fatal(err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(peer); err != nil || string(b) != upgradeHead {
			t.Fatalf("peer read %q, %v; want the upgrade response, then EOF", b, err)
		}
	})
}
