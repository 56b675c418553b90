package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runbookdev/runbook/test/sandbox"
)

// The files of the state directory.
func pidPath(dir string) string        { return filepath.Join(dir, "pid") }
func statusPath(dir string) string     { return filepath.Join(dir, "status.json") }
func kubeconfigPath(dir string) string { return filepath.Join(dir, "kubeconfig") }
func daemonLogPath(dir string) string  { return filepath.Join(dir, "logs", "sandbox.log") }

// state is status.json, written by the daemon once the cluster is ready.
type state struct {
	PID        int           `json:"pid"`
	Scenario   string        `json:"scenario"`
	Flavour    string        `json:"flavour"`
	ToolsDir   string        `json:"toolsDir"`
	Kubeconfig string        `json:"kubeconfig"`
	StartedAt  time.Time     `json:"startedAt"`
	ReadyAt    time.Time     `json:"readyAt"`
	Phases     []phaseTiming `json:"phases"`
	// Calico says which Calico components are the real ones, and which stand-ins.
	Calico []sandbox.CalicoComponent `json:"calico"`
}

// printCalico prints which Calico components run for real (with their version)
// and which are stand-ins.
func printCalico(st *state) {
	fmt.Println("  Calico:")
	for _, c := range st.Calico {
		kind := "stand-in"
		switch {
		case c.Real:
			kind = "real " + c.Version
		case c.Absent:
			kind = "absent"
		}
		fmt.Printf("    %-50s %-16s %s\n", c.Name, kind, c.How)
	}
}

type phaseTiming struct {
	Phase    string        `json:"phase"`
	Duration time.Duration `json:"duration"`
}

func readState(dir string) (*state, error) {
	data, err := os.ReadFile(statusPath(dir))
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", statusPath(dir), err)
	}
	return &s, nil
}

func writeState(dir string, s *state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statusPath(dir) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statusPath(dir)) // readers never see a partial file
}

// runningDaemon returns the pid of the daemon serving dir, or 0 if none runs (a
// stale pid file, or a recycled pid now used by another program, counts as none).
func runningDaemon(dir string) (int, error) {
	data, err := os.ReadFile(pidPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", pidPath(dir), err)
	}
	if !isDaemon(pid, dir) {
		return 0, nil
	}
	return pid, nil
}

// isDaemon checks that pid is alive and is `sandbox run` for this directory.
func isDaemon(pid int, dir string) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	hasRun, hasDir := false, false
	for _, a := range args {
		hasRun = hasRun || string(a) == "run"
		hasDir = hasDir || string(a) == "-dir="+dir
	}
	return hasRun && hasDir
}
