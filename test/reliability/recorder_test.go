package reliability

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// stateWrite matches the requests that change what a migration is about: pools
// and IPAM, pods and evictions, namespaces, the journal and the lock. Events,
// which record what happened, are left out.
var stateWrite = struct {
	methods []string
	path    *regexp.Regexp
}{
	methods: []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
	path:    regexp.MustCompile(`/(eviction|(ippools|ipamblocks|blockaffinities|ipamhandles|installations|configmaps|leases|namespaces|pods)(/[^/]+)?)$`),
}

func isStateWrite(r *http.Request) bool {
	return slices.Contains(stateWrite.methods, r.Method) && stateWrite.path.MatchString(r.URL.Path)
}

// recorder is a plain-HTTP reverse proxy on loopback between one runbook process
// and the sandbox's apiserver (forwarding with the admin identity). Once armed it
// records every state write that process sends, with the apiserver's answer, so a
// test can tell a write the apiserver accepted (it changed the cluster) from one it
// refused (a 409 on a stale resourceVersion changes nothing) and name each in its
// failure message. One proxy per process keeps each process's writes apart.
type recorder struct {
	srv   *httptest.Server
	armed atomic.Bool

	mu     sync.Mutex
	writes []recorded
}

// recorded is one state write seen while armed.
type recorded struct {
	at           time.Time // when the request reached the proxy
	method, path string
	code         int   // the apiserver's status; 0 when it did not answer
	err          error // why the apiserver did not answer (the client went away)
}

// accepted reports whether the apiserver applied the write.
func (w recorded) accepted() bool { return w.code >= 200 && w.code < 300 }

// refused reports whether the apiserver answered and did not apply the write.
func (w recorded) refused() bool { return w.code >= 300 }

func (w recorded) String() string {
	switch {
	case w.accepted():
		return fmt.Sprintf("%s %s -> %d (accepted)", w.method, w.path, w.code)
	case w.refused():
		return fmt.Sprintf("%s %s -> %d (refused)", w.method, w.path, w.code)
	}
	return fmt.Sprintf("%s %s -> cut off, it may have been applied: %v", w.method, w.path, w.err)
}

// startRecorder runs a recorder forwarding to upstream; it is closed when the test
// ends (after the processes using it were killed by the test's context).
func startRecorder(t *testing.T, upstream *rest.Config) *recorder {
	t.Helper()
	target, err := url.Parse(upstream.Host)
	if err != nil {
		t.Fatalf("recorder: upstream %q: %v", upstream.Host, err)
	}
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		t.Fatalf("recorder: upstream transport: %v", err)
	}
	r := &recorder{}
	forward := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
		},
		Transport:     transport,
		FlushInterval: -1, // stream watches as they come
		// A client that goes away mid-watch (a killed process) is routine here.
		ErrorLog: log.New(io.Discard, "", 0),
		// The forward failed, mostly because the client cancelled its request:
		// whether the apiserver applied it is unknown. Told apart from an answer.
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			if sw, ok := w.(*statusWriter); ok {
				sw.err = err
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !r.armed.Load() || !isStateWrite(req) {
			forward.ServeHTTP(w, req)
			return
		}
		at := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		forward.ServeHTTP(sw, req)
		code := sw.code
		if sw.err != nil {
			code = 0
		}
		r.mu.Lock()
		r.writes = append(r.writes, recorded{at: at, method: req.Method, path: req.URL.Path, code: code, err: sw.err})
		r.mu.Unlock()
	}))
	t.Cleanup(func() {
		// Watches of processes that are gone may linger: drop them, then close.
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

// arm starts recording state writes; writes recorded so far are forgotten.
func (r *recorder) arm() {
	r.mu.Lock()
	r.writes = nil
	r.mu.Unlock()
	r.armed.Store(true)
}

// recorded returns the state writes since arm, in arrival order.
func (r *recorder) recorded() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writes)
}

// writeKubeconfig writes a kubeconfig pointing at the recorder (no credentials:
// the recorder forwards with the upstream's).
func (r *recorder) writeKubeconfig(path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["sandbox-recorder"] = &clientcmdapi.Cluster{Server: r.srv.URL}
	kc.AuthInfos["proxied"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["sandbox-recorder"] = &clientcmdapi.Context{Cluster: "sandbox-recorder", AuthInfo: "proxied"}
	kc.CurrentContext = "sandbox-recorder"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("recorder kubeconfig %s: %w", path, err)
	}
	return nil
}

// statusWriter remembers the status the apiserver answered with, or why it did
// not answer. Unwrap lets the reverse proxy flush streamed responses through it.
type statusWriter struct {
	http.ResponseWriter
	code int
	err  error
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// describeWrites lists writes one per line, for failure messages and logs.
func describeWrites(ws []recorded, since time.Time) string {
	if len(ws) == 0 {
		return "none"
	}
	lines := make([]string, len(ws))
	for i, w := range ws {
		lines[i] = fmt.Sprintf("  +%v %s", w.at.Sub(since).Round(time.Millisecond), w)
	}
	return "\n" + strings.Join(lines, "\n")
}
