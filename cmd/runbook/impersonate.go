package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/runbookdev/runbook/internal/access"
	"github.com/runbookdev/runbook/internal/exitcode"
)

// impersonation is kubectl's --as, --as-group and --as-uid: run as another identity
// (e.g. the ServiceAccount of deploy/rbac.yaml, to prove a change needs no more than
// it grants) with the caller's credentials and impersonate rights.
type impersonation struct {
	user   string
	groups []string
	uid    string
}

// bind adds the flags, unless the command already uses --as for something else
// (approve's approver name): there the kubeconfig's own `as:` still applies.
func (i *impersonation) bind(cmd *cobra.Command) {
	if cmd.Flags().Lookup("as") != nil {
		return
	}
	cmd.Flags().StringVar(&i.user, "as", "", "Username to impersonate for the operation (a ServiceAccount is system:serviceaccount:NAMESPACE:NAME)")
	cmd.Flags().StringArrayVar(&i.groups, "as-group", nil, "Group to impersonate for the operation (repeatable)")
	cmd.Flags().StringVar(&i.uid, "as-uid", "", "UID to impersonate for the operation")
}

// override applies the flags over the kubeconfig, as kubectl does: set flags win
// over the kubeconfig user's `as:`, `as-groups:` and `as-uid:`.
func (i *impersonation) override(o *clientcmd.ConfigOverrides) {
	if i.user != "" {
		o.AuthInfo.Impersonate = i.user
	}
	if len(i.groups) > 0 {
		o.AuthInfo.ImpersonateGroups = i.groups
	}
	if i.uid != "" {
		o.AuthInfo.ImpersonateUID = i.uid
	}
}

// accessCheckTimeout bounds the preflight's reviews (a few dozen small requests).
const accessCheckTimeout = time.Minute

// checkAccess is the permissions preflight of plan, apply and rollback: before
// anything is changed (and before the informers start, which would wait forever
// on a list they may not make) every permission the runbook's steps, hooks, the
// journal and the lock need is asked for with a SelfSubjectAccessReview. Missing
// ones are named and the command refuses (exit 11).
func (s *session) checkAccess(ctx context.Context) error {
	needs := access.Needs(s.rb, access.Options{JournalNamespace: s.f.namespace, FileJournal: s.f.state != ""})
	ctx, cancel := context.WithTimeout(ctx, accessCheckTimeout)
	defer cancel()
	missing, err := access.Check(ctx, s.kube.AuthorizationV1(), needs)
	if err != nil {
		return fmt.Errorf("permissions preflight: %w", err)
	}
	if len(missing) > 0 {
		return exitcode.New(exitcode.Refused, errors.New(access.Describe(missing)))
	}
	return nil
}
