package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is a Component backed by one binary from the tools directory, logging to
// its own file (appended across restarts).
type process struct {
	name    string
	path    string
	args    []string
	env     []string // added to the sandbox's environment
	logPath string
	// stopTimeout bounds the wait after SIGTERM before SIGKILL.
	stopTimeout time.Duration

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

func (p *process) Name() string { return p.name }

// Args returns the command line the process runs with (without the binary).
func (p *process) Args() []string { return append([]string(nil), p.args...) }

// PID returns the running process's id, or 0.
func (p *process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

func (p *process) runningLocked() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Start launches the binary; it does not wait for readiness (callers wait on the
// effect they need, e.g. nodes Ready).
func (p *process) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runningLocked() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: opening log: %w", p.name, err)
	}
	// Not exec.CommandContext: the process must outlive the start call's context.
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = log, log
	if len(p.env) > 0 {
		cmd.Env = append(os.Environ(), p.env...)
	}
	// Killed with us if we die without stopping it, so no orphan keeps ports and CPU.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("%s: starting %s: %w", p.name, p.path, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // exit status is in the log; a crash shows as Running() == false
		log.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// Stop sends SIGTERM and waits for the exit, escalating to SIGKILL after the stop
// timeout or when ctx ends.
func (p *process) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: SIGTERM: %w", p.name, err)
	}
	timer := time.NewTimer(p.stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
	case <-ctx.Done():
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return nil
}
