package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/cobra"
)

// refusing fails the first n round trips as a restarting apiserver does (connection
// refused), then answers 201.
type refusing struct{ n, calls int }

func (r *refusing) RoundTrip(req *http.Request) (*http.Response, error) {
	r.calls++
	if r.calls <= r.n {
		return nil, &netOpErr{}
	}
	return &http.Response{StatusCode: 201, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

type netOpErr struct{}

func (*netOpErr) Error() string { return "dial tcp 127.0.0.1:6443: connect: connection refused" }
func (*netOpErr) Unwrap() error { return syscall.ECONNREFUSED }

// TestClientRidesOutARestart: every command's client configuration retries a
// write whose connection was refused (client-go alone would fail the step).
func TestClientRidesOutARestart(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(kubeconfigWithAs), 0o600); err != nil {
		t.Fatal(err)
	}
	var k kubeFlags
	cmd := &cobra.Command{Use: "x"}
	k.bind(cmd)
	if err := cmd.ParseFlags([]string{"--kubeconfig", kc}); err != nil {
		t.Fatal(err)
	}
	cfg, err := k.restConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WrapTransport == nil {
		t.Fatal("no retrying transport in the client configuration")
	}
	rt := &refusing{n: 2}
	req, _ := http.NewRequest(http.MethodPost, "https://127.0.0.1:6443/api/v1/namespaces/x/configmaps", strings.NewReader("{}"))
	resp, err := cfg.WrapTransport(rt).RoundTrip(req)
	if err != nil || resp.StatusCode != 201 || rt.calls != 3 {
		t.Fatalf("resp %v err %v after %d calls; want 201 after 3", resp, err, rt.calls)
	}
}
