package deploytest

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats-server/v2/server"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/loanflow/loanflow/pkg/bus"
)

// Just enough of the Kubernetes types to check what loanflow's manifests say.
type (
	object struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
		Spec struct {
			Replicas *int `json:"replicas"`
			// Selector is {matchLabels: …} in workloads and budgets, the labels themselves in a
			// Service.
			Selector map[string]any `json:"selector"`
			Template struct {
				Metadata struct {
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
				Spec podSpec `json:"spec"`
			} `json:"template"`
			// Service
			Ports []struct {
				Port       int    `json:"port"`
				TargetPort any    `json:"targetPort"`
				Name       string `json:"name"`
			} `json:"ports"`
			// HorizontalPodAutoscaler
			ScaleTargetRef struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"scaleTargetRef"`
			MinReplicas int `json:"minReplicas"`
			MaxReplicas int `json:"maxReplicas"`
			// PodDisruptionBudget
			MinAvailable any `json:"minAvailable"`
		} `json:"spec"`
	}
	podSpec struct {
		Containers      []container `json:"containers"`
		SecurityContext struct {
			RunAsNonRoot bool `json:"runAsNonRoot"`
		} `json:"securityContext"`
		Volumes []struct {
			Name   string `json:"name"`
			Secret *struct {
				SecretName string                       `json:"secretName"`
				Items      []struct{ Key, Path string } `json:"items"`
			} `json:"secret"`
		} `json:"volumes"`
	}
	container struct {
		Name  string `json:"name"`
		Image string `json:"image"`
		Ports []struct {
			Name          string `json:"name"`
			ContainerPort int    `json:"containerPort"`
		} `json:"ports"`
		Env []struct {
			Name      string `json:"name"`
			Value     string `json:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name, Key string
					Optional  bool `json:"optional"`
				} `json:"secretKeyRef"`
			} `json:"valueFrom"`
		} `json:"env"`
		EnvFrom []struct {
			ConfigMapRef *struct{ Name string } `json:"configMapRef"`
		} `json:"envFrom"`
		LivenessProbe, ReadinessProbe *struct {
			HTTPGet *struct {
				Path string `json:"path"`
				Port any    `json:"port"`
			} `json:"httpGet"`
		}
		VolumeMounts []struct {
			Name      string `json:"name"`
			MountPath string `json:"mountPath"`
		} `json:"volumeMounts"`
	}
)

// render builds a kustomization offline, as kubectl apply -k would.
func render(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	var out []object
	for _, r := range res.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: %v", r.GetName(), err)
		}
		out = append(out, o)
	}
	return out
}

func TestKubernetesManifestsMatchTheServices(t *testing.T) {
	root := repoRoot(t)
	for _, tc := range []struct{ dir, registry, tag string }{
		{"base", "loanflow/", ""},
		{"overlays/production", "registry.bank.example/loanflow/", ":1.0.0"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			objs := render(t, filepath.Join(root, "deploy", "k8s", tc.dir))
			byKind := map[string]map[string]object{}
			for _, o := range objs {
				if byKind[o.Kind] == nil {
					byKind[o.Kind] = map[string]object{}
				}
				byKind[o.Kind][o.Metadata.Name] = o
			}
			configMaps := map[string]map[string]string{}
			for name, cm := range byKind["ConfigMap"] {
				configMaps[name] = cm.Data
			}
			var provision bus.Settings
			busOf := map[string]bus.Settings{}
			workloads := map[string]object{}
			for name, d := range byKind["Deployment"] {
				workloads[name] = d
			}
			job, ok := byKind["Job"]["provision"]
			if !ok {
				t.Fatal("no provisioning Job")
			}
			workloads["provision"] = job
			for _, kind := range []string{"ingress", "scoring", "offers", "audit", "console", "provision"} {
				w, ok := workloads[kind]
				if !ok {
					t.Errorf("no workload for %s", kind)
					continue
				}
				pod := w.Spec.Template.Spec
				if len(pod.Containers) != 1 {
					t.Errorf("%s: %d containers, want 1", kind, len(pod.Containers))
					continue
				}
				c := pod.Containers[0]
				if want := tc.registry + kind + tc.tag; c.Image != want {
					t.Errorf("%s: image %s, want %s", kind, c.Image, want)
				}
				if !pod.SecurityContext.RunAsNonRoot {
					t.Errorf("%s: may run as root", kind)
				}
				e := podEnv(t, kind, c, configMaps)
				var bs bus.Settings
				if err := env.ParseWithOptions(&bs, env.Options{Environment: e}); err != nil {
					t.Errorf("%s: %v", kind, err)
				}
				busOf[kind] = bs
				checkCAVolume(t, kind, pod, c, bs.CA)
				if kind == "provision" {
					provision = bs
					if bs.User != "admin" {
						t.Errorf("provision logs in as %q, want admin", bs.User)
					}
					continue
				}
				checkPod(t, kind, w, c, e, bs)
			}
			for kind, bs := range busOf {
				if !reflect.DeepEqual(bs.Retry(), provision.Retry()) || bs.Topology() != provision.Topology() {
					t.Errorf("%s: retry or topology differs from the provisioning Job's", kind)
				}
			}
			checkServices(t, byKind)
			checkAvailability(t, byKind)
		})
	}
}

// podEnv resolves a container's environment: literal values, the ConfigMaps of envFrom, and a
// placeholder for each secret key (present in the cluster, not in the repository).
func podEnv(t *testing.T, kind string, c container, configMaps map[string]map[string]string) map[string]string {
	t.Helper()
	e := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		data, ok := configMaps[from.ConfigMapRef.Name]
		if !ok {
			t.Errorf("%s: envFrom ConfigMap %s is not in the kustomization", kind, from.ConfigMapRef.Name)
		}
		for k, v := range data {
			e[k] = v
		}
	}
	for _, v := range c.Env {
		switch {
		case v.ValueFrom != nil && v.ValueFrom.SecretKeyRef != nil:
			ref := v.ValueFrom.SecretKeyRef
			if !slices.Contains([]string{"loanflow-secrets", "loanflow-nats-users"}, ref.Name) {
				t.Errorf("%s: %s from secret %s, which the README does not tell operators to create", kind, v.Name, ref.Name)
			}
			if ref.Name == "loanflow-nats-users" && ref.Key != e["NATS_USER"] && ref.Key != kind {
				t.Errorf("%s: password from key %s of loanflow-nats-users", kind, ref.Key)
			}
			e[v.Name] = "secret:" + ref.Name + "/" + ref.Key + strings.Repeat("x", 32)
		case v.ValueFrom != nil:
			t.Errorf("%s: %s from an unexpected source", kind, v.Name)
		default:
			e[v.Name] = v.Value
		}
	}
	return e
}

func checkPod(t *testing.T, kind string, w object, c container, e map[string]string, bs bus.Settings) {
	t.Helper()
	reads, required := readsOf(t, kind)
	for k := range e {
		if !reads[k] && !readByProcess(k) {
			t.Errorf("%s: sets %s, which it does not read", kind, k)
		}
	}
	for _, k := range required {
		if e[k] == "" {
			t.Errorf("%s: %s must be set: it reads it", kind, k)
		}
	}
	if typ, ok := serviceConfigs[kind]; ok {
		if err := env.ParseWithOptions(reflect.New(typ).Interface(), env.Options{Environment: e}); err != nil {
			t.Errorf("%s's Config does not parse this environment: %v", kind, err)
		}
	}
	if bs.Provisions() || bs.User != kind || bs.InboxPrefix != "_INBOX_"+kind || bs.Topology().Replicas != 3 {
		t.Errorf("%s: provision %v, user %q, inbox %q, replicas %d", kind, bs.Provisions(), bs.User, bs.InboxPrefix, bs.Topology().Replicas)
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	_, adminPort, err := net.SplitHostPort(e["LOANFLOW_ADMIN_ADDR"])
	if err != nil || strconv.Itoa(ports["admin"]) != adminPort {
		t.Errorf("%s: admin port %d, but LOANFLOW_ADMIN_ADDR is %q", kind, ports["admin"], e["LOANFLOW_ADMIN_ADDR"])
	}
	for probe, p := range map[string]*struct {
		HTTPGet *struct {
			Path string `json:"path"`
			Port any    `json:"port"`
		} `json:"httpGet"`
	}{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != probe || p.HTTPGet.Port != "admin" {
			t.Errorf("%s: probe for %s is %+v, want httpGet %s on port admin", kind, probe, p, probe)
		}
	}
	listen := map[string]string{"ingress": "LOANFLOW_HTTP_ADDR", "console": "LOANFLOW_CONSOLE_ADDR"}[kind]
	if listen != "" {
		_, want, _ := net.SplitHostPort(e[listen])
		if strconv.Itoa(ports["http"]) != want {
			t.Errorf("%s: http port %d, but %s is %q", kind, ports["http"], listen, e[listen])
		}
	}
	if sel := selectorOf(w); len(sel) == 0 || !subset(sel, w.Spec.Template.Metadata.Labels) {
		t.Errorf("%s: selector %v does not select its pods %v", kind, sel, w.Spec.Template.Metadata.Labels)
	}
}

// checkCAVolume: NATS_CA is the ca.crt of the chart's TLS secret, mounted read-only.
func checkCAVolume(t *testing.T, kind string, pod podSpec, c container, ca string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(ca, m.MountPath+"/") {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == "nats-server-tls" &&
				len(v.Secret.Items) == 1 && v.Secret.Items[0].Key == "ca.crt" && m.MountPath+"/"+v.Secret.Items[0].Path == ca {
				return
			}
		}
	}
	t.Errorf("%s: NATS_CA %q is not nats-server-tls's ca.crt", kind, ca)
}

func checkServices(t *testing.T, byKind map[string]map[string]object) {
	t.Helper()
	for _, name := range []string{"ingress", "console"} {
		s, ok := byKind["Service"][name]
		if !ok {
			t.Errorf("no Service %s", name)
			continue
		}
		d := byKind["Deployment"][name]
		if !subset(selectorOf(s), d.Spec.Template.Metadata.Labels) {
			t.Errorf("Service %s selects no pod of its Deployment", name)
		}
		for _, p := range s.Spec.Ports {
			found := false
			for _, cp := range d.Spec.Template.Spec.Containers[0].Ports {
				if p.TargetPort == cp.Name || p.TargetPort == float64(cp.ContainerPort) {
					found = true
				}
			}
			if !found {
				t.Errorf("Service %s targets port %v, which %s does not expose", name, p.TargetPort, name)
			}
		}
	}
}

func checkAvailability(t *testing.T, byKind map[string]map[string]object) {
	t.Helper()
	for _, name := range []string{"ingress", "scoring"} {
		h, ok := byKind["HorizontalPodAutoscaler"][name]
		if !ok || h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != name || h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas <= h.Spec.MinReplicas {
			t.Errorf("HorizontalPodAutoscaler %s: %+v", name, h.Spec)
		}
		p, ok := byKind["PodDisruptionBudget"][name]
		if !ok || !subset(selectorOf(p), byKind["Deployment"][name].Spec.Template.Metadata.Labels) {
			t.Errorf("PodDisruptionBudget %s does not cover its Deployment", name)
		}
	}
}

// selectorOf reads an object's label selector, whichever form it has.
func selectorOf(o object) map[string]string {
	sel := o.Spec.Selector
	if m, ok := sel["matchLabels"].(map[string]any); ok {
		sel = m
	}
	out := map[string]string{}
	for k, v := range sel {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestNATSChartValuesMatchDeployNATS checks deploy/k8s/nats-values.yaml: 3 replicas, file
// storage, sync_interval always, TLS for clients and verified TLS between routes, and the very
// users and permissions of deploy/nats/users.conf.
func TestNATSChartValuesMatchDeployNATS(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "k8s", "nats-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Container struct {
			Image struct{ Tag string }
			Env   map[string]struct {
				ValueFrom struct {
					SecretKeyRef struct{ Name, Key string } `json:"secretKeyRef"`
				} `json:"valueFrom"`
			}
		}
		Config struct {
			Cluster struct {
				Enabled  bool
				Replicas int
				TLS      struct {
					Enabled bool
					Merge   struct{ Verify bool }
				} `json:"tls"`
			}
			Nats struct {
				TLS struct{ Enabled bool } `json:"tls"`
			}
			Jetstream struct {
				Enabled   bool
				FileStore struct{ Enabled bool } `json:"fileStore"`
				Merge     map[string]string
			}
			Merge struct {
				Authorization struct {
					Users []struct {
						User        string
						Password    string
						Permissions struct {
							Publish   any
							Subscribe any
						}
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 || !c.Cluster.TLS.Enabled || !c.Cluster.TLS.Merge.Verify || !c.Nats.TLS.Enabled {
		t.Errorf("cluster %+v, client TLS %v: want 3 replicas, mutual TLS routes, client TLS", c.Cluster, c.Nats.TLS.Enabled)
	}
	if !c.Jetstream.Enabled || !c.Jetstream.FileStore.Enabled || c.Jetstream.Merge["sync_interval"] != "<< always >>" {
		t.Errorf("jetstream %+v: want file storage with sync_interval always", c.Jetstream)
	}
	if !strings.HasPrefix(v.Container.Image.Tag, "2.15") {
		t.Errorf("nats-server %s, want 2.15 (the version the tests pin)", v.Container.Image.Tag)
	}
	for _, u := range users {
		t.Setenv("NATS_"+strings.ToUpper(u)+"_PASSWORD", "p")
	}
	opts, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), "deploy", "nats", "users.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*server.Permissions{}
	for _, u := range opts.Users {
		want[u.Username] = u.Permissions
	}
	got := c.Merge.Authorization.Users
	if len(got) != len(want) {
		t.Errorf("%d users, users.conf has %d", len(got), len(want))
	}
	for _, u := range got {
		w, ok := want[u.User]
		if !ok {
			t.Errorf("user %s is not in users.conf", u.User)
			continue
		}
		env := "NATS_" + strings.ToUpper(u.User) + "_PASSWORD"
		if u.Password != "<< $"+env+" >>" || v.Container.Env[env].ValueFrom.SecretKeyRef != (struct{ Name, Key string }{"loanflow-nats-users", u.User}) {
			t.Errorf("%s: password %q from %+v, want $%s from loanflow-nats-users/%s", u.User, u.Password, v.Container.Env[env], env, u.User)
		}
		if !samePermissions(u.Permissions.Publish, w.Publish) || !samePermissions(u.Permissions.Subscribe, w.Subscribe) {
			t.Errorf("%s: permissions differ from users.conf", u.User)
		}
	}
}

// samePermissions compares the chart's form (a subject, or allow/deny lists) with the server's.
func samePermissions(chart any, conf *server.SubjectPermission) bool {
	var allow, deny []string
	switch p := chart.(type) {
	case string:
		allow = []string{p}
	case map[string]any:
		allow, deny = strs(p["allow"]), strs(p["deny"])
	}
	if conf == nil {
		return allow == nil && deny == nil
	}
	return slices.Equal(allow, conf.Allow) && slices.Equal(deny, conf.Deny)
}

func strs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
