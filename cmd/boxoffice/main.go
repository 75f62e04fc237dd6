package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"

	"github.com/alecthomas/kong"
)

// cli is the command line: one binary, several subcommands.
type cli struct {
	Serve    serveCmd    `cmd:"" help:"Serve the HTTP API."`
	Verify   verifyCmd   `cmd:"" help:"Replay every event's journal and report corruption (exit 1)."`
	Snapshot snapshotCmd `cmd:"" help:"Download a consistent snapshot (tar of a Pebble checkpoint) from a running server."`
	Restore  restoreCmd  `cmd:"" help:"Restore a snapshot into a new data directory, verifying it first."`
	Load     loadCmd     `cmd:"" help:"Play a flash sale against a running server and audit it for overselling (exit 1 when the audit fails)."`
}

type serveCmd struct {
	Options   `embed:""`
	GCPercent int `name:"gc-percent" default:"400" env:"BOXOFFICE_GC_PERCENT" help:"Go garbage collector target (GOGC, percent of the live heap allocated between collections); GOGC in the environment wins. The default trades memory (a heap up to 5x the live one) for CPU: docs/BENCHMARKS.md."`
}

// Run serves until ctx is cancelled (SIGINT, SIGTERM) or the HTTP server
// fails, then shuts down gracefully.
func (c *serveCmd) Run(ctx context.Context) error {
	if c.GCPercent <= 0 || c.GCPercent > math.MaxInt32 {
		return fmt.Errorf("--gc-percent must be a percentage from 1 to %d, not %d", math.MaxInt32, c.GCPercent)
	}
	gc := "--gc-percent " + strconv.Itoa(c.GCPercent)
	if env := os.Getenv("GOGC"); env != "" {
		gc = "GOGC=" + env + " from the environment"
	} else {
		debug.SetGCPercent(c.GCPercent)
	}
	m := &Main{Options: c.Options}
	if err := m.Run(ctx); err != nil {
		return err
	}
	m.log.Info("garbage collector target", "gc", gc)
	var serveErr error
	select {
	case <-ctx.Done():
		m.log.Info("shutting down")
	case serveErr = <-m.served:
		m.served <- serveErr // Close waits for it too
	}
	return errors.Join(serveErr, m.Close())
}

type verifyCmd struct {
	Data      string `default:"./data" env:"BOXOFFICE_DATA" help:"Data directory to verify (the server must not be running on it)."`
	LogFormat string `default:"text" enum:"text,json" env:"BOXOFFICE_LOG_FORMAT" help:"Log format: text or json."`
}

func (c *verifyCmd) Run(out io.Writer) error {
	// Pebble's replay chatter is noise here; warnings and errors still show.
	return verify(c.Data, out, newLogger(os.Stderr, c.LogFormat, slog.LevelWarn))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var args cli
	k := kong.Parse(&args,
		kong.Name("boxoffice"),
		kong.Description("Seat booking for flash ticket sales."),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.BindTo(io.Writer(os.Stdout), (*io.Writer)(nil)),
		kong.UsageOnError(),
		kong.Exit(func(code int) {
			// kong exits 80 on a usage error; 2 is what shells expect.
			if code == 80 {
				code = 2
			}
			os.Exit(code)
		}),
	)
	if err := k.Run(); err != nil {
		if !errors.Is(err, errUnclean) {
			fmt.Fprintln(os.Stderr, "boxoffice:", err)
		}
		stop()
		os.Exit(1)
	}
}
