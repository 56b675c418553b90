package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// tailLines is how much of each log a failed start prints.
const tailLines = 25

// failedStartLogs are the logs that explain a cluster that never got ready: who
// plays the nodes and pods, who schedules them, who runs the controllers.
var failedStartLogs = []string{Kwok, Scheduler, ControllerManager}

// startFailed keeps the work directory of a cluster that failed to start (its
// logs are the only account of why) and returns err with the tails of the logs
// that usually explain it, so that a CI log alone is enough to diagnose.
func (c *Cluster) startFailed(err error) error {
	c.ownWorkDir = false
	return fmt.Errorf("starting sandbox (logs kept in %s): %w%s", logDir(c.workDir), err, logTails(logDir(c.workDir), failedStartLogs, tailLines))
}

// logTails renders the last n lines of each named component log in dir; a log
// that does not exist (the component never started) says so.
func logTails(dir string, names []string, n int) string {
	var b strings.Builder
	for _, name := range names {
		path := filepath.Join(dir, name+".log")
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(&b, "\n--- %s: %v", path, err)
			continue
		}
		fmt.Fprintf(&b, "\n--- last %d lines of %s:\n%s", n, path, lastLines(data, n))
	}
	return b.String()
}

// lastLines is the last n lines of data, without a final newline.
func lastLines(data []byte, n int) string {
	data = bytes.TrimRight(data, "\n")
	for i, cut := len(data)-1, 0; i >= 0; i-- {
		if data[i] == '\n' {
			if cut++; cut == n {
				return string(data[i+1:])
			}
		}
	}
	return string(data)
}
