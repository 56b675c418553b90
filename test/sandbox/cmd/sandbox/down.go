package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/runbookdev/runbook/test/sandbox"
)

// down stops the daemon with SIGTERM (it shuts the cluster down in order) and waits.
// If the daemon does not exit in time, its whole process group is killed, which
// takes etcd and the apiserver with it. Stopping a stopped sandbox is a no-op.
func down(c config) error {
	pid, err := runningDaemon(c.dir)
	if err != nil {
		return err
	}
	if pid == 0 {
		// A crashed daemon leaves its pid file behind.
		if err := os.Remove(pidPath(c.dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		// A crashed daemon's network-guard routes, unless another sandbox needs them.
		if err := sandbox.PruneNetworkGuard(); err != nil {
			return err
		}
		fmt.Println("sandbox: not running; nothing to do")
		return nil
	}
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signalling pid %d: %w", pid, err)
	}
	if waitGone(pid, c.dir, c.timeout) {
		fmt.Printf("sandbox: stopped in %v (logs kept in %s)\n", time.Since(start).Round(100*time.Millisecond), c.dir+"/logs")
		return nil
	}
	// Setsid made the daemon its process group's leader.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing process group %d: %w", pid, err)
	}
	if !waitGone(pid, c.dir, 10*time.Second) {
		return fmt.Errorf("pid %d survived SIGKILL", pid)
	}
	_ = os.Remove(pidPath(c.dir))
	fmt.Printf("sandbox: did not stop within %v; killed\n", c.timeout)
	// The killed daemon could not give its network-guard routes back.
	return sandbox.PruneNetworkGuard()
}

// waitGone waits until the daemon process is gone (a zombie counts as gone).
func waitGone(pid int, dir string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !isDaemon(pid, dir) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
