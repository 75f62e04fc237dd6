package main

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/boxoffice/boxoffice/persistence"
)

// Operator snapshots (API.md POST /v1/admin/snapshots): a consistent Pebble
// checkpoint of the journal, streamed as a tar archive whose entries are
// under "journal/". `boxoffice restore` unpacks one into a new data
// directory and verifies it before it takes the journal's place.

// snapshotRoot is the top directory of every entry in a snapshot archive.
const snapshotRoot = "journal"

// writeSnapshot checkpoints store into a scratch directory inside dataDir
// (the same filesystem: Pebble hard-links what it can) and writes it to w
// as a tar archive; the scratch copy is removed afterwards.
func writeSnapshot(store *persistence.Store, dataDir string, w io.Writer) error {
	scratchRoot := filepath.Join(dataDir, "snapshots-in-progress")
	if err := os.MkdirAll(scratchRoot, 0o700); err != nil {
		return fmt.Errorf("snapshot scratch directory: %w", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	scratch := filepath.Join(scratchRoot, hex.EncodeToString(b[:]))
	defer os.RemoveAll(scratch)
	dir := filepath.Join(scratch, snapshotRoot)
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return fmt.Errorf("snapshot scratch directory: %w", err)
	}
	if err := store.Checkpoint(dir); err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(scratch, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname, hdr.Uid, hdr.Gid = "", "", 0, 0
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("snapshot archive: %w", err)
	}
	return tw.Close()
}

type snapshotCmd struct {
	Target     string        `required:"" env:"BOXOFFICE_TARGET" help:"Base URL of the running server, e.g. http://localhost:8080."`
	Out        string        `required:"" type:"path" help:"Archive file to write (tar); written to FILE.partial first, renamed when complete."`
	AdminToken string        `env:"BOXOFFICE_ADMIN_TOKEN" help:"The server's admin token (DATA/secrets/admin-token)."`
	Timeout    time.Duration `default:"30m" help:"Give up after this long."`
}

// Run downloads a snapshot from a running server.
func (c *snapshotCmd) Run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.Target, "/")+"/v1/admin/snapshots", nil)
	if err != nil {
		return fmt.Errorf("--target: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("snapshot: the server answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	partial := c.Out + ".partial"
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(partial) // a no-op once renamed
	start := time.Now()
	n, err := io.Copy(f, &progressReader{r: resp.Body, out: out, every: 64 << 20})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot: write %s: %w", partial, err)
	}
	if err := os.Rename(partial, c.Out); err != nil {
		return err
	}
	fmt.Fprintf(out, "snapshot written to %s: %s in %s\n", c.Out, byteSize(n), time.Since(start).Round(time.Millisecond))
	return nil
}

// progressReader prints how much was read every `every` bytes.
type progressReader struct {
	r          io.Reader
	out        io.Writer
	n, every   int64
	nextReport int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n >= p.nextReport+p.every {
		p.nextReport = p.n
		fmt.Fprintf(p.out, "… %s\n", byteSize(p.n))
	}
	return n, err
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

type restoreCmd struct {
	From      string `required:"" type:"existingfile" help:"Snapshot archive (from boxoffice snapshot)."`
	Data      string `required:"" env:"BOXOFFICE_DATA" help:"Data directory to restore into; it must not have a journal yet."`
	LogFormat string `default:"text" enum:"text,json" env:"BOXOFFICE_LOG_FORMAT" help:"Log format: text or json."`
}

// Run unpacks the archive into DATA/journal.restoring, verifies every
// event's journal, and only then moves it to DATA/journal.
func (c *restoreCmd) Run(out io.Writer) error {
	return restore(c.From, c.Data, out, newLogger(os.Stderr, c.LogFormat, slog.LevelWarn))
}

func restore(archive, dataDir string, out io.Writer, log *slog.Logger) error {
	final := filepath.Join(dataDir, snapshotRoot)
	if _, err := os.Stat(final); err == nil {
		return fmt.Errorf("%s already has a journal: restore into a new data directory", dataDir)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	staging := filepath.Join(dataDir, "journal.restoring")
	if err := os.RemoveAll(staging); err != nil {
		return err
	}
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	files, err := untar(f, staging)
	if err != nil {
		os.RemoveAll(staging)
		return fmt.Errorf("restore %s: %w", archive, err)
	}
	fmt.Fprintf(out, "unpacked %d files; verifying\n", files)
	// verify reads DATA/journal: point it at the staging copy's parent
	// through a temporary name.
	if err := verifyDir(staging, out, log); err != nil {
		os.RemoveAll(staging)
		return fmt.Errorf("the snapshot does not verify, nothing restored: %w", err)
	}
	if err := os.Rename(staging, final); err != nil {
		return err
	}
	if err := syncDir(dataDir); err != nil {
		return err
	}
	fmt.Fprintf(out, "restored into %s; start it with: boxoffice serve --data %s\n", final, dataDir)
	return nil
}

// untar unpacks a snapshot archive into dir: only directories and regular
// files under journal/, no links, no absolute or escaping paths.
func untar(r io.Reader, dir string) (files int, err error) {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return files, fmt.Errorf("not a snapshot archive: %w", err)
		}
		name := path.Clean(hdr.Name)
		rel, ok := strings.CutPrefix(name, snapshotRoot)
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) || strings.Contains(name, "..") || path.IsAbs(name) {
			return files, fmt.Errorf("unexpected entry %q: a snapshot holds only %s/", hdr.Name, snapshotRoot)
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return files, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return files, err
			}
			if err := writeFileSynced(target, tr); err != nil {
				return files, err
			}
			files++
		default:
			return files, fmt.Errorf("unexpected entry %q of type %c", hdr.Name, hdr.Typeflag)
		}
	}
	if files == 0 {
		return 0, errors.New("the archive holds no journal files")
	}
	return files, nil
}

func writeFileSynced(name string, r io.Reader) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
