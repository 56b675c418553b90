package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Egress-proxy mode of the network guard: kube-apiserver's egress selector
// (--egress-selector-config-file) sends every connection of its "cluster" network
// context (webhooks and aggregated APIs by Service, kubelets, the pod and Service
// proxy subresources) and its "controlplane" context (webhooks by URL) through an
// HTTP CONNECT proxy on a unix socket, served here. The proxy connects to
// loopback only; anything else is refused before a packet is sent, with a 502
// whose text kube-apiserver puts into its error ("... proxy error ... code 502:
// 502 sandbox network guard: 10.96.0.12:443 is not on this machine"). The
// objects of the cluster are the same as in routes mode: a webhook Service keeps
// its ClusterIP and endpoints, and its call fails as it does there.

// egressSelectorFile is kube-apiserver's egress configuration, in the work directory.
const egressSelectorFile = "egress-selector.yaml"

// egressGuard is the proxy.
type egressGuard struct {
	dir     string // temporary directory holding the socket
	socket  string
	ln      net.Listener
	refused atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func startEgressGuard() (*egressGuard, error) {
	// A unix socket path has at most 107 bytes; a test's work directory can be
	// longer, so the socket lives in a short directory of its own (mode 0700: only
	// this user's processes, the apiserver among them, can connect).
	base := os.TempDir()
	if len(base) > 64 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "sandbox-egress-")
	if err != nil {
		return nil, fmt.Errorf("network guard: egress proxy directory: %w", err)
	}
	socket := filepath.Join(dir, "egress.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("network guard: egress proxy: %w", err)
	}
	g := &egressGuard{dir: dir, socket: socket, ln: ln, conns: map[net.Conn]struct{}{}}
	g.wg.Add(1)
	go g.serve()
	return g, nil
}

// writeConfig writes the EgressSelectorConfiguration pointing kube-apiserver's
// cluster and control-plane traffic at the proxy. etcd stays direct (loopback,
// checked by the dial-target tests).
func (g *egressGuard) writeConfig(path string) error {
	conn := fmt.Sprintf(`  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: %s
`, strconv.Quote(g.socket))
	cfg := "apiVersion: apiserver.k8s.io/v1beta1\nkind: EgressSelectorConfiguration\negressSelections:\n" +
		"- name: cluster\n" + conn + "- name: controlplane\n" + conn
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("network guard: writing egress selector configuration: %w", err)
	}
	return nil
}

// Refused counts the connections refused because their target is not local.
func (g *egressGuard) Refused() int64 { return g.refused.Load() }

func (g *egressGuard) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return // closed
		}
		if !g.track(c) {
			c.Close()
			return
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer g.untrack(c)
			g.handle(c)
		}()
	}
}

func (g *egressGuard) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *egressGuard) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	c.Close()
}

// handle serves one CONNECT: a loopback target is connected and spliced, anything
// else refused.
func (g *egressGuard) handle(c net.Conn) {
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		reply(c, http.StatusMethodNotAllowed, "sandbox network guard: only CONNECT")
		return
	}
	target, err := loopbackTarget(req.URL.Host)
	if err != nil {
		g.refused.Add(1)
		reply(c, http.StatusBadGateway, err.Error())
		return
	}
	up, err := (&net.Dialer{Timeout: 10 * time.Second}).Dial("tcp", target)
	if err != nil {
		reply(c, http.StatusBadGateway, "sandbox network guard: "+err.Error())
		return
	}
	if !g.track(up) {
		up.Close()
		return
	}
	defer g.untrack(up)
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, br); closeWrite(up); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

// loopbackTarget returns the address to connect to for a CONNECT target, or why
// it is refused. Only loopback literals and localhost names (RFC 6761, resolved
// here without asking a nameserver) are on this machine for sure.
func loopbackTarget(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("sandbox network guard: %q: %v", hostport, err)
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("sandbox network guard: %s is a name (resolving it would ask this machine's nameserver)", hostport)
	}
	if !a.IsLoopback() {
		return "", fmt.Errorf("sandbox network guard: %s is not on this machine", hostport)
	}
	return hostport, nil
}

// reply answers a CONNECT with an error status whose text is the reason.
func reply(c net.Conn, code int, reason string) {
	reason = strings.NewReplacer("\r", " ", "\n", " ").Replace(reason)
	_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code, reason)
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// Close stops the proxy, cutting the connections it carries (the apiserver is
// stopped by then), and removes the socket.
func (g *egressGuard) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	err := g.ln.Close()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
	if rmErr := os.RemoveAll(g.dir); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("network guard: closing the egress proxy: %w", err)
	}
	return nil
}
