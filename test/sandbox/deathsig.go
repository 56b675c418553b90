package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// deathSigWrapper writes <workDir>/pdeathsig/<name>, a shell script that runs binary
// with PR_SET_PDEATHSIG=SIGKILL (util-linux setpriv), and returns its path, or
// binary itself when setpriv is not installed.
//
// Why: envtest starts etcd and kube-apiserver with only Setpgid
// (controller-runtime pkg/internal/testing/process/procattr_unix.go), so a test
// binary killed by SIGKILL (a go test timeout, a CI runner cancelling the job)
// left both running, serving on loopback with the guard's routes pruned under
// them (#22). The sandbox's own processes already set Pdeathsig (process.go,
// supervise.go); this gives envtest's the same. setpriv execs the binary, so the
// process, its /proc cmdline and its pid are the binary's own.
func deathSigWrapper(workDir, name, binary string) (string, error) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return binary, nil
	}
	dir := filepath.Join(workDir, "pdeathsig") // not bin/: .sandbox/bin holds the CLI tools
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("wrapper for %s: %w", name, err)
	}
	path := filepath.Join(dir, name)
	script := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL -- %s \"$@\"\n", shellQuote(setpriv), shellQuote(binary))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("wrapper for %s: %w", name, err)
	}
	return path, nil
}

func shellQuote(s string) string {
	out := "'"
	for _, r := range s {
		if r == '\'' {
			out += `'\''`
			continue
		}
		out += string(r)
	}
	return out + "'"
}
