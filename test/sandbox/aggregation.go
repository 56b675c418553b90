package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/runbookdev/runbook/test/sandbox/pki"
)

// Front-proxy credentials of the aggregation layer, as kubeadm names them.
const (
	frontProxyCA     = "front-proxy-ca"
	frontProxyClient = "front-proxy-client"
)

// configureAggregation gives kube-apiserver the aggregation layer kubeadm
// configures (--requestheader-* and --proxy-client-*), so that aggregated API
// servers such as Calico's can be registered. The front-proxy CA and client
// certificate are created once per work directory, so a restarted apiserver
// keeps them (and the extension-apiserver-authentication ConfigMap does not
// change under running aggregated servers).
func configureAggregation(api *envtest.APIServer, pkiDir string) error {
	if err := ensureFrontProxyCerts(pkiDir); err != nil {
		return err
	}
	args := api.Configure()
	args.Set("requestheader-client-ca-file", filepath.Join(pkiDir, frontProxyCA+".crt"))
	args.Set("requestheader-allowed-names", frontProxyClient)
	args.Set("requestheader-username-headers", "X-Remote-User")
	args.Set("requestheader-group-headers", "X-Remote-Group")
	args.Set("requestheader-extra-headers-prefix", "X-Remote-Extra-")
	args.Set("proxy-client-cert-file", filepath.Join(pkiDir, frontProxyClient+".crt"))
	args.Set("proxy-client-key-file", filepath.Join(pkiDir, frontProxyClient+".key"))
	return nil
}

func ensureFrontProxyCerts(pkiDir string) error {
	if _, err := os.Stat(filepath.Join(pkiDir, frontProxyClient+".key")); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("front-proxy certificates: %w", err)
	}
	ca, err := pki.NewCA(frontProxyCA)
	if err != nil {
		return fmt.Errorf("front-proxy certificates: %w", err)
	}
	client, err := ca.Issue(pki.Request{CommonName: frontProxyClient})
	if err != nil {
		return fmt.Errorf("front-proxy certificates: %w", err)
	}
	return errors.Join(ca.Write(pkiDir, frontProxyCA), client.Write(pkiDir, frontProxyClient))
}
