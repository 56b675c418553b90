// Package faultproxy is a fault-injecting HTTPS proxy between a client and the
// sandbox's kube-apiserver, for reliability tests: it answers chosen requests
// with 5xx or 429, resets connections, adds latency, and can cut every open
// connection (watches included) at once. It listens on loopback only.
//
// Clients talk HTTP/1.1 to the proxy (a reset then drops one connection, as a
// failing load balancer does, instead of multiplexed HTTP/2 streams) and present
// no credentials: the proxy forwards with the identity of the upstream
// configuration it was started with.
package faultproxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/runbookdev/runbook/test/sandbox/pki"
)

// Proxy is a running fault proxy.
type Proxy struct {
	server   *http.Server
	listener net.Listener
	caPEM    []byte
	faults   faultSet

	connsMu sync.Mutex
	conns   map[net.Conn]struct{}

	requests, faulted atomic.Int64
	done              chan error
}

// Stats counts the requests the proxy received and those it applied a fault to.
type Stats struct {
	Requests, Faulted int64
}

// Start runs a proxy on 127.0.0.1 forwarding to the apiserver of upstream, with
// upstream's credentials.
func Start(upstream *rest.Config) (*Proxy, error) {
	target, err := url.Parse(upstream.Host)
	if err != nil {
		return nil, fmt.Errorf("fault proxy: upstream %q: %w", upstream.Host, err)
	}
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		return nil, fmt.Errorf("fault proxy: upstream transport: %w", err)
	}
	ca, err := pki.NewCA("sandbox-fault-proxy-ca")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: %w", err)
	}
	serving, err := ca.Issue(pki.Request{CommonName: "fault-proxy", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}, Server: true})
	if err != nil {
		return nil, fmt.Errorf("fault proxy: %w", err)
	}
	cert, err := serving.TLSCertificate()
	if err != nil {
		return nil, fmt.Errorf("fault proxy: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: listening: %w", err)
	}
	p := &Proxy{listener: ln, caPEM: ca.CertPEM, conns: map[net.Conn]struct{}{}, done: make(chan error, 1)}
	forward := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport:     transport,
		FlushInterval: -1, // stream watches as they come
		// A client that goes away mid-watch is routine here, not worth a log line.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.server = &http.Server{
		Handler: p.handler(forward),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{"http/1.1"},
			MinVersion:   tls.VersionTLS12,
		},
		// An empty, non-nil map turns HTTP/2 off.
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         p.track,
	}
	go func() { p.done <- p.server.ServeTLS(ln, "", "") }()
	return p, nil
}

// URL is the proxy's address, https://127.0.0.1:<port>.
func (p *Proxy) URL() string { return "https://" + p.listener.Addr().String() }

// Config returns a client configuration that talks to the apiserver through the
// proxy. Without rate limits of its own, client behaviour under faults is the
// caller's to set (QPS, timeouts).
func (p *Proxy) Config() *rest.Config {
	return &rest.Config{
		Host:            p.URL(),
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), p.caPEM...)},
		QPS:             1000,
		Burst:           2000,
	}
}

// WriteKubeconfig writes a kubeconfig for Config, for command-line clients.
func (p *Proxy) WriteKubeconfig(path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["sandbox-fault-proxy"] = &clientcmdapi.Cluster{Server: p.URL(), CertificateAuthorityData: p.caPEM}
	kc.AuthInfos["proxied"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["sandbox-fault-proxy"] = &clientcmdapi.Context{Cluster: "sandbox-fault-proxy", AuthInfo: "proxied"}
	kc.CurrentContext = "sandbox-fault-proxy"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("fault proxy: writing kubeconfig: %w", err)
	}
	return nil
}

// Set replaces the active faults; Set() with none clears them.
func (p *Proxy) Set(faults ...Fault) { p.faults.set(faults) }

// Add adds a fault after the active ones (the first matching fault applies).
func (p *Proxy) Add(f Fault) { p.faults.add(f) }

// Pending is how many faults are active: limited ones not used up yet, and
// unlimited ones.
func (p *Proxy) Pending() int {
	p.faults.mu.Lock()
	defer p.faults.mu.Unlock()
	return len(p.faults.faults)
}

// DropConnections resets every open client connection, idle ones and open
// watches included, as a restarting load balancer would.
func (p *Proxy) DropConnections() int {
	p.connsMu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.connsMu.Unlock()
	for _, c := range conns {
		reset(c)
	}
	return len(conns)
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	return Stats{Requests: p.requests.Load(), Faulted: p.faulted.Load()}
}

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.DropConnections()
	err := p.server.Shutdown(ctx)
	if serveErr := <-p.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if err != nil {
		return fmt.Errorf("fault proxy: closing: %w", err)
	}
	return nil
}

func (p *Proxy) handler(forward http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		f, ok := p.faults.take(r)
		if !ok {
			forward.ServeHTTP(w, r)
			return
		}
		p.faulted.Add(1)
		if f.Latency > 0 {
			select {
			case <-time.After(f.Latency):
			case <-r.Context().Done():
				return
			}
		}
		switch {
		case f.Reset:
			p.resetRequest(w)
		case f.Status != 0:
			writeStatus(w, f)
		default:
			forward.ServeHTTP(w, r)
		}
	})
}

// resetRequest aborts the request's connection with a TCP reset.
func (p *Proxy) resetRequest(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // not HTTP/1: abort the stream
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	reset(conn)
}

// reset closes a connection with SO_LINGER 0, so the peer gets a RST instead of
// an orderly FIN.
func reset(c net.Conn) {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}

// writeStatus answers like the apiserver does, with a metav1.Status body.
func writeStatus(w http.ResponseWriter, f Fault) {
	status := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Code:     int32(f.Status),
		Reason:   reasonFor(f.Status),
		Message:  fmt.Sprintf("injected by the sandbox fault proxy: %d %s", f.Status, http.StatusText(f.Status)),
	}
	if f.RetryAfter > 0 {
		secs := int(f.RetryAfter.Round(time.Second) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		status.Details = &metav1.StatusDetails{RetryAfterSeconds: int32(secs)}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	_ = json.NewEncoder(w).Encode(status)
}

func reasonFor(code int) metav1.StatusReason {
	switch code {
	case http.StatusTooManyRequests:
		return metav1.StatusReasonTooManyRequests
	case http.StatusServiceUnavailable:
		return metav1.StatusReasonServiceUnavailable
	case http.StatusGatewayTimeout:
		return metav1.StatusReasonTimeout
	case http.StatusInternalServerError:
		return metav1.StatusReasonInternalError
	}
	return metav1.StatusReasonUnknown
}

// track remembers open connections for DropConnections.
func (p *Proxy) track(c net.Conn, state http.ConnState) {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	switch state {
	case http.StateNew:
		p.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(p.conns, c)
	}
}
