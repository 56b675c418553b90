package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/access"
	"github.com/runbookdev/runbook/internal/calico"
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
// journal and the lock need on this cluster's Calico flavour is asked for with a
// SelfSubjectAccessReview. Missing ones are named and the command refuses (exit 11).
func (s *session) checkAccess(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, accessCheckTimeout)
	defer cancel()
	flavours, err := s.detectFlavours(ctx)
	if err != nil {
		return err
	}
	needs := access.Needs(s.rb, access.Options{JournalNamespace: s.f.namespace, FileJournal: s.f.state != "", Flavours: flavours})
	missing, err := access.Check(ctx, s.kube.AuthorizationV1(), needs)
	if err != nil {
		return fmt.Errorf("permissions preflight: %w", err)
	}
	if len(missing) > 0 {
		return exitcode.New(exitcode.Refused, errors.New(access.Describe(missing)))
	}
	return nil
}

// detectFlavours asks discovery which Calico APIs the cluster serves, as
// actions.Bind will, and pins --calico-api to the pool API found: bind then uses
// that API or fails, never another flavour than the one whose permissions were
// checked (should the Calico API server come or go in between). Detect needs no
// permission the preflight checks: discovery is open to every authenticated
// identity, and a forbidden APIService read only leaves v3's origin unknown.
func (s *session) detectFlavours(ctx context.Context) ([]decl.Flavour, error) {
	choice, err := calico.ParseAPIChoice(s.f.calicoAPI)
	if err != nil {
		return nil, exitcode.New(exitcode.Invalid, err)
	}
	det, err := calico.Detect(ctx, s.kube.Discovery(), s.dyn, choice)
	switch {
	case errors.Is(err, calico.ErrNotInstalled) && choice == calico.APIAuto:
		// No Calico: the pool actions fail saying so when they run (actions.Bind);
		// ask for what they need on a manifest install, the default one.
		return []decl.Flavour{decl.FlavourCRD}, nil
	case errors.Is(err, calico.ErrNotInstalled):
		// An explicit --calico-api the cluster cannot serve is the user's mistake.
		return nil, exitcode.Newf(exitcode.Invalid, "%v", err)
	case err != nil:
		return nil, fmt.Errorf("permissions preflight: detect the Calico API: %w", err)
	}
	s.f.calicoAPI = string(calico.APICRD)
	if det.Flavour == calico.FlavourV3 {
		s.f.calicoAPI = string(calico.APIV3)
	}
	return actions.FlavoursOf(det), nil
}
