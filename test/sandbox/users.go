package sandbox

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// identity is a client-certificate user of the sandbox. Each component gets the
// identity it has on a kubeadm cluster, so RBAC is exercised as in production: the
// CNI stand-in's IPAM calls, for example, run with exactly the permissions of
// Calico's calico-cni-plugin ClusterRole.
type identity struct {
	file string // kubeconfig file name under <workDir>/kubeconfigs, or "" for the admin kubeconfig
	user envtest.User
}

var (
	adminUser     = identity{user: envtest.User{Name: "kubernetes-admin", Groups: []string{"system:masters"}}}
	kcmUser       = identity{file: ControllerManager, user: envtest.User{Name: "system:kube-controller-manager"}}
	schedulerUser = identity{file: Scheduler, user: envtest.User{Name: "system:kube-scheduler"}}
	kwokUser      = identity{file: Kwok, user: envtest.User{Name: "kwok-controller", Groups: []string{"system:masters"}}}
	// kubeletUser plays every kubelet for the CNI stand-in: it watches pods and
	// records the events a kubelet records.
	kubeletUser = identity{file: "kubelet", user: envtest.User{Name: "sandbox-kubelet", Groups: []string{"system:masters"}}}
	// cniUser is the calico-cni-plugin service account, bound by calico.yaml.
	cniUser = identity{file: "calico-cni-plugin", user: envtest.User{Name: "system:serviceaccount:kube-system:calico-cni-plugin"}}
)

// credentials provisions an identity and writes its kubeconfig, returning the path
// and the REST config.
func credentials(env *envtest.Environment, workDir string, id identity) (string, *rest.Config, error) {
	u, err := env.ControlPlane.AddUser(id.user, env.Config)
	if err != nil {
		return "", nil, fmt.Errorf("provisioning user %s: %w", id.user.Name, err)
	}
	cfg := u.Config()
	path := filepath.Join(workDir, "kubeconfig")
	if id.file != "" {
		path = filepath.Join(workDir, "kubeconfigs", id.file+".kubeconfig")
	}
	if err := writeKubeconfig(path, cfg, id.user.Name); err != nil {
		return "", nil, err
	}
	return path, cfg, nil
}

// writeKubeconfig writes cfg as a kubeconfig with a "sandbox" cluster and context.
func writeKubeconfig(path string, cfg *rest.Config, userName string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["sandbox"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[userName] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["sandbox"] = &clientcmdapi.Context{Cluster: "sandbox", AuthInfo: userName}
	kc.CurrentContext = "sandbox"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating kubeconfig directory: %w", err)
	}
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}
