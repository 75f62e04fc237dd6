package main

import (
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// Review (attack 2) of serve --gc-percent and the hex secrets.

// runGCPercent runs serve with --gc-percent v and an invalid
// --snapshot-every, so that Main.Run fails before it touches the data
// directory, and returns the GC target the process was left with (then
// restored).
func runGCPercent(t *testing.T, v int) (int, error) {
	t.Helper()
	t.Setenv("GOGC", "") // as if unset: the flag applies
	data := filepath.Join(t.TempDir(), "data")
	prev := debug.SetGCPercent(100)
	err := (&serveCmd{GCPercent: v, Options: Options{Data: data, SnapshotEvery: -1, LogFormat: "text"}}).Run(t.Context())
	got := debug.SetGCPercent(prev)
	if _, statErr := os.Stat(data); statErr == nil {
		t.Errorf("--gc-percent %d: the data directory was created", v)
	}
	return got, err
}

// TestAttack2GCPercentWrapsAround (failed before the upper bound; a
// regression test now). --gc-percent is an int
// checked only for <= 0, but runtime/debug.SetGCPercent converts it to
// int32: 2147483648 turns the collector off (a negative target), 4294967296
// makes it 0 (a collection after every allocation step), 4294967396 is 100.
// All are accepted without a word.
func TestAttack2GCPercentWrapsAround(t *testing.T) {
	var bad []string
	for _, v := range []int{1 << 31, 1 << 32, 1<<32 + 100} {
		got, err := runGCPercent(t, v)
		if err == nil || !strings.Contains(err.Error(), "--snapshot-every") {
			// Refused with its own error: fine.
			continue
		}
		if got != v {
			bad = append(bad, "--gc-percent "+strconv.Itoa(v)+" accepted and set the GC target to "+strconv.Itoa(got))
		}
	}
	if len(bad) > 0 {
		t.Fatal(strings.Join(bad, "\n"))
	}
}

// TestAttack2GCPercentValues: what the flag and its variable accept.
// Holds: 0 and -1 are refused (before the data directory is created), a
// non-number or an overflow is a usage error, the default is 400, an
// ordinary value is applied, GOGC in the environment wins (the flag then
// changes nothing). Kong reads integers with base prefixes, so "0400" is
// octal 256 and "0x190" is 400 (a quirk of every int flag, noted).
func TestAttack2GCPercentValues(t *testing.T) {
	for _, v := range []int{0, -1, -400} {
		if _, err := runGCPercent(t, v); err == nil || !strings.Contains(err.Error(), "--gc-percent must be a percentage from 1 to") {
			t.Errorf("--gc-percent %d: %v", v, err)
		}
	}
	if got, err := runGCPercent(t, 250); err == nil || got != 250 {
		t.Errorf("--gc-percent 250: target %d (%v)", got, err)
	}

	parse := func(args []string, env map[string]string) (int, error) {
		for k, v := range env {
			t.Setenv(k, v)
		}
		var c cli
		k, err := kong.New(&c)
		if err != nil {
			t.Fatal(err)
		}
		_, err = k.Parse(append([]string{"serve"}, args...))
		for k := range env {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
		return c.Serve.GCPercent, err
	}
	for _, args := range [][]string{{"--gc-percent", "abc"}, {"--gc-percent", "1e3"}, {"--gc-percent", "4.5"},
		{"--gc-percent", "99999999999999999999"}, {"--gc-percent", "-1"}} {
		if v, err := parse(args, nil); err == nil {
			t.Errorf("%v accepted as %d", args, v)
		}
	}
	if _, err := parse(nil, map[string]string{"BOXOFFICE_GC_PERCENT": "lots"}); err == nil {
		t.Error("BOXOFFICE_GC_PERCENT=lots accepted")
	}
	if v, err := parse([]string{"--gc-percent=-1"}, nil); err != nil || v != -1 {
		t.Errorf("--gc-percent=-1 parsed as %d %v (Run then refuses it)", v, err)
	}
	if v, _ := parse(nil, map[string]string{"BOXOFFICE_GC_PERCENT": "0400"}); v != 256 {
		t.Errorf("BOXOFFICE_GC_PERCENT=0400 read as %d", v)
	} else {
		t.Logf("note: BOXOFFICE_GC_PERCENT=0400 is read as octal: %d", v)
	}

	// GOGC wins: the flag leaves the runtime's target alone.
	t.Setenv("GOGC", "77")
	prev := debug.SetGCPercent(123)
	err := (&serveCmd{GCPercent: 250, Options: Options{Data: filepath.Join(t.TempDir(), "d"), SnapshotEvery: -1}}).Run(t.Context())
	if got := debug.SetGCPercent(prev); got != 123 || err == nil {
		t.Errorf("with GOGC set, --gc-percent 250 changed the target to %d (%v)", got, err)
	}
}

// TestAttack2LegacySecrets: secret files written before the switch to hex
// (43 base64url characters, possibly beginning with '-') load unchanged and
// work as the admin token; a token beginning with '-' passes as
// --admin-token=VALUE or BOXOFFICE_ADMIN_TOKEN (not as a separate argument:
// kong takes it for a short flag, as the commit says). Short or empty
// files are refused with a message that names the file. Holds.
func TestAttack2LegacySecrets(t *testing.T) {
	const legacy = "-Zx_9aQ0bW1cE2dF3gH4iJ5kL6mN7oP8qR9sT0uV1wX" // 43 chars, base64url
	data := t.TempDir()
	secrets := filepath.Join(data, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"admin-token", "session-secret", "admission-key", "webhook-secret"} {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(legacy+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := startMain(t, Options{Data: data, AnonymousSessions: true})
	if m.AdminToken() != legacy {
		t.Fatalf("admin token %q, want the legacy file's %q", m.AdminToken(), legacy)
	}
	for _, name := range []string{"admin-token", "session-secret", "admission-key", "webhook-secret"} {
		b, _ := os.ReadFile(filepath.Join(secrets, name))
		if string(b) != legacy+"\n" {
			t.Errorf("%s rewritten: %q", name, b)
		}
	}
	c := client{t: t, base: m.Addr()}
	if status, body := c.do(http.MethodGet, "/v1/admin/reservations/nope", legacy, ""); status != http.StatusNotFound {
		t.Fatalf("the legacy admin token: want 404 reservation_not_found: %d %s", status, body)
	}
	if status, _ := c.do(http.MethodGet, "/v1/admin/reservations/nope", "wrong-token", ""); status != http.StatusUnauthorized && status != http.StatusForbidden {
		t.Fatalf("a wrong admin token: %d", status)
	}
	if status, body := c.do(http.MethodPost, "/v1/sessions", "", ""); status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("sessions with the legacy session secret: %d %s", status, body)
	}

	// A '-' token on the command line.
	parse := func(args ...string) (string, error) {
		var cl cli
		k, err := kong.New(&cl)
		if err != nil {
			t.Fatal(err)
		}
		_, err = k.Parse(append([]string{"serve"}, args...))
		return cl.Serve.AdminToken, err
	}
	if v, err := parse("--admin-token=" + legacy); err != nil || v != legacy {
		t.Errorf("--admin-token=%s: %q %v", legacy, v, err)
	}
	if _, err := parse("--admin-token", legacy); err == nil {
		t.Log("note: --admin-token -… as two arguments now parses")
	}
	t.Setenv("BOXOFFICE_ADMIN_TOKEN", legacy)
	if v, err := parse(); err != nil || v != legacy {
		t.Errorf("BOXOFFICE_ADMIN_TOKEN=%s: %q %v", legacy, v, err)
	}

	// Short, empty, whitespace-only files: a clear error naming the file.
	for _, content := range []string{"", "\n", "   \n", "abc\n", strings.Repeat("f", 31) + "\n"} {
		p := filepath.Join(t.TempDir(), "s")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadOrCreateSecret(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "delete it") {
			t.Errorf("secret file %q: %v", content, err)
		}
	}
	// Observation, not a failure: the length check counts characters, so a
	// hex secret cut to 32 of its 64 characters (128 of 256 bits) passes.
	p := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(p, []byte(strings.Repeat("a", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := loadOrCreateSecret(p); err == nil {
		t.Logf("note: a 32-character hex secret (half of the 64 generated) is accepted: %q", s)
	}
}
