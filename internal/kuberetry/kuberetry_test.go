package kuberetry

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// script answers the n-th request with steps[n] (the last one repeats): a status
// code, or 0 to reset the connection.
type script struct {
	mu     sync.Mutex
	steps  []int
	n      int
	bodies []string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	step := s.steps[min(s.n, len(s.steps)-1)]
	s.n++
	b, _ := io.ReadAll(r.Body)
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
	if step == 0 {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.(*net.TCPConn).SetLinger(0) // RST, not FIN
			conn.Close()
		}
		return
	}
	w.WriteHeader(step)
}

func TestRetries(t *testing.T) {
	fast := wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 5}
	for _, tc := range []struct {
		name      string
		method    string
		steps     []int
		want      int // final status, 0 for an error
		wantCalls int
	}{
		{"503 then ok, a write", http.MethodPost, []int{503, 503, 200}, 200, 3},
		{"503 for ever gives up", http.MethodPatch, []int{503}, 503, 5},
		{"502 on a write stands", http.MethodPost, []int{502, 200}, 502, 1},
		{"502 on a read is retried", http.MethodGet, []int{502, 200}, 200, 2},
		{"504 on a read is retried", http.MethodGet, []int{504, 200}, 200, 2},
		{"500 is an answer", http.MethodGet, []int{500, 200}, 500, 1},
		{"429 is an answer", http.MethodPost, []int{429, 200}, 429, 1},
		{"reset on a read is retried", http.MethodGet, []int{0, 200}, 200, 2},
		{"reset on a write is not: it may have been applied", http.MethodPost, []int{0, 200}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{steps: tc.steps}
			srv := httptest.NewServer(s)
			defer srv.Close()
			c := &http.Client{Transport: &transport{next: http.DefaultTransport, backoff: fast}}
			req, err := http.NewRequest(tc.method, srv.URL, strings.NewReader(`{"spec":{}}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			got := 0
			if err == nil {
				got = resp.StatusCode
				resp.Body.Close()
			}
			if got != tc.want || s.n != tc.wantCalls {
				t.Fatalf("status %d after %d calls (err %v), want %d after %d", got, s.n, err, tc.want, tc.wantCalls)
			}
			for i, b := range s.bodies {
				if b != `{"spec":{}}` {
					t.Errorf("attempt %d sent body %q", i, b)
				}
			}
		})
	}
}

// TestRetriesUntilTheServerIsBack: a write made while nothing listens (an
// apiserver restarting) goes through once the server is up again.
func TestRetriesUntilTheServerIsBack(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // connection refused from now on
	s := &script{steps: []int{201}}
	go func() {
		time.Sleep(100 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return // port taken meanwhile: the request fails and the test says so
		}
		_ = http.Serve(l, s)
	}()
	c := &http.Client{Transport: &transport{next: http.DefaultTransport, backoff: wait.Backoff{Duration: 20 * time.Millisecond, Factor: 1.5, Steps: 20}}}
	resp, err := c.Post("http://"+addr, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatalf("the write did not survive the restart: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || s.n != 1 {
		t.Fatalf("status %d after %d calls, want 201 after 1", resp.StatusCode, s.n)
	}
}
