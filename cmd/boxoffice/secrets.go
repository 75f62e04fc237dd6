package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// secretBytes is the entropy of a generated secret (256 bits).
const secretBytes = 32

// loadOrCreateSecret returns the secret stored at path, creating it first
// with crypto/rand when there is none. The file is mode 0600 in a 0700
// directory and is written atomically (temporary file, fsync, rename), so a
// secret once handed out is the same after any restart or crash.
func loadOrCreateSecret(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		secret := strings.TrimSpace(string(data))
		if len(secret) < secretBytes {
			return "", fmt.Errorf("secret %s is shorter than %d bytes; delete it to generate a new one", path, secretBytes)
		}
		return secret, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read secret: %w", err)
	}
	buf := make([]byte, secretBytes)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails (Go 1.24+)
	// Hex, not base64url: a secret that began with "-" would be read as a
	// flag by `--admin-token $(cat …)` (it broke our own tests, 1 run in 64).
	secret := hex.EncodeToString(buf)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("secrets directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create secret: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("create secret: %w", err)
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write secret: %w", err)
	}
	// Link, not rename: if another process created the secret meanwhile,
	// keep theirs rather than replace a secret that may be in use.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadOrCreateSecret(path)
		}
		return "", fmt.Errorf("store secret: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new name durable
		d.Close()
	}
	return secret, nil
}
