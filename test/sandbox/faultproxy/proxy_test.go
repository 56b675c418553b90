package faultproxy

import (
	"bufio"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// startPair runs a fake apiserver and a proxy in front of it, and returns an
// HTTP client for the proxy.
func startPair(t *testing.T) (*Proxy, *http.Client) {
	t.Helper()
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") == "true" {
			for i := 0; ; i++ { // a watch: one event per 10 ms until the client goes
				if _, err := fmt.Fprintf(w, "event %d\n", i); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		fmt.Fprintf(w, "upstream %s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(upstream.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: upstream.Certificate().Raw})
	p, err := Start(&rest.Config{Host: upstream.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	transport, err := rest.TransportFor(p.Config())
	if err != nil {
		t.Fatal(err)
	}
	return p, &http.Client{Transport: transport, Timeout: 10 * time.Second}
}

func TestFaults(t *testing.T) {
	watch, notWatch := true, false
	for _, tc := range []struct {
		name        string
		fault       Fault
		method, url string
		wantStatus  int    // 0: a transport error is expected
		wantErr     string // part of the transport error
		minDuration time.Duration
	}{
		{name: "no fault", method: "GET", url: "/api/v1/pods", wantStatus: 200},
		{name: "status", fault: Fault{Status: 503}, method: "GET", url: "/api/v1/pods", wantStatus: 503},
		{name: "other method", fault: Fault{Status: 500, Methods: []string{"PATCH"}}, method: "GET", url: "/api/v1/pods", wantStatus: 200},
		{name: "method", fault: Fault{Status: 500, Methods: []string{"PATCH"}}, method: "PATCH", url: "/api/v1/pods/x", wantStatus: 500},
		{name: "path", fault: Fault{Status: 429, Path: regexp.MustCompile(`/ippools`)}, method: "GET", url: "/apis/crd.projectcalico.org/v1/ippools", wantStatus: 429},
		{name: "other path", fault: Fault{Status: 429, Path: regexp.MustCompile(`/ippools`)}, method: "GET", url: "/api/v1/nodes", wantStatus: 200},
		{name: "watch only", fault: Fault{Status: 500, Watch: &watch}, method: "GET", url: "/api/v1/nodes", wantStatus: 200},
		{name: "no watches", fault: Fault{Status: 500, Watch: &notWatch}, method: "GET", url: "/api/v1/nodes", wantStatus: 500},
		{name: "reset", fault: Fault{Reset: true}, method: "GET", url: "/api/v1/pods", wantErr: "connection reset"},
		{name: "latency", fault: Fault{Latency: 300 * time.Millisecond}, method: "GET", url: "/api/v1/pods", wantStatus: 200, minDuration: 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, client := startPair(t)
			p.Set(tc.fault)
			req, _ := http.NewRequest(tc.method, p.URL()+tc.url, nil)
			start := time.Now()
			resp, err := client.Do(req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if d := time.Since(start); d < tc.minDuration {
				t.Errorf("took %v, want >= %v", d, tc.minDuration)
			}
			if tc.wantStatus >= 400 {
				var st metav1.Status
				if err := json.Unmarshal(body, &st); err != nil || int(st.Code) != tc.wantStatus || st.Kind != "Status" {
					t.Errorf("body %s is not a Kubernetes Status with code %d", body, tc.wantStatus)
				}
			}
		})
	}
}

// A fault with Times applies that often, then the request goes through; faults
// apply in order; Set() clears them.
func TestTimesAndOrder(t *testing.T) {
	p, client := startPair(t)
	p.Set(Fault{Status: 503, Times: 2, RetryAfter: 2 * time.Second}, Fault{Status: 500, Times: 1})
	var got []int
	for range 5 {
		resp, err := client.Get(p.URL() + "/api/v1/pods")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
		}
		resp.Body.Close()
		got = append(got, resp.StatusCode)
	}
	if fmt.Sprint(got) != "[503 503 500 200 200]" {
		t.Errorf("statuses %v", got)
	}
	if st := p.Stats(); st.Requests != 5 || st.Faulted != 3 {
		t.Errorf("stats %+v", st)
	}
	p.Set(Fault{Status: 500})
	p.Set()
	resp, err := client.Get(p.URL() + "/api/v1/pods")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after clearing: %v %v", resp, err)
	}
	resp.Body.Close()
}

// DropConnections cuts an open watch.
func TestDropConnectionsCutsWatches(t *testing.T) {
	p, client := startPair(t)
	resp, err := client.Get(p.URL() + "/api/v1/pods?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "event") {
		t.Fatalf("first event: %q %v", line, err)
	}
	if n := p.DropConnections(); n < 1 {
		t.Fatalf("dropped %d connections", n)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-deadline:
			t.Fatal("watch still streaming after DropConnections")
		default:
		}
		if _, err := r.ReadString('\n'); err != nil {
			return // cut
		}
	}
}
