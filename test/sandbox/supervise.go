package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// child is one run of a binary of the tools directory: started, waited for,
// and stopped (SIGTERM, then SIGKILL after stopTimeout) when its context ends.
// Supervisors (the calico-node runtime, kube-controllers) run children in loops
// the way runit or the kubelet runs a container's processes.
type child struct {
	path        string
	args        []string
	env         []string // the whole environment (nothing is inherited)
	logPath     string   // appended to across runs
	stopTimeout time.Duration
	// lines, when set, is called with every line the process writes (stdout and
	// stderr), once it is in the log: how the sandbox follows a real component's
	// progress without changing it.
	lines func(line string)
}

// run starts the binary and returns its exit (nil for status 0). When ctx ends
// first, the process is stopped and ctx's error returned. onStart, if set, gets
// the pid once the process runs (the dial inventory reads its /proc entry).
func (c child) run(ctx context.Context, onStart func(pid int)) error {
	log, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening log %s: %w", c.logPath, err)
	}
	defer log.Close()
	cmd := exec.Command(c.path, c.args...)
	cmd.Stdout, cmd.Stderr = log, log
	if c.lines != nil {
		// The same writer for both: exec gives the process one pipe, copied by one
		// goroutine that Wait waits for, so every line is seen before run returns.
		tee := &lineTee{w: log, fn: c.lines}
		cmd.Stdout, cmd.Stderr = tee, tee
		defer tee.flush()
	}
	// Not the sandbox's environment: a KUBECONFIG, K8S_API_ENDPOINT, ETCD_ENDPOINTS,
	// CALICO_* or FELIX_TYPHA* of the caller's would point Calico's clients at
	// another cluster or at Typha (libcalico-go/lib/apiconfig/load.go,
	// typha/pkg/syncclientutils); these processes dial only what their env says.
	cmd.Env = append([]string{}, c.env...) // non-nil: an empty env stays empty
	// Killed with us if we die without stopping it (as in process.go).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", c.path, err)
	}
	if onStart != nil {
		onStart(cmd.Process.Pid)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return err
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(c.stopTimeout)
	defer timer.Stop()
	select {
	case <-exited:
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-exited
	}
	return ctx.Err()
}

// backoff is runit's and the kubelet's restart delay: it doubles from base up to
// max, and starts over once a run lasted longer than max.
type backoff struct {
	base, max time.Duration
	next      time.Duration
}

// after returns the delay before the next start, given how long the last run
// lasted.
func (b *backoff) after(ran time.Duration) time.Duration {
	if b.next == 0 || ran > b.max {
		b.next = b.base
		return b.next
	}
	b.next = min(2*b.next, b.max)
	return b.next
}

// sleepCtx waits d or until ctx ends, reporting whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// supervised is a Component running one binary for ever: restarted with back-off
// whenever it exits, as a Deployment's pod is by its kubelet.
type supervised struct {
	name  string
	child child
	// restartBase and restartMax bound the delay between runs.
	restartBase, restartMax time.Duration
	// ready, if set, is what Start waits for once the process runs.
	ready func(ctx context.Context) error

	mu       sync.Mutex
	cancel   context.CancelFunc
	done     chan struct{}
	pid      int
	restarts int
}

func (s *supervised) Name() string { return s.name }

func (s *supervised) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancel != nil
}

// PID is the process's id while it runs, else 0.
func (s *supervised) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Restarts counts the runs after the first since Start.
func (s *supervised) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

func (s *supervised) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.cancel != nil {
		s.mu.Unlock()
		return nil
	}
	// The supervisor outlives ctx, which only bounds the start.
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.cancel, s.done, s.restarts = cancel, done, 0
	s.mu.Unlock()
	go func() {
		defer close(done)
		b := backoff{base: s.restartBase, max: s.restartMax}
		for first := true; ; first = false {
			if !first {
				s.mu.Lock()
				s.restarts++
				s.mu.Unlock()
			}
			started := time.Now()
			err := s.child.run(runCtx, func(pid int) { s.setPID(pid) })
			s.setPID(0)
			if runCtx.Err() != nil {
				return
			}
			delay := b.after(time.Since(started))
			appendLog(s.child.logPath, fmt.Sprintf("sandbox supervisor: %s exited (%v); restarting in %v", s.name, exitText(err), delay))
			if !sleepCtx(runCtx, delay) {
				return
			}
		}
	}()
	if s.ready == nil {
		return nil
	}
	if err := s.ready(ctx); err != nil {
		return errors.Join(fmt.Errorf("starting %s: %w", s.name, err), s.Stop(context.Background()))
	}
	return nil
}

func (s *supervised) setPID(pid int) {
	s.mu.Lock()
	s.pid = pid
	s.mu.Unlock()
}

func (s *supervised) Stop(ctx context.Context) error {
	return stopLoop(ctx, &s.mu, &s.cancel, &s.done, s.name)
}

// stopLoop cancels a background loop started with *cancel and waits, up to ctx,
// until it closes *done (both read under mu); a loop already stopped (nil *cancel) is left alone.
func stopLoop(ctx context.Context, mu *sync.Mutex, cancel *context.CancelFunc, done *chan struct{}, what string) error {
	mu.Lock()
	c, d := *cancel, *done
	*cancel = nil
	mu.Unlock()
	if c == nil {
		return nil
	}
	c()
	select {
	case <-d:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping %s: %w", what, ctx.Err())
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// appendLog adds one line of the supervisor's own to a process's log, so that the
// log says why the process stopped and started again.
func appendLog(path, line string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", time.Now().Format("2006-01-02 15:04:05.000000"), line)
}

// lineTee writes through to w and calls fn with each complete line.
type lineTee struct {
	w       io.Writer
	fn      func(string)
	partial []byte
}

func (t *lineTee) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.partial = append(t.partial, p[:n]...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.fn(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	return n, err
}

// flush hands over a last line without a newline.
func (t *lineTee) flush() {
	if len(t.partial) > 0 {
		t.fn(string(t.partial))
		t.partial = nil
	}
}
