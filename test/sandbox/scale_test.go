package sandbox_test

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/scenarios"
)

// ScaleEnv turns the scale test on; it needs ~3 GiB and a few minutes, too much
// for the default test set (CI runs on 2 cores).
const ScaleEnv = "SANDBOX_SCALE"

// The 2,000-pod scenario of #6 comes up: every pod Running on a pool address.
// Logs start-up phases, peak memory per process and the apiserver requests it
// took.
func TestScale(t *testing.T) {
	if os.Getenv(ScaleEnv) == "" {
		t.Skipf("set %s=1 to start the 2,000-pod scenario (several minutes, ~3 GiB)", ScaleEnv)
	}
	s, err := scenarios.Load("scale-2000")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: s, ReadyTimeout: 4 * time.Minute})
	total := time.Since(start)
	for _, tm := range c.Timings() {
		t.Logf("%-28s %v", tm.Phase, tm.Duration.Round(time.Millisecond))
	}
	t.Logf("%-28s %v", "total", total.Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool := netip.MustParsePrefix("192.168.0.0/16")
	inPool := 0
	var firstCreated, lastCreated, lastReady time.Time
	for _, p := range pods.Items {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || p.Status.Phase != corev1.PodRunning || !pool.Contains(ip) {
			continue
		}
		inPool++
		created := p.CreationTimestamp.Time
		if firstCreated.IsZero() || created.Before(firstCreated) {
			firstCreated = created
		}
		if created.After(lastCreated) {
			lastCreated = created
		}
		if c := condition(p, corev1.PodReady); c != nil && c.LastTransitionTime.After(lastReady) {
			lastReady = c.LastTransitionTime.Time
		}
	}
	// Where the time goes: the controllers creating pods, then the CNI stand-in
	// and kwok making them Running.
	t.Logf("pool pods created over %v; the last one Ready %v after the first was created",
		lastCreated.Sub(firstCreated).Round(time.Second), lastReady.Sub(firstCreated).Round(time.Second))
	if want := s.PodCount(); inPool < want {
		t.Errorf("%d pods Running in %s, want >= %d", inPool, pool, want)
	}
	t.Logf("pods Running on pool addresses: %d (scenario %d); CNI %+v; calico-node %+v", inPool, s.PodCount(), c.CNIStats(), c.CalicoNodeStats())
	for _, line := range processMemory() {
		t.Log(line)
	}
	for _, line := range topRequests(ctx, t, cs, 12) {
		t.Log(line)
	}
}

// processMemory reports resident and peak resident memory (VmRSS, VmHWM) and CPU
// time of this test process (the in-process stand-ins) and of its children (the
// control plane).
func processMemory() []string {
	self := os.Getpid()
	var lines []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		name, ppid, rss, hwm := procInfo(pid)
		if pid != self && ppid != self {
			continue
		}
		if pid == self {
			name = "test process (stand-ins)"
		}
		lines = append(lines, fmt.Sprintf("memory %-26s RSS %5d MiB, peak %5d MiB, CPU %6.1f s", name, rss/1024, hwm/1024, cpuSeconds(pid)))
	}
	sort.Strings(lines)
	return lines
}

func procInfo(pid int) (name string, ppid, rssKiB, hwmKiB int) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, _ := strings.Cut(sc.Text(), ":")
		value = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB"))
		switch key {
		case "Name":
			name = value
		case "PPid":
			ppid, _ = strconv.Atoi(value)
		case "VmRSS":
			rssKiB, _ = strconv.Atoi(value)
		case "VmHWM":
			hwmKiB, _ = strconv.Atoi(value)
		}
	}
	return name, ppid, rssKiB, hwmKiB
}

var requestTotal = regexp.MustCompile(`^apiserver_request_total\{(.*)\} ([0-9.e+]+)$`)
var metricLabel = regexp.MustCompile(`(\w+)="([^"]*)"`)

// topRequests sums apiserver_request_total since the apiserver started by verb
// and resource, largest first.
func topRequests(ctx context.Context, t *testing.T, cs kubernetes.Interface, n int) []string {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Errorf("apiserver metrics: %v", err)
		return nil
	}
	sums := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		m := requestTotal.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		l := map[string]string{}
		for _, kv := range metricLabel.FindAllStringSubmatch(m[1], -1) {
			l[kv[1]] = kv[2]
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		res := l["resource"]
		if l["subresource"] != "" {
			res += "/" + l["subresource"]
		}
		sums[l["verb"]+" "+res] += v
		sums["TOTAL"] += v
	}
	keys := make([]string, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return sums[keys[i]] > sums[keys[j]] })
	var out []string
	for i, k := range keys {
		if i > n {
			break
		}
		out = append(out, fmt.Sprintf("requests %-40s %8.0f", k, sums[k]))
	}
	return out
}

// cpuSeconds is a process's user + system CPU time so far.
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	user, _ := strconv.ParseFloat(fields[11], 64)
	sys, _ := strconv.ParseFloat(fields[12], 64)
	return (user + sys) / 100 // USER_HZ
}
