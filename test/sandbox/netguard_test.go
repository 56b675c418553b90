package sandbox

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/test/scenarios"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// The guarded CIDRs come from the scenario and flavour: pools, pod subnet(s),
// Service subnet, node network.
func TestGuardedCIDRs(t *testing.T) {
	for _, tc := range []struct {
		scenario, flavour string
		want              []netip.Prefix
	}{
		{"default", FlavourCRD, prefixes("192.168.0.0/16", "10.0.0.0/16", "10.96.0.0/12", "172.18.0.0/16")},
		{"dualstack", FlavourCRD, prefixes("192.168.0.0/16", "fd00:192:168::/48", "10.0.0.0/16", "fd00:10::/56", "10.96.0.0/12", "172.18.0.0/16")},
		{"default", FlavourOperator, prefixes("192.168.0.0/16", "10.0.0.0/16", "10.96.0.0/12", "172.18.0.0/16")},
		{"default", FlavourOperatorV140, prefixes("192.168.0.0/16", "10.0.0.0/16", "10.96.0.0/12", "172.18.0.0/16")},
	} {
		s, err := scenarios.Load(tc.scenario)
		if err != nil {
			t.Fatal(err)
		}
		got, err := guardedCIDRs(s, tc.flavour)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s/%s: %v, want %v", tc.scenario, tc.flavour, got, tc.want)
		}
	}

	// Not hard-coded: another scenario's ranges, a pool inside the pod subnet
	// folded into it.
	s, err := scenarios.Parse([]byte(`apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: other
cluster: {podSubnet: 10.8.0.0/16, serviceSubnet: 10.128.0.0/16}
calico:
  ipPools:
  - {name: inside, cidr: 10.8.4.0/24}
  - {name: apart, cidr: 172.20.0.0/16}
nodes:
- {name: control-plane, controlPlane: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := guardedCIDRs(s, FlavourOperator)
	if err != nil {
		t.Fatal(err)
	}
	if want := prefixes("172.20.0.0/16", "10.8.0.0/16", "10.128.0.0/16", "172.18.0.0/16"); !slices.Equal(got, want) {
		t.Errorf("custom scenario: %v, want %v", got, want)
	}
}

// fakeRoutes is a route table in memory.
type fakeRoutes struct{ rs []hostRoute }

func (f *fakeRoutes) routes() ([]hostRoute, error) { return slices.Clone(f.rs), nil }

func (f *fakeRoutes) addUnreachable(p netip.Prefix) error {
	for _, r := range f.rs {
		if r.Dst == p {
			return fmt.Errorf("ip route add %s: File exists", p)
		}
	}
	f.rs = append(f.rs, hostRoute{Dst: p, Type: "unreachable", Proto: fmt.Sprint(routeProto)})
	return nil
}

func (f *fakeRoutes) delUnreachable(p netip.Prefix) error {
	f.rs = slices.DeleteFunc(f.rs, func(r hostRoute) bool { return r.Dst == p && r.ours() })
	return nil
}

func (f *fakeRoutes) ours() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range f.rs {
		if r.ours() {
			out = append(out, r.Dst)
		}
	}
	return sortedPrefixes(setOf(out))
}

func setOf(ps []netip.Prefix) map[netip.Prefix]bool {
	m := map[netip.Prefix]bool{}
	for _, p := range ps {
		m[p] = true
	}
	return m
}

// Routes are reference-counted across sandboxes: a route shared by two goes with
// the second; a route someone else had for the same CIDR is never touched.
func TestRouteLeasesShareAndKeepForeignRoutes(t *testing.T) {
	dir := t.TempDir()
	foreign := hostRoute{Dst: netip.MustParsePrefix("172.18.0.0/16"), Dev: "br-kind", Proto: "kernel"}
	table := &fakeRoutes{rs: []hostRoute{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: "192.0.2.1", Dev: "eth0"}, foreign}}
	before := slices.Clone(table.rs)

	a, err := takeRoutes(table, dir, prefixes("192.168.0.0/16", "10.96.0.0/12", "172.18.0.0/16"), "a")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.preExisting, prefixes("172.18.0.0/16")) {
		t.Errorf("pre-existing %v, want the kind bridge's 172.18.0.0/16", a.preExisting)
	}
	b, err := takeRoutes(table, dir, prefixes("10.96.0.0/12", "fd00:10::/56"), "b")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := table.ours(), prefixes("10.96.0.0/12", "192.168.0.0/16", "fd00:10::/56"); !slices.Equal(got, want) {
		t.Fatalf("routes with both up: %v, want %v", got, want)
	}
	if err := a.release(); err != nil {
		t.Fatal(err)
	}
	if err := a.release(); err != nil { // idempotent
		t.Fatal(err)
	}
	if got, want := table.ours(), prefixes("10.96.0.0/12", "fd00:10::/56"); !slices.Equal(got, want) {
		t.Errorf("routes after the first stopped: %v, want b's %v", got, want)
	}
	if err := b.release(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(table.rs, before) {
		t.Errorf("route table after both stopped:\n%v\nwant as before:\n%v", table.rs, before)
	}
}

// The routes of a sandbox that died without stopping go at the next Start; a
// recycled pid (same pid, another start time) counts as dead.
func TestRouteLeasesPruneDeadOwners(t *testing.T) {
	dir := t.TempDir()
	table := &fakeRoutes{}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	start, _ := procStartTime(os.Getpid())
	for i, o := range []routeOwner{
		{PID: cmd.Process.Pid, StartTime: "1", CIDRs: []string{"10.0.0.0/16"}},     // exited
		{PID: os.Getpid(), StartTime: start + "0", CIDRs: []string{"10.1.0.0/16"}}, // our pid, another process
	} {
		if err := writeOwner(filepath.Join(dir, fmt.Sprintf("dead-%d.json", i)), o); err != nil {
			t.Fatal(err)
		}
		for _, c := range o.CIDRs {
			if err := table.addUnreachable(netip.MustParsePrefix(c)); err != nil {
				t.Fatal(err)
			}
		}
	}
	l, err := takeRoutes(table, dir, prefixes("10.96.0.0/12"), "new")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := table.ours(), prefixes("10.96.0.0/12"); !slices.Equal(got, want) {
		t.Errorf("routes after the next start: %v, want only the live sandbox's %v", got, want)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Errorf("owner records %v, want only the live one", files)
	}
	if err := l.release(); err != nil {
		t.Fatal(err)
	}
	if len(table.ours()) != 0 {
		t.Errorf("routes left: %v", table.ours())
	}
}

// Routes mode is refused where the routes would cut the host off something real.
func TestRouteHazards(t *testing.T) {
	defer func(f func(string) bool) { physicalInterface = f }(physicalInterface)
	physicalInterface = func(dev string) bool { return dev == "eth0" }
	cidrs := prefixes("192.168.0.0/16", "10.0.0.0/16", "10.96.0.0/12")
	route := func(dst, gw, dev string) hostRoute {
		return hostRoute{Dst: netip.MustParsePrefix(dst), Gateway: gw, Dev: dev}
	}
	fine := []hostRoute{
		route("0.0.0.0/0", "192.0.2.1", "eth0"),     // less specific: ours wins, as intended
		route("10.0.0.0/8", "192.0.2.1", "eth0"),    // likewise
		route("192.168.12.7/32", "", "cali1234abc"), // a real node's pod: stays on the machine
		route("192.0.2.0/24", "", "eth0"),
		{Dst: netip.MustParsePrefix("10.96.0.0/12"), Type: "unreachable", Proto: fmt.Sprint(routeProto)},
	}
	if h := routeHazards(fine, cidrs, []netip.Addr{netip.MustParseAddr("10.255.255.53")}); len(h) != 0 {
		t.Errorf("hazards %v, want none", h)
	}
	// A home LAN inside the pool with its gateway and nameserver: the LAN route is
	// the hazard (pool addresses there would still leave), not the gateway or the
	// nameserver, which the more specific LAN route keeps reaching.
	lan := []hostRoute{route("0.0.0.0/0", "192.168.1.1", "wlan0"), route("192.168.1.0/24", "", "eth0")}
	if h := routeHazards(lan, cidrs, []netip.Addr{netip.MustParseAddr("192.168.1.1")}); len(h) != 1 || !strings.Contains(h[0], "192.168.1.0/24 dev eth0 (a network interface) lies inside 192.168.0.0/16") {
		t.Errorf("LAN inside the pool: %v", h)
	}
	for _, tc := range []struct {
		routes  []hostRoute
		servers []netip.Addr
		want    string
	}{
		{[]hostRoute{route("10.0.5.0/24", "192.0.2.1", "eth0")}, nil, "leaves the machine"},
		{[]hostRoute{route("192.168.1.0/24", "", "eth0")}, nil, "network interface"},
		{[]hostRoute{route("0.0.0.0/0", "10.0.0.1", "eth0")}, nil, "cut this machine off the gateway of route 0.0.0.0/0 via 10.0.0.1"},
		{nil, []netip.Addr{netip.MustParseAddr("10.96.0.10")}, "cut this machine off its nameserver 10.96.0.10"},
	} {
		h := routeHazards(tc.routes, cidrs, tc.servers)
		if len(h) != 1 || !strings.Contains(h[0], tc.want) {
			t.Errorf("%v %v: hazards %v, want one saying %q", tc.routes, tc.servers, h, tc.want)
		}
	}
}

func TestParseIPRoutes(t *testing.T) {
	v4 := `[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},{"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2","flags":[]},{"type":"unreachable","dst":"198.51.100.7","protocol":"244","flags":[]}]`
	got, err := parseIPRoutes([]byte(v4), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []hostRoute{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: "192.0.2.1", Dev: "eth0"},
		{Dst: netip.MustParsePrefix("192.0.2.0/24"), Proto: "kernel", Dev: "eth0"},
		{Dst: netip.MustParsePrefix("198.51.100.7/32"), Type: "unreachable", Proto: "244"},
	}
	if !slices.Equal(got, want) || !got[2].ours() {
		t.Errorf("%+v, want %+v", got, want)
	}
	v6 := `[{"type":"unreachable","dst":"2001:db8:1::/48","dev":"lo","protocol":"244","metric":1024,"flags":[],"pref":"medium"},{"dst":"default","gateway":"fd00::1","dev":"eth0","metric":1024,"flags":[],"pref":"medium"}]`
	got, err = parseIPRoutes([]byte(v6), true)
	if err != nil || len(got) != 2 || got[1].Dst != netip.MustParsePrefix("::/0") || !got[0].ours() {
		t.Errorf("%+v %v", got, err)
	}
}

// The real route table through ip, with documentation ranges (root only).
func TestIPCommandRoutes(t *testing.T) {
	if !hasNetAdmin() {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true runs as root: CAP_NET_ADMIN is missing")
		}
		t.Skip("not root (no CAP_NET_ADMIN): the route table cannot be changed")
	}
	table, err := newIPCommand()
	if err != nil {
		t.Fatal(err)
	}
	// Under the guard's lock: a sandbox starting meanwhile would remove these
	// routes, which no owner record claims.
	unlock, err := lockRouteState(routeStateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	test := prefixes("198.51.100.0/24", "2001:db8:5a::/48")
	for _, p := range test {
		if err := table.addUnreachable(p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = table.delUnreachable(p) })
	}
	rs, err := table.routes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range test {
		if !slices.ContainsFunc(rs, func(r hostRoute) bool { return r.Dst == p && r.ours() && r.Type == "unreachable" }) {
			t.Errorf("no unreachable route of ours for %s in %v", p, rs)
		}
		if out, err := exec.Command("ip", "route", "get", p.Addr().Next().String()).CombinedOutput(); err == nil && !strings.HasPrefix(string(out), "unreachable") {
			t.Errorf("ip route get %s: %s", p.Addr().Next(), out)
		}
		if err := table.delUnreachable(p); err != nil {
			t.Fatal(err)
		}
		if err := table.delUnreachable(p); err != nil { // gone already: no error
			t.Fatal(err)
		}
	}
}

// connectVia speaks to the proxy as kube-apiserver's egress dialer does
// (k8s.io/apiserver egressselector.tunnelHTTPConnect) and returns the status.
func connectVia(t *testing.T, socket, target string) (net.Conn, *http.Response) {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, "127.0.0.1")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, res
}

// The egress proxy connects to loopback only and refuses anything else without a
// dial (a name without even a lookup).
func TestEgressGuard(t *testing.T) {
	g, err := startEgressGuard()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	for _, target := range []string{ln.Addr().String(), "localhost:" + port} {
		c, res := connectVia(t, g.socket, target)
		if res.StatusCode != 200 {
			t.Fatalf("CONNECT %s: %s", target, res.Status)
		}
		fmt.Fprint(c, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Errorf("through the tunnel to %s: %q %v", target, buf, err)
		}
	}
	for _, tc := range []struct{ target, want string }{
		{"10.96.0.12:443", "502 sandbox network guard: 10.96.0.12:443 is not on this machine"},
		{"[fd00:10::5]:443", "502 sandbox network guard: [fd00:10::5]:443 is not on this machine"},
		{"worker-1:10250", "502 sandbox network guard: worker-1:10250 is a name"},
	} {
		_, res := connectVia(t, g.socket, tc.target)
		if !strings.HasPrefix(res.Status, tc.want) {
			t.Errorf("CONNECT %s: %q, want %q…", tc.target, res.Status, tc.want)
		}
	}
	if n := g.Refused(); n != 3 {
		t.Errorf("refused %d, want 3", n)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.dir); !os.IsNotExist(err) {
		t.Errorf("socket directory left: %v", err)
	}
}

// startNetGuard picks egress-proxy mode without CAP_NET_ADMIN and says so, and
// refuses it when routes are demanded.
func TestNetGuardModeWithoutRoot(t *testing.T) {
	defer func(f func() bool) { hasNetAdmin = f }(hasNetAdmin)
	hasNetAdmin = func() bool { return false }
	s, err := scenarios.Load("default")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(NetworkGuardEnv, "")
	g, err := startNetGuard(s, FlavourCRD, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	if g.info.Mode != GuardEgressProxy || !strings.HasPrefix(g.info.String(), "not root (no CAP_NET_ADMIN): no host routes") {
		t.Errorf("mode %s: %s", g.info.Mode, g.info)
	}
	t.Setenv(NetworkGuardEnv, GuardRoutes)
	if _, err := startNetGuard(s, FlavourCRD, t.TempDir()); err == nil || !strings.Contains(err.Error(), "not root") {
		t.Errorf("%s=routes without root: %v", NetworkGuardEnv, err)
	}
	t.Setenv(NetworkGuardEnv, "bogus")
	if _, err := startNetGuard(s, FlavourCRD, t.TempDir()); err == nil {
		t.Error("an unknown mode was accepted")
	}
}
