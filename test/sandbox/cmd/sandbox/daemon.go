package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/scenarios"
)

// daemon runs the cluster in the foreground until SIGTERM or SIGINT, then stops it
// in order (apiserver and etcd last). Its output is the daemon log.
func daemon(c config) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := log.New(os.Stderr, "", log.LstdFlags)

	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(pidPath(c.dir), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing pid file: %w", err)
	}
	defer func() {
		_ = os.Remove(statusPath(c.dir))
		_ = os.Remove(pidPath(c.dir))
	}()

	sc, err := scenarios.Load(c.scenario)
	if err != nil {
		return err
	}
	started := time.Now()
	logger.Printf("starting: scenario %s, flavour %s, tools %s", sc.Name, c.flavour, c.tools)
	startCtx, cancel := context.WithTimeout(ctx, max(c.timeout, sandbox.StartTimeout(sc)))
	defer cancel()
	cluster, err := sandbox.Start(startCtx, sandbox.Options{
		ToolsDir: c.tools,
		WorkDir:  c.dir,
		Scenario: sc,
		Flavour:  c.flavour,
		Progress: os.Stderr,
	})
	if err != nil {
		return err
	}
	st := &state{
		PID:        os.Getpid(),
		Scenario:   c.scenario,
		Flavour:    c.flavour,
		ToolsDir:   c.tools,
		Kubeconfig: cluster.KubeconfigPath(),
		StartedAt:  started,
		ReadyAt:    time.Now(),
	}
	for _, t := range cluster.Timings() {
		st.Phases = append(st.Phases, phaseTiming{Phase: t.Phase, Duration: t.Duration})
	}
	st.Calico = cluster.CalicoComponents()
	for _, c := range st.Calico {
		logger.Printf("calico: %s: real=%v %s (%s)", c.Name, c.Real, c.Version, c.How)
	}
	if err := writeState(c.dir, st); err != nil {
		err = fmt.Errorf("writing status: %w", err)
		return errors.Join(err, cluster.Stop(context.Background()))
	}
	logger.Printf("ready in %v", st.ReadyAt.Sub(started).Round(time.Millisecond))

	<-ctx.Done()
	logger.Printf("stopping")
	stopStart := time.Now()
	stopCtx, cancelStop := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelStop()
	if err := cluster.Stop(stopCtx); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	logger.Printf("stopped in %v", time.Since(stopStart).Round(time.Millisecond))
	return nil
}
