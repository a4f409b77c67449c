// Command token mints a development token: an HS256 JWT whose "sub" is the
// user id, as a login service would issue for herald.
//
//	go run ./examples/token -user alice            # for `make demo` in dev mode
//	HERALD_JWT_SECRET=... go run ./examples/token -user alice -ttl 1h
//
// The secret is HERALD_JWT_SECRET when it is set; otherwise the demo's dev
// secret file (HERALD_DEV_SECRET_FILE, default
// $XDG_CACHE_HOME/herald/dev-secret), created if the demo has not run yet,
// so that the token verifies with the demo's dev mode. The token goes to
// standard output alone, for TOKEN=$(go run ./examples/token -user alice).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/internal/devsecret"
)

func main() {
	err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "token:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "the user id (the token's \"sub\"); required")
	ttl := fs.Duration("ttl", 12*time.Hour, "how long the token is valid")
	secretFile := fs.String("secret-file", "", "dev secret file (default $"+devsecret.EnvFile+" or $XDG_CACHE_HOME/herald/dev-secret); ignored when HERALD_JWT_SECRET is set")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: token -user ID [-ttl 12h] [-secret-file PATH]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || fs.NArg() > 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	secret := []byte(getenv("HERALD_JWT_SECRET"))
	if len(secret) == 0 {
		path := *secretFile
		if path == "" {
			var err error
			if path, err = devsecret.Path(getenv); err != nil {
				return err
			}
		}
		var err error
		if secret, _, err = devsecret.Load(path); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "signed with the dev secret in %s\n", path)
	}
	tok, err := auth.NewHMACToken(secret, *user, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
