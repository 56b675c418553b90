package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/test/testbin"
)

// event is one JSON line of `runbook apply -o json`: an engine event (run.start,
// step.start, step.done, cleanup, ...), a pod-move event of deletePodsInPool
// (pod.evicted, progress, ...; step set), or the final report.
type event struct {
	Time    time.Time      `json:"time"`
	RunID   string         `json:"runID"`
	Type    string         `json:"type"`
	Step    string         `json:"step"`
	Status  string         `json:"status"`
	Message string         `json:"message"`
	Pod     string         `json:"pod"`
	Report  *engine.Report `json:"report"`

	seen time.Time // when the test read the line
	raw  string
}

// proc is one runbook process whose stdout JSON lines are streamed as they come.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	events  chan event // closed at EOF

	mu     sync.Mutex
	lines  []string
	stderr bytes.Buffer

	exited chan struct{}
	code   int
	signal syscall.Signal // set when killed by a signal
}

// start runs the binary with args (the caller adds -o json where it wants events).
func start(ctx context.Context, t *testing.T, name, kubeconfig string, args ...string) *proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, testbin.Runbook(t), append(args, "--kubeconfig", kubeconfig)...)
	p := &proc{name: name, cmd: cmd, events: make(chan event, 4096), exited: make(chan struct{})}
	cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start %v: %v", name, args, err)
	}
	p.started = time.Now()
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			var e event
			if json.Unmarshal([]byte(line), &e) == nil {
				e.seen, e.raw = time.Now(), line
				p.events <- e
			}
		}
		close(p.events)
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				p.signal = ws.Signal()
			}
		} else if err != nil {
			p.code = -1
		}
		close(p.exited)
	}()
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(b)
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("%s: kill: %v", p.name, err)
	}
	p.wait(t, time.Minute)
}

func (p *proc) signalOrFail(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatalf("%s: signal %v: %v", p.name, s, err)
	}
}

// wait waits for the process to exit (fails the test after d) and returns its code.
// A process still running after d is sent SIGQUIT first: the Go runtime prints
// every goroutine's stack to stderr, which the failure message carries, so a hang
// in CI says where it hangs.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		t.Fatalf("%s: still running after %v (stacks after SIGQUIT in its stderr)\n%s", p.name, d, p.output())
	}
	return p.code
}

// next returns the next event, or ok=false at EOF or after d.
func (p *proc) next(d time.Duration) (event, bool) {
	select {
	case e, ok := <-p.events:
		return e, ok
	case <-time.After(d):
		return event{}, false
	}
}

// waitFor reads events until one satisfies match; it fails the test at EOF or
// after d.
func (p *proc) waitFor(t *testing.T, what string, d time.Duration, match func(event) bool) event {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		e, ok := p.next(time.Until(deadline))
		if !ok {
			t.Fatalf("%s: no %s within %v (exit %s)\n%s", p.name, what, d, p.exitString(), p.output())
		}
		if match(e) {
			return e
		}
	}
}

func (p *proc) exitString() string {
	select {
	case <-p.exited:
		if p.signal != 0 {
			return p.signal.String()
		}
		return fmt.Sprint(p.code)
	default:
		return "still running"
	}
}

// output is everything the process printed, for failure messages.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("--- %s stdout:\n%s\n--- %s stderr:\n%s", p.name, strings.Join(p.lines, "\n"), p.name, p.stderr.String())
}

func (p *proc) stderrString() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// drain reads the remaining events until EOF.
func (p *proc) drain() []event {
	var out []event
	for e := range p.events {
		out = append(out, e)
	}
	return out
}

// applyArgs are the arguments of the example migration as a pipeline runs it.
func applyArgs(extra ...string) []string {
	return append([]string{"apply", exampleRunbook, "-f", exampleValues, "--yes", "-o", "json", "-n", journalNS}, extra...)
}
