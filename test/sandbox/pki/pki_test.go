package pki

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"testing"
)

func TestIssueVerifiesAgainstItsCA(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		req   Request
		usage x509.ExtKeyUsage
	}{
		{"server", Request{CommonName: "calico-api", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}, x509.ExtKeyUsageServerAuth},
		{"client", Request{CommonName: "front-proxy-client", Organizations: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pair, err := ca.Issue(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(pair.CertPEM)
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca.Cert)
			opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{tc.usage}}
			if tc.req.Server {
				opts.DNSName = "localhost"
			}
			if _, err := cert.Verify(opts); err != nil {
				t.Errorf("verify: %v", err)
			}
			if !slices.Equal(cert.Subject.Organization, tc.req.Organizations) || cert.Subject.CommonName != tc.req.CommonName {
				t.Errorf("subject %v", cert.Subject)
			}
			if _, err := pair.TLSCertificate(); err != nil {
				t.Errorf("key pair: %v", err)
			}
		})
	}
}

func TestCARoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Write(dir, "ca"); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) || !loaded.Key.Equal(ca.Key) {
		t.Error("loaded CA differs")
	}
}
