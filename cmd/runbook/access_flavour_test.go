package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/exitcode"
)

// TestDetectFlavours: the permissions preflight asks about the flavours discovery
// finds and pins --calico-api to the pool API it checked, so bind cannot end up
// on another; an explicit choice the cluster cannot serve is a usage error (exit
// 2) before any review is made; without Calico the manifest install's needs are
// asked and auto is kept (bind reports Calico missing). Discovery is client-go's
// fake: the same answers calico.Detect gets from a real apiserver's discovery.
func TestDetectFlavours(t *testing.T) {
	v1 := &metav1.APIResourceList{GroupVersion: "crd.projectcalico.org/v1", APIResources: []metav1.APIResource{{Name: "ippools"}, {Name: "ipamblocks"}, {Name: "blockaffinities"}}}
	v3 := &metav1.APIResourceList{GroupVersion: "projectcalico.org/v3", APIResources: []metav1.APIResource{{Name: "ippools"}}}
	op := &metav1.APIResourceList{GroupVersion: "operator.tigera.io/v1", APIResources: []metav1.APIResource{{Name: "installations"}}}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": map[string]any{"name": "v3.projectcalico.org"},
		"spec":   map[string]any{"service": map[string]any{"namespace": "calico-apiserver", "name": "calico-api"}},
		"status": map[string]any{"conditions": []any{map[string]any{"type": "Available", "status": "True"}}}}}
	for _, tc := range []struct {
		name      string
		served    []*metav1.APIResourceList
		choice    string
		want      []decl.Flavour
		pinned    string
		code      exitcode.Code // for an error
		errSubstr string
	}{
		{name: "manifest install", served: []*metav1.APIResourceList{v1}, choice: "auto", want: []decl.Flavour{decl.FlavourCRD}, pinned: "crd"},
		{name: "Calico API server", served: []*metav1.APIResourceList{v1, v3}, choice: "auto", want: []decl.Flavour{decl.FlavourV3}, pinned: "v3"},
		{name: "Calico API server, --calico-api crd", served: []*metav1.APIResourceList{v1, v3}, choice: "crd", want: []decl.Flavour{decl.FlavourCRD}, pinned: "crd"},
		{name: "operator install", served: []*metav1.APIResourceList{v1, v3, op}, choice: "auto", want: []decl.Flavour{decl.FlavourV3, decl.FlavourOperator}, pinned: "v3"},
		{name: "no Calico, auto", choice: "auto", want: []decl.Flavour{decl.FlavourCRD}, pinned: "auto"},
		{name: "--calico-api v3 on a manifest install", served: []*metav1.APIResourceList{v1}, choice: "v3", code: exitcode.Invalid, errSubstr: "--calico-api v3"},
		{name: "--calico-api v2", served: []*metav1.APIResourceList{v1}, choice: "v2", code: exitcode.Invalid, errSubstr: `--calico-api "v2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			cs.Resources = tc.served
			dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}: "APIServiceList"}, apiService)
			s := &session{f: &runFlags{calicoAPI: tc.choice}, kube: cs, dyn: dyn}
			got, err := s.detectFlavours(context.Background())
			if tc.errSubstr != "" {
				if err == nil || exitcode.Of(err) != tc.code || !strings.Contains(err.Error(), tc.errSubstr) {
					t.Fatalf("err %v (exit %d), want exit %d naming %q", err, exitcode.Of(err), tc.code, tc.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("flavours %v, want %v", got, tc.want)
			}
			if s.f.calicoAPI != tc.pinned {
				t.Errorf("--calico-api pinned to %q, want %q", s.f.calicoAPI, tc.pinned)
			}
		})
	}
}
