package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// status prints whether the sandbox runs and the memory of its processes; it fails
// when the sandbox is not running, so scripts can test it.
func status(c config) error {
	pid, err := runningDaemon(c.dir)
	if err != nil {
		return err
	}
	if pid == 0 {
		return errors.New("not running")
	}
	st, err := readState(c.dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Printf("sandbox: starting (pid %d)\n", pid)
	case err != nil:
		return err
	default:
		fmt.Printf("sandbox: running (pid %d, scenario %s, flavour %s), up %v, was ready in %v\n",
			pid, st.Scenario, st.Flavour, time.Since(st.ReadyAt).Round(time.Second), st.ReadyAt.Sub(st.StartedAt).Round(time.Millisecond))
		fmt.Printf("  KUBECONFIG=%s\n", st.Kubeconfig)
	}
	procs, err := processTree(pid)
	if err != nil {
		return err
	}
	var total int
	fmt.Println("  memory (RSS):")
	for _, p := range procs {
		fmt.Printf("    %-26s %6d MiB  (pid %d)\n", p.name, p.rssKiB/1024, p.pid)
		total += p.rssKiB
	}
	fmt.Printf("    %-26s %6d MiB\n", "total", total/1024)
	return nil
}

type proc struct {
	pid, rssKiB int
	name        string
}

// processTree returns root and all its descendants with their resident memory,
// largest first.
func processTree(root int) ([]proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(pid); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []proc
	for queue := []int{root}; len(queue) > 0; queue = queue[1:] {
		pid := queue[0]
		queue = append(queue, children[pid]...)
		name, rss := procStatus(pid)
		out = append(out, proc{pid: pid, rssKiB: rss, name: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rssKiB > out[j].rssKiB })
	return out, nil
}

func parentPID(pid int) (int, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name in parentheses may contain spaces: parse after the last ')'.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}

// procStatus reads the name and VmRSS (KiB) from /proc/<pid>/status.
func procStatus(pid int) (name string, rssKiB int) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?", 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, _ := strings.Cut(sc.Text(), ":")
		switch key {
		case "Name":
			name = strings.TrimSpace(value)
		case "VmRSS":
			rssKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(value), " kB"))
		}
	}
	return name, rssKiB
}
