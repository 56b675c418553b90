package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Routes mode of the network guard: the unreachable routes, shared by every
// sandbox of the host (SANDBOX_DIR, test packages and benchmarks run side by side
// and share CIDRs). Each sandbox that relies on the routes has an owner record
// (its pid and the pid's start time, so a recycled pid is not mistaken for it) in
// routeStateDir; every change happens under the directory's lock and brings the
// host to "one route per CIDR some live owner lists, none other of ours"
// (reconcileRoutes). So a route goes when its last live owner stops, and the
// routes of a crashed sandbox go at the next Start (or `sandbox down`) on the host.

// routeProto marks the guard's routes (`ip route show proto 244`), so that they
// are told apart from everyone else's and the guard never removes a route it did
// not add. 244 is in no /etc/iproute2/rt_protos and used by no routing daemon we
// know of (Calico's felix uses 80, bird 12, FRR 186–192).
const routeProto = 244

// routeStateDir holds the owner records and the lock. /run is root's and emptied
// at boot, like the routes.
var routeStateDir = "/run/runbook-sandbox/routes"

// Seams for the unit tests: the host's route table, CAP_NET_ADMIN and the
// nameservers.
var (
	newRouteTable = newIPCommand
	hasNetAdmin   = effectiveNetAdmin
	nameservers   = resolvConfNameservers
)

// hostRoute is one route of the host's main table.
type hostRoute struct {
	Dst     netip.Prefix
	Type    string // "" for unicast, else unreachable, blackhole, prohibit, ...
	Proto   string // as ip prints it: a number or a name from rt_protos
	Gateway string
	Dev     string
}

func (r hostRoute) ours() bool { return r.Proto == strconv.Itoa(routeProto) }

func (r hostRoute) String() string {
	s := r.Dst.String()
	if r.Type != "" {
		s = r.Type + " " + s
	}
	if r.Gateway != "" {
		s += " via " + r.Gateway
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	return s
}

// routeTable is the host's main routing table, both families.
type routeTable interface {
	routes() ([]hostRoute, error)
	addUnreachable(netip.Prefix) error // with proto routeProto
	delUnreachable(netip.Prefix) error // only with proto routeProto; gone already is no error
}

// acquireRoutes takes the routes for cidrs, or says why routes mode is not
// possible here (the caller then runs the egress proxy).
func acquireRoutes(cidrs []netip.Prefix, workDir string) (*routeLease, string) {
	table, reason := routesPossible(cidrs)
	if table == nil {
		return nil, reason
	}
	lease, err := takeRoutes(table, routeStateDir, cidrs, workDir)
	if err != nil {
		return nil, err.Error()
	}
	return lease, ""
}

// routesPossible returns the host's route table if routes mode can guard cidrs,
// else nil and why not.
func routesPossible(cidrs []netip.Prefix) (routeTable, string) {
	if !hasNetAdmin() {
		return nil, "not root (no CAP_NET_ADMIN)"
	}
	table, err := newRouteTable()
	if err != nil {
		return nil, err.Error()
	}
	current, err := table.routes()
	if err != nil {
		return nil, err.Error()
	}
	if hazards := routeHazards(current, cidrs, nameservers()); len(hazards) > 0 {
		return nil, "routes cannot guard this machine's traffic: " + strings.Join(hazards, "; ")
	}
	return table, ""
}

// routeHazards lists why unreachable routes for cidrs would not do: a route
// inside a guarded CIDR that leaves the machine (via a gateway, or on a network
// interface: a LAN the host sits on), whose addresses the sandbox's dials would
// still reach; or a nameserver or gateway the host uses inside one, which the
// route would cut off. Routes to virtual devices (bridges, veths, a real node's
// cali* interfaces) stay on the machine and are no hazard: being more specific,
// they keep winning.
func routeHazards(routes []hostRoute, cidrs []netip.Prefix, servers []netip.Addr) []string {
	guarded := func(a netip.Addr) (netip.Prefix, bool) {
		for _, p := range cidrs {
			if p.Contains(a) {
				return p, true
			}
		}
		return netip.Prefix{}, false
	}
	var forwarding []hostRoute
	for _, r := range routes {
		if !r.ours() && (r.Type == "" || r.Type == "unicast") {
			forwarding = append(forwarding, r)
		}
	}
	// moreSpecific reports whether a keeps its route when p is unreachable.
	moreSpecific := func(a netip.Addr, p netip.Prefix) bool {
		for _, r := range forwarding {
			if r.Dst.Bits() > p.Bits() && r.Dst.Contains(a) {
				return true
			}
		}
		return false
	}
	var out []string
	for _, r := range forwarding {
		if p, ok := guarded(r.Dst.Addr()); ok && p.Bits() <= r.Dst.Bits() {
			switch {
			case r.Gateway != "":
				out = append(out, fmt.Sprintf("route %s lies inside %s and leaves the machine", r, p))
			case physicalInterface(r.Dev):
				out = append(out, fmt.Sprintf("route %s (a network interface) lies inside %s", r, p))
			}
		}
	}
	critical := map[netip.Addr]string{}
	for _, ns := range servers {
		critical[ns] = "its nameserver " + ns.String()
	}
	for _, r := range forwarding {
		if gw, err := netip.ParseAddr(r.Gateway); err == nil {
			critical[gw] = "the gateway of route " + r.String()
		}
	}
	for a, what := range critical {
		if p, ok := guarded(a); ok && !moreSpecific(a, p) {
			out = append(out, fmt.Sprintf("an unreachable %s would cut this machine off %s", p, what))
		}
	}
	slices.Sort(out)
	return out
}

// physicalInterface reports whether dev is backed by a device (a NIC), as opposed
// to a virtual one (bridge, veth, loopback).
var physicalInterface = func(dev string) bool {
	if dev == "" {
		return false
	}
	_, err := os.Stat(filepath.Join("/sys/class/net", dev, "device"))
	return err == nil
}

// routeOwner is the record of one sandbox relying on the routes.
type routeOwner struct {
	PID       int      `json:"pid"`
	StartTime string   `json:"startTime"` // field 22 of /proc/<pid>/stat
	WorkDir   string   `json:"workDir"`
	CIDRs     []string `json:"cidrs"`
}

// routeLease is one sandbox's hold on the routes.
type routeLease struct {
	table       routeTable
	dir, file   string
	preExisting []netip.Prefix
	once        sync.Once
	err         error
}

var ownerSeq atomic.Int64

// takeRoutes records the owner and brings the routes in line, under the lock.
func takeRoutes(table routeTable, dir string, cidrs []netip.Prefix, workDir string) (*routeLease, error) {
	start, ok := procStartTime(os.Getpid())
	if !ok {
		return nil, errors.New("network guard: cannot read this process's start time from /proc")
	}
	unlock, err := lockRouteState(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	owner := routeOwner{PID: os.Getpid(), StartTime: start, WorkDir: workDir}
	for _, p := range cidrs {
		owner.CIDRs = append(owner.CIDRs, p.String())
	}
	file := filepath.Join(dir, fmt.Sprintf("%d-%s-%d.json", owner.PID, start, ownerSeq.Add(1)))
	if err := writeOwner(file, owner); err != nil {
		return nil, err
	}
	state, err := reconcileRoutes(table, dir)
	if err != nil {
		// Give back what this attempt added; the error says why routes mode failed.
		_ = os.Remove(file)
		_, undo := reconcileRoutes(table, dir)
		return nil, errors.Join(err, undo)
	}
	l := &routeLease{table: table, dir: dir, file: file}
	for _, p := range cidrs {
		if state[p] == routePreExisting {
			l.preExisting = append(l.preExisting, p)
		}
	}
	return l, nil
}

// release removes the owner record; routes no other live owner needs go.
func (l *routeLease) release() error {
	l.once.Do(func() {
		unlock, err := lockRouteState(l.dir)
		if err != nil {
			l.err = err
			return
		}
		defer unlock()
		if err := os.Remove(l.file); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.err = fmt.Errorf("network guard: removing owner record: %w", err)
			return
		}
		_, l.err = reconcileRoutes(l.table, l.dir)
	})
	return l.err
}

// PruneNetworkGuard removes the routes of sandboxes that died without stopping
// (their owner records name dead processes). Start does it too; `sandbox down`
// calls it after killing a daemon that would not stop. Without CAP_NET_ADMIN, or
// with no records, it does nothing.
func PruneNetworkGuard() error {
	if !hasNetAdmin() {
		return nil
	}
	if _, err := os.Stat(routeStateDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	table, err := newRouteTable()
	if err != nil {
		return err
	}
	unlock, err := lockRouteState(routeStateDir)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = reconcileRoutes(table, routeStateDir)
	return err
}

// What reconcileRoutes found or did for a wanted CIDR.
const (
	routeAdded       = "added"
	routeKept        = "kept" // ours already, another owner's too
	routePreExisting = "pre-existing"
)

// reconcileRoutes prunes the records of dead owners, adds an unreachable route for
// every CIDR a live owner lists that has none of ours and no route of someone
// else's with exactly that destination, and removes every route of ours no live
// owner lists. The caller holds the lock.
func reconcileRoutes(table routeTable, dir string) (map[netip.Prefix]string, error) {
	owners, err := liveOwners(dir)
	if err != nil {
		return nil, err
	}
	want := map[netip.Prefix]bool{}
	for _, o := range owners {
		for _, s := range o.CIDRs {
			if p, err := netip.ParsePrefix(s); err == nil {
				want[p.Masked()] = true
			}
		}
	}
	routes, err := table.routes()
	if err != nil {
		return nil, err
	}
	ours, foreign := map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	for _, r := range routes {
		if r.ours() {
			ours[r.Dst] = true
		} else {
			foreign[r.Dst] = true
		}
	}
	state := map[netip.Prefix]string{}
	var errs []error
	for _, p := range sortedPrefixes(want) {
		switch {
		case ours[p]:
			state[p] = routeKept
		case foreign[p]:
			state[p] = routePreExisting
		default:
			if err := table.addUnreachable(p); err != nil {
				errs = append(errs, err)
				continue
			}
			state[p] = routeAdded
		}
	}
	for _, p := range sortedPrefixes(ours) {
		if !want[p] {
			if err := table.delUnreachable(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return state, errors.Join(errs...)
}

// liveOwners reads the owner records, removing those of processes that are gone.
func liveOwners(dir string) ([]routeOwner, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("network guard: reading owner records: %w", err)
	}
	var out []routeOwner
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("network guard: reading owner record: %w", err)
		}
		var o routeOwner
		if err := json.Unmarshal(data, &o); err != nil {
			// A record is written whole (rename), so this is not ours to keep.
			_ = os.Remove(path)
			continue
		}
		if start, ok := procStartTime(o.PID); !ok || start != o.StartTime {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("network guard: pruning owner record of dead pid %d: %w", o.PID, err)
			}
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

func writeOwner(path string, o routeOwner) error {
	data, err := json.Marshal(o)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("network guard: writing owner record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("network guard: writing owner record: %w", err)
	}
	return nil
}

// lockRouteState takes the state directory's lock (flock: released by the kernel
// if the holder dies), creating the directory.
func lockRouteState(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("network guard: creating %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("network guard: opening lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("network guard: locking %s: %w", dir, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// procStartTime returns a live process's start time (clock ticks since boot),
// which together with the pid names the process; false if it is gone or a zombie.
func procStartTime(pid int) (string, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	// The command name (field 2) may hold spaces and parentheses: fields are
	// counted from the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return "", false
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 || fields[0] == "Z" || fields[0] == "X" {
		return "", false
	}
	return fields[19], true
}

// effectiveNetAdmin reports whether this process may change routes
// (CAP_NET_ADMIN in its effective set).
func effectiveNetAdmin() bool {
	const capNetAdmin = 12
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && caps&(1<<capNetAdmin) != 0
		}
	}
	return false
}

// resolvConfNameservers are the nameservers of /etc/resolv.conf.
func resolvConfNameservers() []netip.Addr {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, a.WithZone(""))
			}
		}
	}
	return out
}

func sortedPrefixes(set map[netip.Prefix]bool) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}
