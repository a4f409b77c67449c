// Package devsecret keeps the demo's dev-mode signing secret in a file, so
// that tokens handed out before a restart still verify after it: a restart
// must not strand the pages that are open. The demo (examples/server) and
// the token command (examples/token) read the same file.
//
// The secret is for development only: it lives in the user's cache
// directory, readable by that user alone.
package devsecret

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// EnvFile is the environment variable that names the file; empty means
// DefaultPath.
const EnvFile = "HERALD_DEV_SECRET_FILE"

// Size is the secret's length in bytes; the file holds it hex-encoded.
const Size = 32

// ErrBadFile is returned by Read for a file that does not hold a secret
// written by Load.
var ErrBadFile = errors.New("devsecret: not a dev secret file")

// DefaultPath returns $XDG_CACHE_HOME/herald/dev-secret, or its equivalent
// on the platform (os.UserCacheDir).
func DefaultPath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("devsecret: %w (set %s)", err, EnvFile)
	}
	return filepath.Join(dir, "herald", "dev-secret"), nil
}

// Path returns the file named by getenv(EnvFile), or DefaultPath.
func Path(getenv func(string) string) (string, error) {
	if p := getenv(EnvFile); p != "" {
		return p, nil
	}
	return DefaultPath()
}

// Read returns the secret kept in path. It fails with an error wrapping
// fs.ErrNotExist when there is none yet, and with ErrBadFile when the file
// holds something else.
func Read(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devsecret: %w", err)
	}
	secret, err := hex.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil || len(secret) != Size {
		return nil, fmt.Errorf("%w: %s does not hold %d hex-encoded bytes", ErrBadFile, path, Size)
	}
	return secret, nil
}

// Load returns the secret kept in path, creating the file (and its
// directory) with a new random secret when there is none. created reports
// whether it did. A file that holds something else is an error (ErrBadFile),
// not overwritten: it may be someone's.
func Load(path string) (secret []byte, created bool, err error) {
	secret, err = Read(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, false, err
	}
	secret = make([]byte, Size)
	if _, err := rand.Read(secret); err != nil {
		return nil, false, fmt.Errorf("devsecret: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("devsecret: %w", err)
	}
	// Written under another name and linked into place, so that two
	// processes starting at once agree on one secret: the loser of the
	// race reads the winner's.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dev-secret-*")
	if err != nil {
		return nil, false, fmt.Errorf("devsecret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(secret) + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("devsecret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			secret, err = Read(path)
			return secret, false, err
		}
		return nil, false, fmt.Errorf("devsecret: %w", err)
	}
	return secret, true, nil
}
