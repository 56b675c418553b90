package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/scenarios"
)

// keep lists what `up` leaves in the state directory when it clears the previous
// cluster's state (hack/sandbox.sh builds the binaries into bin/).
var keep = map[string]bool{"bin": true}

// up starts the daemon detached and waits until the cluster is ready. A running
// sandbox is left alone.
func up(ctx context.Context, c config) error {
	if err := validate(&c); err != nil {
		return err
	}
	if pid, err := runningDaemon(c.dir); err != nil {
		return err
	} else if pid != 0 {
		return alreadyRunning(c, pid)
	}
	if err := clearState(c.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(daemonLogPath(c.dir)), 0o755); err != nil {
		return err
	}
	logFile, err := os.OpenFile(daemonLogPath(c.dir), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "run", "-dir="+c.dir, "-tools="+c.tools, "-scenario="+c.scenario,
		"-flavour="+c.flavour, "-timeout="+c.timeout.String())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own session: the daemon outlives this command and the terminal, and `down`
	// can signal its whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the daemon: %w", err)
	}
	fmt.Printf("sandbox: starting (pid %d, scenario %s, flavour %s, logs in %s)\n",
		cmd.Process.Pid, c.scenario, c.flavour, filepath.Dir(daemonLogPath(c.dir)))
	if summary := sandbox.OperatorFlavourSummary(c.flavour); summary != "" {
		fmt.Printf("sandbox: flavour %s models %s\n", c.flavour, summary)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	startTimeout := c.timeout
	if sc, err := scenarios.Load(c.scenario); err == nil {
		startTimeout = max(c.timeout, sandbox.StartTimeout(sc))
	}
	deadline := time.After(startTimeout + 30*time.Second) // the daemon enforces startTimeout itself
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("the daemon exited (%v) before the cluster was ready:\n%s", err, tail(daemonLogPath(c.dir), 25))
		case <-deadline:
			return fmt.Errorf("cluster not ready after %v (still starting, pid %d); see %s", startTimeout, cmd.Process.Pid, daemonLogPath(c.dir))
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
			st, err := readState(c.dir)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			for _, p := range st.Phases {
				fmt.Printf("  %-28s %v\n", p.Phase, p.Duration.Round(time.Millisecond))
			}
			printCalico(st)
			fmt.Printf("sandbox: ready in %v\n", time.Since(started).Round(100*time.Millisecond))
			printUsage(c.dir, c.flavour)
			return nil
		}
	}
}

// alreadyRunning leaves a running sandbox alone, but says so when it was started
// with another scenario or flavour than asked for now.
func alreadyRunning(c config, pid int) error {
	if st, err := readState(c.dir); err == nil && (st.Scenario != c.scenario || st.Flavour != c.flavour) {
		return fmt.Errorf("already running (pid %d) with scenario %s, flavour %s; stop it first (make sandbox-down) to start scenario %s, flavour %s",
			pid, st.Scenario, st.Flavour, c.scenario, c.flavour)
	}
	fmt.Printf("sandbox: already running (pid %d); nothing to do\n", pid)
	printUsage(c.dir, c.flavour)
	return nil
}

// validate rejects bad flags before anything starts, and makes a scenario file
// path absolute for the daemon.
func validate(c *config) error {
	if c.tools == "" {
		return errors.New("no tools directory: pass -tools or set RUNBOOK_TOOLS_DIR (bash hack/build-tools.sh --print-dir)")
	}
	if err := sandbox.CheckFlavour(c.flavour); err != nil {
		return err
	}
	if _, err := scenarios.Load(c.scenario); err != nil {
		return err
	}
	if strings.ContainsRune(c.scenario, '/') || filepath.Ext(c.scenario) != "" {
		abs, err := filepath.Abs(c.scenario)
		if err != nil {
			return err
		}
		c.scenario = abs
	}
	return nil
}

// clearState removes the previous cluster's state (etcd data, certificates, logs).
func clearState(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("clearing old state: %w", err)
		}
	}
	return nil
}

func printUsage(dir, flavour string) {
	kubectl := "kubectl"
	if _, err := os.Stat(filepath.Join(dir, "bin", "kubectl")); err == nil {
		kubectl = filepath.Join(dir, "bin", "kubectl")
	}
	fmt.Printf(`
  export KUBECONFIG=%s
  %s get nodes,pods -A -o wide
  %s get ippools.crd.projectcalico.org,ipamblocks.crd.projectcalico.org
  make sandbox-down     # stop it (make sandbox-up again starts a fresh cluster)
`, kubeconfigPath(dir), kubectl, kubectl)
	if flavour != sandbox.FlavourCRD {
		fmt.Printf("  %s get ippools.projectcalico.org   # the v3 API of the Calico API server\n", kubectl)
	}
	if sandbox.IsOperatorFlavour(flavour) {
		fmt.Printf("  %s get installation default -o yaml; %s get tigerastatus,apiserver\n", kubectl, kubectl)
	}
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
