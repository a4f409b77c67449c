package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/internal/devsecret"
	"github.com/herald-rt/herald/socketio"
)

// envConfig is the demo's configuration, read from its environment
// variables (see the package comment).
type envConfig struct {
	Addr string // listen address
	// App is newApp's configuration, without Logger, BundlePath and Redis,
	// which run fills in.
	App appConfig
	// Bundle is the file name of the socket.io-client bundle the page
	// loads, for findBundle.
	Bundle string
	// Redis holds REDIS_URL's options; nil = a single node.
	Redis *redis.Options
	// DevSecretFile is where dev mode keeps its secret (run loads it);
	// empty outside dev mode.
	DevSecretFile string
}

// configFromEnv reads the demo's configuration through getenv (os.Getenv).
// It does no I/O (run loads the dev mode secret), and returns every problem
// it finds at once, each naming its variable.
func configFromEnv(getenv func(string) string) (envConfig, error) {
	var errs []error
	bad := func(name string, err error) { errs = append(errs, fmt.Errorf("%s: %w", name, err)) }
	c := envConfig{Addr: getenv("HERALD_ADDR"), Bundle: "socket.io.min.js"}
	if c.Addr == "" {
		c.Addr = "localhost:3000"
	}
	if s := getenv("HERALD_JWT_SECRET"); s != "" {
		c.App.Secret = []byte(s)
	}
	switch p := getenv("HERALD_PARSER"); p {
	case "", socketio.ParserDefault:
	case socketio.ParserMsgpack:
		c.App.Parser = p
		c.Bundle = "socket.io.msgpack.min.js" // the same client, its parser built in
	default:
		bad("HERALD_PARSER", fmt.Errorf("%q is neither %q nor %q", p, socketio.ParserDefault, socketio.ParserMsgpack))
	}
	jwksURL, issuer := getenv("HERALD_JWKS_URL"), getenv("HERALD_JWT_ISSUER")
	switch {
	case jwksURL != "" && c.App.Secret != nil:
		bad("HERALD_JWKS_URL", errors.New("set it or HERALD_JWT_SECRET, not both"))
	case jwksURL != "" && issuer == "":
		bad("HERALD_JWT_ISSUER", errors.New(`required with HERALD_JWKS_URL: the exact "iss" of the tokens`))
	case jwksURL != "":
		c.App.JWKS = []auth.JWKSIssuer{{Issuer: issuer, URL: jwksURL}}
	default:
		c.App.Issuer = issuer
	}
	if c.App.Secret == nil && jwksURL == "" {
		c.App.DevMode = true
		var err error
		if c.DevSecretFile, err = devsecret.Path(getenv); err != nil {
			bad(devsecret.EnvFile, err)
		}
	}
	switch v := getenv("HERALD_JOB_STATE"); v {
	case "", "on":
	case "off":
		c.App.NoJobState = true
	default:
		bad("HERALD_JOB_STATE", fmt.Errorf("%q is neither on nor off", v))
	}
	if d := getenv("HERALD_RECOVERY"); d != "" {
		var err error
		if c.App.Recovery, err = time.ParseDuration(d); err != nil {
			bad("HERALD_RECOVERY", err)
		}
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
	}{
		{"HERALD_PING_INTERVAL", &c.App.PingInterval},
		{"HERALD_PING_TIMEOUT", &c.App.PingTimeout},
	} {
		if err := parseDuration(getenv(d.name), d.v); err != nil {
			bad(d.name, err)
		}
	}
	if s := getenv("HERALD_HANDSHAKE_RATE"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			bad("HERALD_HANDSHAKE_RATE", fmt.Errorf("%q is not an integer", s))
		case n < -1:
			bad("HERALD_HANDSHAKE_RATE", fmt.Errorf("%d: want handshakes per second, 0 (the default) or -1 (no limit)", n))
		default:
			c.App.HandshakeRate = n
		}
	}
	if s := getenv("HERALD_TRUSTED_PROXIES"); s != "" {
		var err error
		if c.App.TrustedProxies, err = parsePrefixes(s); err != nil {
			bad("HERALD_TRUSTED_PROXIES", err)
		}
	}
	if url := getenv("REDIS_URL"); url != "" {
		var err error
		if c.Redis, err = redis.ParseURL(url); err != nil {
			bad("REDIS_URL", err)
		}
		c.App.RedisMode = adapter.RedisMode(getenv("HERALD_REDIS_MODE"))
		if ttl := getenv("HERALD_NODE_TTL"); ttl != "" {
			if c.App.NodeTTL, err = time.ParseDuration(ttl); err != nil {
				bad("HERALD_NODE_TTL", err)
			}
		}
	}
	return c, errors.Join(errs...)
}

// parseDuration sets *d to s, a Go duration, unless s is empty; 0 means
// the default, a negative duration is an error.
func parseDuration(s string, d *time.Duration) error {
	if s == "" {
		return nil
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return err
	case v < 0:
		return fmt.Errorf("%v is negative", v)
	}
	*d = v
	return nil
}

// parsePrefixes parses a comma-separated list of CIDR prefixes and bare IP
// addresses (a prefix of one address).
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		var p netip.Prefix
		var err error
		switch {
		case entry == "":
			return nil, fmt.Errorf("empty entry in %q", s)
		case strings.Contains(entry, "/"):
			p, err = netip.ParsePrefix(entry)
		default:
			var a netip.Addr
			if a, err = netip.ParseAddr(entry); err == nil {
				if a.Zone() != "" {
					return nil, fmt.Errorf("%q: an address with a zone", entry)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR prefix nor an IP address", entry)
		}
		prefixes = append(prefixes, p)
	}
	return prefixes, nil
}
