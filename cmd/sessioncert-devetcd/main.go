// Command sessioncert-devetcd runs a one-member etcd in this process, for
// trying cluster mode on one machine without installing etcd: two
// sessioncert-server replicas can share it. It is a development tool; run
// a real etcd cluster in production.
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jessevdk/go-flags"
	"go.etcd.io/etcd/server/v3/embed"
)

type options struct {
	DataDir string `long:"data-dir" default:"./data-etcd" description:"where etcd keeps its data"`
	Client  string `long:"listen-client" default:"http://127.0.0.1:2379" description:"client URL"`
	Peer    string `long:"listen-peer" default:"http://127.0.0.1:2380" description:"peer URL"`
}

func main() {
	var o options
	if _, err := flags.Parse(&o); err != nil {
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "sessioncert-devetcd:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	client, err := url.Parse(o.Client)
	if err != nil {
		return fmt.Errorf("--listen-client: %w", err)
	}
	peer, err := url.Parse(o.Peer)
	if err != nil {
		return fmt.Errorf("--listen-peer: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "dev"
	cfg.Dir = o.DataDir
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	// Keep a day of history for routers that resume from an old cursor.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "24h"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		return fmt.Errorf("etcd did not become ready")
	}
	fmt.Fprintf(os.Stderr, "etcd serving clients at %s (data in %s); Ctrl-C to stop\n", client, o.DataDir)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
		return nil
	case err := <-e.Err():
		return err
	}
}
