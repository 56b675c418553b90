package sandbox

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A process started through the wrapper dies with its parent: the parent (a
// shell here, the test binary in the sandbox) is SIGKILLed, and the child, which
// would otherwise be reparented and live on, gets SIGKILL too.
func TestDeathSigWrapperKillsTheChildWithItsParent(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed: the sandbox starts the binaries directly")
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	wrapper, err := deathSigWrapper(t.TempDir(), "sleeper", sleep)
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command("sh", "-c", shellQuote(wrapper)+" 600 & echo $!; wait")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	n, _ := out.Read(buf)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		t.Fatalf("child pid %q: %v", buf[:n], err)
	}
	time.Sleep(200 * time.Millisecond) // let setpriv exec sleep
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if !strings.HasPrefix(string(cmdline), sleep) {
		t.Fatalf("child runs %q, want %s itself (setpriv execs it)", cmdline, sleep)
	}
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The child is reparented to init (or a subreaper), which reaps it.
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			return // dead, not yet reaped
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d still runs 5 s after its parent was killed", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
