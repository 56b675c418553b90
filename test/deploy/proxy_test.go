package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
)

// apiCall is one request as RBAC sees it.
type apiCall struct {
	Verb, Group, Resource, Namespace string // Resource includes the subresource: pods/eviction
	// Name is the object a get, update, patch or delete names (RBAC resourceNames
	// can allow just it); "" for the other verbs.
	Name string
}

func (c apiCall) String() string {
	ns := c.Namespace
	if ns == "" {
		ns = "*"
	}
	s := c.Verb + " " + c.Group + "/" + c.Resource + " in " + ns
	if c.Name != "" {
		s += " named " + c.Name
	}
	return s
}

// recordingProxy stands between the binary and the apiserver as the in-cluster
// "kubernetes" Service would: TLS with its own CA (the ca.crt the pod gets), the
// service account's bearer token passed through, every request recorded.
type recordingProxy struct {
	addr   string
	caPEM  []byte
	server *http.Server
	mu     sync.Mutex
	calls  map[apiCall]int
}

func startRecordingProxy(t *testing.T, upstream *rest.Config) *recordingProxy {
	t.Helper()
	return startProxy(t, upstream, false)
}

// startImpersonatingProxy is a recording proxy for a client that impersonates
// (--as): the proxy authenticates upstream with the admin client certificate and
// passes the Impersonate-* headers on, so the apiserver authorizes each request
// as the impersonated identity, as it would without the proxy.
func startImpersonatingProxy(t *testing.T, upstream *rest.Config) *recordingProxy {
	t.Helper()
	return startProxy(t, upstream, true)
}

func startProxy(t *testing.T, upstream *rest.Config, adminCert bool) *recordingProxy {
	t.Helper()
	target, err := url.Parse(upstream.Host)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(upstream.CAData) {
		t.Fatal("the sandbox's REST config has no CA data")
	}
	p := &recordingProxy{calls: map[apiCall]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	// Only the CA: the admin client certificate must not authenticate the requests,
	// the pod's token must.
	tlsConfig := &tls.Config{RootCAs: pool}
	if adminCert {
		cert, err := tls.X509KeyPair(upstream.CertData, upstream.KeyData)
		if err != nil {
			t.Fatalf("the sandbox's admin client certificate: %v", err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	rp.Transport = &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: true}
	rp.FlushInterval = -1 // watches stream
	cert, caPEM := selfSigned(t)
	p.caPEM = caPEM
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := classify(r); ok {
			p.mu.Lock()
			p.calls[c]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.server.Serve(ln) }()
	t.Cleanup(func() { _ = p.server.Close() })
	return p
}

func (p *recordingProxy) recorded() []apiCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]apiCall, 0, len(p.calls))
	for c := range p.calls {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// classify maps a resource request to its RBAC verb and resource, as the
// apiserver's RequestInfo does; discovery and other non-resource paths are false.
func classify(r *http.Request) (apiCall, bool) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var c apiCall
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:] // api/v1
	case len(parts) >= 4 && parts[0] == "apis":
		c.Group, parts = parts[1], parts[3:] // apis/group/version
	default:
		return c, false
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) > 2 {
		c.Namespace, parts = parts[1], parts[2:]
	}
	c.Resource = parts[0]
	name := ""
	if len(parts) >= 2 {
		name = parts[1]
	}
	if len(parts) >= 3 {
		c.Resource += "/" + parts[2]
	}
	switch r.Method {
	case http.MethodGet:
		switch {
		case r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1":
			c.Verb = "watch"
		case name == "":
			c.Verb = "list"
		default:
			c.Verb, c.Name = "get", name
		}
	case http.MethodPost:
		c.Verb = "create"
	case http.MethodPut:
		c.Verb, c.Name = "update", name
	case http.MethodPatch:
		c.Verb, c.Name = "patch", name
	case http.MethodDelete:
		c.Verb, c.Name = "delete", name
		if name == "" {
			c.Verb = "deletecollection"
		}
	default:
		return c, false
	}
	// A list or watch that selects metadata.name is authorized by that name
	// (RBAC resourceNames), as the apiserver's RequestInfoFactory does
	// (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go).
	if c.Verb == "list" || c.Verb == "watch" {
		if sel, err := fields.ParseSelector(r.URL.Query().Get("fieldSelector")); err == nil {
			if n, ok := sel.RequiresExactMatch("metadata.name"); ok {
				c.Name = n
			}
		}
	}
	return c, true
}

// selfSigned is a CA-signed-by-itself serving certificate for 127.0.0.1.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM
}
