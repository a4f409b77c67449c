package socketio

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// ipLimiter is a token bucket per client address: Config.HandshakeRate
// handshakes a second, in bursts of as many. Buckets idle for a while are
// forgotten, so its size follows the addresses seen recently.
type ipLimiter struct {
	rate int

	mu      sync.Mutex
	buckets map[string]*ipBucket
	swept   time.Time
}

type ipBucket struct {
	tokens float64
	filled time.Time
}

// ipIdle is how long a full bucket is kept; maxIPBuckets bounds the map.
const (
	ipIdle       = 10 * time.Second
	maxIPBuckets = 100_000
)

func newIPLimiter(rate int) *ipLimiter {
	return &ipLimiter{rate: rate, buckets: make(map[string]*ipBucket)}
}

// allow takes a token from ip's bucket.
func (l *ipLimiter) allow(ip string, now time.Time) bool {
	if l == nil || l.rate < 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > ipIdle || len(l.buckets) >= maxIPBuckets {
		for k, b := range l.buckets {
			if now.Sub(b.filled) > ipIdle {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[ip]
	if b == nil {
		if len(l.buckets) >= maxIPBuckets {
			return false // under a flood of addresses: new ones wait for a sweep
		}
		b = &ipBucket{tokens: float64(l.rate), filled: now}
		l.buckets[ip] = b
	}
	b.tokens = min(float64(l.rate), b.tokens+now.Sub(b.filled).Seconds()*float64(l.rate))
	b.filled = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// clientIP returns the address a handshake is counted under:
// Config.ClientIP's answer, or the TCP peer's host.
func (s *Server) clientIP(r *http.Request) string {
	if r == nil {
		return ""
	}
	if s.cfg.ClientIP != nil {
		return s.cfg.ClientIP(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// pendingConns counts, per client address, the connections that have not
// joined a namespace yet (Config.MaxPendingConnections): what an address
// can hold open without ever authenticating.
type pendingConns struct {
	max int

	mu sync.Mutex
	n  map[string]int
}

func newPendingConns(max int) *pendingConns {
	return &pendingConns{max: max, n: make(map[string]int)}
}

// full reports whether ip holds its maximum of pending connections. It is
// checked before a connection opens and counted once it has: concurrent
// handshakes of one address may pass the maximum by as many.
func (p *pendingConns) full(ip string) bool {
	if p.max < 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[ip] >= p.max
}

func (p *pendingConns) add(ip string) {
	p.mu.Lock()
	p.n[ip]++
	p.mu.Unlock()
}

func (p *pendingConns) done(ip string) {
	p.mu.Lock()
	if p.n[ip] <= 1 {
		delete(p.n, ip)
	} else {
		p.n[ip]--
	}
	p.mu.Unlock()
}
