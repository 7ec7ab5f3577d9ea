// Command sessioncert-server is the sessioncert controller: it logs
// identities in, keeps their API sessions and issues API Session
// Certificates over HTTPS.
//
// This main is written by hand rather than generated: it gives the listener
// sessioncert's own defaults (HTTPS on 127.0.0.1:1280 with the development
// PKI), reads every flag from the environment too, and builds the whole
// application through pkg/server so that tests run exactly what ships.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jessevdk/go-flags"

	"github.com/sessioncert/sessioncert/pkg/handlers"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/version"
)

// other holds the flags that are not server settings.
type other struct {
	Config  string `long:"config" env:"SESSIONCERT_CONFIG"`
	Version bool   `long:"version" description:"print the version, revision and build date, and exit"`
}

const configHelp = "YAML (.yaml, .yml) or INI file of settings; flags and environment override it"

func main() {
	os.Exit(run())
}

func run() int {
	var cfg server.Config
	var more other
	p, err := server.NewParser(&cfg, flags.Default)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := p.AddGroup("Other", "", &more); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p.FindOptionByLongName("config").Description = configHelp
	// --version answers whatever else is wrong, a broken --config included.
	if versionArg(os.Args[1:]) {
		printVersion()
		return 0
	}
	if path := server.ConfigFileArg(os.Args[1:]); path != "" {
		if err := server.ApplyConfigFile(p, path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	if _, err := p.Parse(); err != nil {
		var fe *flags.Error
		if errors.As(err, &fe) && errors.Is(fe.Type, flags.ErrHelp) {
			return 0
		}
		return 2
	}
	if more.Version {
		printVersion()
		return 0
	}

	log := newLogger(cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	srv, err := server.New(cfg, server.Deps{
		Logger: log,
		Version: handlers.VersionInfo{
			Version: version.Version, Revision: version.Revision, BuildDate: version.BuildDate,
		},
	})
	if err != nil {
		log.Error("start failed", slog.Any("error", err))
		return 1
	}
	code := 0
	ln, err := srv.Listen()
	if err == nil {
		err = srv.Serve(ctx, ln)
	}
	if err != nil {
		log.Error("serve failed", slog.Any("error", err))
		code = 1
	}
	if err := srv.Close(); err != nil {
		log.Error("close failed", slog.Any("error", err))
		code = 1
	}
	log.Info("stopped")
	return code
}

// versionArg reports whether the command line asks for --version before
// any "--".
func versionArg(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--version":
			return true
		}
	}
	return false
}

func printVersion() {
	fmt.Printf("sessioncert-server %s (revision %s, built %s)\n",
		version.Version, version.Revision, version.BuildDate)
}

func newLogger(c server.LogConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: server.LogLevel(c)}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
