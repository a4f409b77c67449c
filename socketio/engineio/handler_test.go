package engineio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/socketio/engineio"
)

// The Handler contract (OnMessage calls never overlap, OnClose once and
// last) is checked by every test's env; these tests drive the server
// where calls could overlap: messages over both transports at once around
// an upgrade, and closes racing messages.

func TestHandlerOrderAroundUpgrade(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	const sessions = 4
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		sid := e.handshake()
		wg.Go(func() { errs <- upgradeUnderLoad(e, sid, i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// upgradeUnderLoad POSTs messages p0, p1... and polls on two goroutines,
// upgrades meanwhile, sends w0, w1... over the WebSocket at once, then
// closes it; and checks what the handler received.
func upgradeUnderLoad(e *env, sid string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	var (
		wg       sync.WaitGroup
		accepted []string // POSTs answered "ok"
		postErr  error
	)
	wg.Go(func() { // POSTs until the upgrade refuses them
		for i := 0; ; i++ {
			msg := "p" + strconv.Itoa(i)
			r := e.do(ctx, http.MethodPost, poll(sid), strings.NewReader("4"+msg), http.Header{"Content-Type": {"text/plain;charset=UTF-8"}})
			switch {
			case r.err != nil:
				postErr = r.err
				return
			case r.status == 200 && r.body == "ok":
				accepted = append(accepted, msg)
			case r.status == 400:
				return
			default:
				postErr = fmt.Errorf("POST %s: %v", msg, r)
				return
			}
		}
	})
	wg.Go(func() { // polls until the upgrade refuses them
		for ctx.Err() == nil {
			if r := e.do(ctx, http.MethodGet, poll(sid), nil, nil); r.err != nil || r.status != 200 {
				return
			}
		}
	})
	rec := e.rec(sid)
	for range 10 {
		select {
		case <-rec.messages:
		case <-ctx.Done():
			return fmt.Errorf("session %d: no POST delivered", n)
		}
	}
	d := websocket.Dialer{HandshakeTimeout: eventually}
	c, _, err := d.DialContext(ctx, e.wsURL+"?"+wsQuery(sid), nil)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.NetConn().SetDeadline(time.Now().Add(eventually))
	if err := c.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		return err
	}
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "3probe" {
		return fmt.Errorf("probe: %q %v", m, err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
		return err
	}
	const wsMessages = 200
	read := make(chan error, 1)
	go func() { // the echoes of w0, w1...; the POSTs' echoes may come first
		next := 0
		for next < wsMessages {
			_, m, err := c.ReadMessage()
			if err != nil {
				read <- fmt.Errorf("echo of w%d: %v", next, err)
				return
			}
			if strings.HasPrefix(string(m), "4p") {
				continue
			}
			if want := "4w" + strconv.Itoa(next); string(m) != want {
				read <- fmt.Errorf("echo %q, want %q", m, want)
				return
			}
			next++
		}
		read <- nil
	}()
	for i := range wsMessages {
		if err := c.WriteMessage(websocket.TextMessage, []byte("4w"+strconv.Itoa(i))); err != nil {
			return err
		}
	}
	if err := <-read; err != nil {
		return fmt.Errorf("session %d: %v", n, err)
	}
	wg.Wait()
	if postErr != nil {
		return postErr
	}
	c.Close()
	select {
	case <-rec.closed:
	case <-ctx.Done():
		return fmt.Errorf("session %d: not closed", n)
	}
	// Every accepted POST was delivered, in order, and every WebSocket
	// message, in order; the close came last (checked by the env).
	var ps, ws []string
	for _, c := range rec.history() {
		switch {
		case strings.HasPrefix(c.data, "p"):
			ps = append(ps, c.data)
		case strings.HasPrefix(c.data, "w"):
			ws = append(ws, c.data)
		}
	}
	if strings.Join(ps, ",") != strings.Join(accepted, ",") {
		return fmt.Errorf("session %d: POSTs delivered %v, accepted %v", n, ps, accepted)
	}
	if len(ws) != wsMessages {
		return fmt.Errorf("session %d: %d WebSocket messages delivered", n, len(ws))
	}
	return nil
}

func TestHandlerOrderAtClose(t *testing.T) {
	// Server.Close while clients send over both transports: OnClose once
	// and last for every session (the env checks).
	e := newEnv(t, engineio.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		sid := e.handshake()
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				r := e.do(ctx, http.MethodPost, poll(sid), strings.NewReader("4a\x1e4b\x1e4c"), http.Header{"Content-Type": {"text/plain;charset=UTF-8"}})
				if r.err != nil || r.status != 200 {
					return
				}
			}
		})
		wg.Go(func() {
			for ctx.Err() == nil {
				if r := e.do(ctx, http.MethodGet, poll(sid), nil, nil); r.err != nil || r.status != 200 || strings.HasSuffix(r.body, "1") {
					return
				}
			}
		})
	}
	for range 3 {
		c, _ := e.wsHandshake()
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := c.WriteMessage(websocket.TextMessage, []byte("4x")); err != nil {
					return
				}
			}
		})
		wg.Go(func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		})
	}
	waitUntil(t, "traffic", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, r := range e.recs {
			if len(r.history()) < 20 {
				return false
			}
		}
		return true
	})
	closeCtx, closeCancel := context.WithTimeout(context.Background(), eventually)
	defer closeCancel()
	if err := e.srv.Close(closeCtx); err != nil {
		t.Errorf("Close: %v", err)
	}
	e.mu.Lock()
	for sid, r := range e.recs {
		if !r.isClosed() {
			t.Errorf("session %s not told by the time Close returned", sid)
		}
	}
	e.mu.Unlock()
	cancel()
	wg.Wait()
}

// reentrant is a Handler that calls back into its session: it closes it
// on "close", sends on "send", and sends from OnClose.
type reentrant struct {
	closed   chan string
	sendErrs chan error
}

func (h reentrant) OnMessage(s *engineio.Session, data []byte, binary bool) {
	switch string(data) {
	case "close":
		s.Close()
		s.Close()
	case "send":
		_ = s.Send(engineio.NewTextMessage([]byte("sent")))
	}
}

func (h reentrant) OnClose(s *engineio.Session, reason string) {
	h.sendErrs <- s.Send(engineio.NewTextMessage([]byte("too late")))
	s.Close()
	h.closed <- reason
}

func TestHandlerReentrant(t *testing.T) {
	h := reentrant{closed: make(chan string, 10), sendErrs: make(chan error, 10)}
	srv, err := engineio.NewServer(engineio.Config{OnSession: func(s *engineio.Session) engineio.Handler {
		// A message sent from OnSession follows the open packet.
		_ = s.Send(engineio.NewTextMessage([]byte("welcome")))
		return h
	}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close(context.Background())
	e := &env{t: t, srv: srv, url: hs.URL + "/engine.io/", wsURL: "ws" + strings.TrimPrefix(hs.URL, "http") + "/engine.io/", hc: hs.Client()}

	r := e.get("EIO=4&transport=polling")
	open, rest, _ := strings.Cut(r.body, "\x1e")
	sid := parseOpen(t, open).SID
	if rest != "4welcome" {
		t.Errorf("handshake payload after the open packet: %q", rest)
	}
	expectReply(t, "POST", e.post(poll(sid), "4send\x1e4close\x1e4send"), 200, "ok")
	expectReply(t, "GET", e.get(poll(sid)), 200, "4sent")
	expectReply(t, "GET", e.get(poll(sid)), 200, "6\x1e1")
	if reason := recvT(t, h.closed); reason != engineio.ReasonForcedClose {
		t.Errorf("OnClose(%q)", reason)
	}
	if err := recvT(t, h.sendErrs); !errors.Is(err, engineio.ErrClosed) {
		t.Errorf("Send in OnClose: %v", err)
	}

	c, sid := e.wsHandshake()
	expectWS(t, c, websocket.TextMessage, "4welcome")
	writeWS(t, c, websocket.TextMessage, "4send")
	writeWS(t, c, websocket.TextMessage, "4close")
	expectWS(t, c, websocket.TextMessage, "4sent")
	expectWSClose(t, c, websocket.CloseNoStatusReceived)
	if reason := recvT(t, h.closed); reason != engineio.ReasonForcedClose {
		t.Errorf("OnClose(%q) of %s", reason, sid)
	}
	<-h.sendErrs
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-h.closed:
		t.Errorf("a second OnClose(%q)", r)
	default:
	}
}

func recvT[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(eventually):
		t.Fatalf("nothing within %v", eventually)
		panic("unreachable")
	}
}
