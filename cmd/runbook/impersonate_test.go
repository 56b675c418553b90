package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

const kubeconfigWithAs = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t, as: from-kubeconfig, as-groups: [kc-group]}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`

// TestImpersonationFlags: --as, --as-group and --as-uid reach the client
// configuration as kubectl's do (set flags win over the kubeconfig's `as:`), and
// approve keeps --as for the approver's name.
func TestImpersonationFlags(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(kubeconfigWithAs), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		args      []string
		user, uid string
		groups    []string
	}{
		{"kubeconfig as: applies without flags", nil, "from-kubeconfig", "", []string{"kc-group"}},
		{"flags win", []string{"--as", "system:serviceaccount:runbook-system:runbook", "--as-group", "g1", "--as-group", "g2", "--as-uid", "42"},
			"system:serviceaccount:runbook-system:runbook", "42", []string{"g1", "g2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var k kubeFlags
			cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
			k.bind(cmd)
			if err := cmd.ParseFlags(append([]string{"--kubeconfig", kc}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			cfg, err := k.restConfig()
			if err != nil {
				t.Fatal(err)
			}
			im := cfg.Impersonate
			if im.UserName != tc.user || im.UID != tc.uid || !slices.Equal(im.Groups, tc.groups) {
				t.Fatalf("impersonation %+v, want user %q uid %q groups %v", im, tc.user, tc.uid, tc.groups)
			}
		})
	}
	approve := newApproveCmd(&globalOptions{})
	if f := approve.Flags().Lookup("as"); f == nil || f.Usage != "Who approves (default: the local user@host)" {
		t.Fatalf("approve --as: %+v", f)
	}
	if approve.Flags().Lookup("as-group") != nil {
		t.Fatal("approve has --as-group without --as impersonation")
	}
}
