package k8s_test

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// contractEnv is every variable of "Configuration of a replica" in the HTTP
// contract, and the one the service adds where the contract is silent
// (SESSIONS_LIMIT_PER_USER, see the README's decisions): the replicas must
// be given exactly these, no misspelt or invented one (the service would
// ignore it silently).
var contractEnv = []string{
	"PORT", "REDIS_ADDR", "REDIS_MASTER_NAME", "REDIS_USERNAME", "REDIS_PASSWORD",
	"REDIS_TLS", "REDIS_TIMEOUT", "INSTANCE_ID", "SESSION_IDLE_TIMEOUT",
	"SESSION_MAX_LIFETIME", "SESSION_MAX_PER_USER", "LOGIN_LIMIT_PER_USER",
	"LOGIN_LIMIT_PER_IP", "SESSIONS_LIMIT_PER_USER", "TRUSTED_PROXIES", "COOKIE_SECURE",
	"SHUTDOWN_DELAY", "SHUTDOWN_TIMEOUT", "LOG_LEVEL",
}

// Labels that name the parts of the system; network policies and the
// checks below rely on them.
const (
	nameLabel = "app.kubernetes.io/name"
	apiName   = "api"
	proxyName = "proxy"
	redisName = "redis"
	// clusterCreateName is the Job that joins the Redis Cluster's nodes.
	clusterCreateName = "redis-cluster-create"
	// monitoringNamespace is where Prometheus runs.
	monitoringNamespace = "monitoring"
)

func TestManifests(t *testing.T) {
	routes := servedGETRoutes(t)
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			m := build(t, dir)
			t.Run("Selectors", func(t *testing.T) { checkSelectors(t, m) })
			t.Run("Containers", func(t *testing.T) { checkContainers(t, m) })
			t.Run("API", func(t *testing.T) { checkAPI(t, m, routes) })
			t.Run("Environment", func(t *testing.T) { checkEnvironment(t, m) })
			t.Run("Disruption", func(t *testing.T) { checkDisruption(t, m) })
			t.Run("NetworkPolicies", func(t *testing.T) { checkNetworkPolicies(t, m) })
			t.Run("Monitoring", func(t *testing.T) { checkMonitoring(t, m, routes) })
			t.Run("Proxy", func(t *testing.T) { checkProxy(t, m) })
		})
	}
}

// servedGETRoutes reads the GET routes the service registers from its one
// routes file, so that a probe or a scrape of a route that was renamed or
// removed fails here rather than in a cluster.
func servedGETRoutes(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("../../services/api/internal/httpapi/routes.go")
	if err != nil {
		t.Fatalf("reading the service's routes: %v", err)
	}
	var routes []string
	for _, m := range regexp.MustCompile(`\.GET\("([^"]+)"`).FindAllSubmatch(src, -1) {
		routes = append(routes, string(m[1]))
	}
	if len(routes) == 0 {
		t.Fatal("found no GET route in routes.go: has the way routes are registered changed?")
	}
	return routes
}

func selects(sel *metav1.LabelSelector, podLabels map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

// checkSelectors: every workload selects its own pods, every Service selects
// some pods and targets ports they have.
func checkSelectors(t *testing.T, m *manifests) {
	for _, d := range m.deployments {
		if !selects(d.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("Deployment/%s: selector %v does not match its pod labels %v", d.Name, d.Spec.Selector, d.Spec.Template.Labels)
		}
	}
	for _, s := range m.statefulSets {
		if !selects(s.Spec.Selector, s.Spec.Template.Labels) {
			t.Errorf("StatefulSet/%s: selector %v does not match its pod labels %v", s.Name, s.Spec.Selector, s.Spec.Template.Labels)
		}
		if !slices.ContainsFunc(m.services, func(svc corev1.Service) bool {
			return svc.Name == s.Spec.ServiceName && svc.Spec.ClusterIP == corev1.ClusterIPNone
		}) {
			t.Errorf("StatefulSet/%s: serviceName %q is not a headless Service of the build", s.Name, s.Spec.ServiceName)
		}
	}
	for _, svc := range m.services {
		sel := &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}
		matched := 0
		for _, p := range m.podTemplates() {
			if !selects(sel, p.spec.Labels) {
				continue
			}
			matched++
			for _, port := range svc.Spec.Ports {
				if !hasPort(p.spec.Spec.Containers, port.TargetPort) {
					t.Errorf("Service/%s: port %s targets %s, which %s does not expose", svc.Name, port.Name, port.TargetPort.String(), p.owner)
				}
			}
		}
		if matched == 0 {
			t.Errorf("Service/%s: selector %v matches no pod of the build", svc.Name, svc.Spec.Selector)
		}
	}
}

func hasPort(containers []corev1.Container, target intstr.IntOrString) bool {
	for _, c := range containers {
		for _, p := range c.Ports {
			if (target.Type == intstr.String && p.Name == target.StrVal) ||
				(target.Type == intstr.Int && p.ContainerPort == target.IntVal) {
				return true
			}
		}
	}
	return false
}

// pinnedImage is an image named by digest, or by a full version tag
// (x.y.z, with an optional suffix): never latest, never a moving major tag.
var pinnedImage = regexp.MustCompile(`(@sha256:[0-9a-f]{64}|:v?[0-9]+\.[0-9]+\.[0-9]+[-._a-zA-Z0-9]*)$`)

// checkContainers: every container of every workload has resources, a
// pinned image and runs unprivileged on a read-only root, with no
// service-account token.
func checkContainers(t *testing.T, m *manifests) {
	for _, p := range m.podTemplates() {
		spec := p.spec.Spec
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken is not false", p.owner)
		}
		podSC := spec.SecurityContext
		if podSC == nil {
			podSC = &corev1.PodSecurityContext{}
		}
		containers := slices.Concat(spec.InitContainers, spec.Containers)
		for _, c := range containers {
			where := p.owner + " container " + c.Name
			if !pinnedImage.MatchString(c.Image) {
				t.Errorf("%s: image %q is not pinned by version or digest", where, c.Image)
			}
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := c.Resources.Requests[res]; !ok || q.IsZero() {
					t.Errorf("%s: no %s request", where, res)
				}
				if q, ok := c.Resources.Limits[res]; !ok || q.IsZero() {
					t.Errorf("%s: no %s limit", where, res)
				}
			}
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s: no securityContext", where)
				continue
			}
			if !isTrue(sc.RunAsNonRoot) && !isTrue(podSC.RunAsNonRoot) {
				t.Errorf("%s: runAsNonRoot is not true", where)
			}
			if uid := runAsUser(sc, podSC); uid == nil || *uid == 0 {
				t.Errorf("%s: no non-zero runAsUser (an image's USER cannot be checked here)", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if !isTrue(sc.ReadOnlyRootFilesystem) {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities are not drop [ALL] and add none: %+v", where, sc.Capabilities)
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil {
				seccomp = podSC.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccomp profile is not RuntimeDefault", where)
			}
		}
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func runAsUser(sc *corev1.SecurityContext, podSC *corev1.PodSecurityContext) *int64 {
	if sc.RunAsUser != nil {
		return sc.RunAsUser
	}
	return podSC.RunAsUser
}

// apiContainer returns the API Deployment and its container.
func apiContainer(t *testing.T, m *manifests) (corev1.PodTemplateSpec, corev1.Container) {
	t.Helper()
	for _, d := range m.deployments {
		if d.Name == apiName && len(d.Spec.Template.Spec.Containers) == 1 {
			return d.Spec.Template, d.Spec.Template.Spec.Containers[0]
		}
	}
	t.Fatalf("no Deployment %q with one container", apiName)
	return corev1.PodTemplateSpec{}, corev1.Container{}
}

// apiEnv returns the environment the API container gets: its env entries
// and the keys of the ConfigMaps and Secrets it takes whole. Values of
// Secrets and of env entries that come from elsewhere are empty.
func apiEnv(t *testing.T, m *manifests, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	add := func(name, value, source string) {
		if _, dup := env[name]; dup {
			t.Errorf("%s sets %s, which another source already sets", source, name)
		}
		env[name] = value
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			i := slices.IndexFunc(m.configMaps, func(cm corev1.ConfigMap) bool { return cm.Name == from.ConfigMapRef.Name })
			if i < 0 {
				t.Fatalf("envFrom names ConfigMap %q, which the build lacks", from.ConfigMapRef.Name)
			}
			for k, v := range m.configMaps[i].Data {
				add(k, v, "ConfigMap/"+from.ConfigMapRef.Name)
			}
		case from.SecretRef != nil:
			i := slices.IndexFunc(m.secrets, func(s corev1.Secret) bool { return s.Name == from.SecretRef.Name })
			if i < 0 {
				t.Fatalf("envFrom names Secret %q, which the build lacks", from.SecretRef.Name)
			}
			for k := range m.secrets[i].StringData {
				add(k, "", "Secret/"+from.SecretRef.Name)
			}
			for k := range m.secrets[i].Data {
				add(k, "", "Secret/"+from.SecretRef.Name)
			}
		}
	}
	for _, e := range c.Env {
		add(e.Name, e.Value, "env")
	}
	return env
}

// checkAPI: the API Deployment's rollout, probes, resources and drain timing.
func checkAPI(t *testing.T, m *manifests, routes []string) {
	var api *corev1.PodTemplateSpec
	for _, d := range m.deployments {
		if d.Name == apiName {
			api = &d.Spec.Template
			// The autoscaler owns the count: one in the Deployment would
			// be reset by every apply.
			if d.Spec.Replicas != nil {
				t.Errorf("Deployment/api sets replicas (%d), which its HorizontalPodAutoscaler owns", *d.Spec.Replicas)
			}
			if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
				t.Errorf("Deployment/api: maxUnavailable is not 0")
			}
		}
	}
	if api == nil {
		t.Fatal("no Deployment/api")
	}
	_, c := apiContainer(t, m)
	env := apiEnv(t, m, c)

	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/healthz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("api: no HTTP %s", p.name)
			continue
		}
		get := p.probe.HTTPGet
		if get.Path != p.path {
			t.Errorf("api: %s path = %q, want %q", p.name, get.Path, p.path)
		}
		if !slices.Contains(routes, get.Path) {
			t.Errorf("api: %s path %q is not a GET route of the service (it serves %v)", p.name, get.Path, routes)
		}
		if port := containerPort(c, get.Port); port == 0 || strconv.Itoa(int(port)) != env["PORT"] {
			t.Errorf("api: %s port %s is container port %d, but PORT is %q", p.name, get.Port.String(), port, env["PORT"])
		}
	}

	delay, errD := time.ParseDuration(env["SHUTDOWN_DELAY"])
	timeout, errT := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
	if errD != nil || errT != nil {
		t.Fatalf("api: SHUTDOWN_DELAY %q, SHUTDOWN_TIMEOUT %q: %v %v", env["SHUTDOWN_DELAY"], env["SHUTDOWN_TIMEOUT"], errD, errT)
	}
	// After the shutdown timeout a replica waits up to 2 x REDIS_TIMEOUT
	// for the handlers it cut off, so that each logs its line.
	redisTimeout := 500 * time.Millisecond
	if v, ok := env["REDIS_TIMEOUT"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("api: REDIS_TIMEOUT %q: %v", v, err)
		}
		redisTimeout = d
	}
	need := delay + timeout + 2*redisTimeout
	grace := api.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second <= need {
		t.Errorf("api: terminationGracePeriodSeconds %v is not above SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT + 2 x REDIS_TIMEOUT (%v)", grace, need)
	}

	// GOMAXPROCS, hence the hashing slots and the pool, follows the CPU
	// limit rounded up; a fractional limit would be throttled.
	limit, request := c.Resources.Limits[corev1.ResourceCPU], c.Resources.Requests[corev1.ResourceCPU]
	if limit.MilliValue()%1000 != 0 {
		t.Errorf("api: CPU limit %s is not a whole number of CPUs", limit.String())
	}
	if request.Cmp(limit) != 0 {
		t.Errorf("api: CPU request %s differs from the limit %s", request.String(), limit.String())
	}
}

func containerPort(c corev1.Container, port intstr.IntOrString) int32 {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort
		}
	}
	return 0
}

// TestContractEnv checks contractEnv against the variables the service's
// config package reads, so that a variable added to one is added to the
// other, and to the ConfigMap.
func TestContractEnv(t *testing.T) {
	src, err := os.ReadFile("../../services/api/internal/config/config.go")
	if err != nil {
		t.Fatalf("reading the service's config: %v", err)
	}
	var got []string
	for _, m := range regexp.MustCompile(`(?m)^\s*Env[A-Za-z]+\s*=\s*"([A-Z_]+)"`).FindAllSubmatch(src, -1) {
		got = append(got, string(m[1]))
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(contractEnv)); !slices.Equal(got, want) {
		t.Errorf("variables of the config package:\n got %v\nwant %v (the contract's)", got, want)
	}
}

// checkEnvironment: the replicas get exactly the contract's variables.
func checkEnvironment(t *testing.T, m *manifests) {
	_, c := apiContainer(t, m)
	var got []string
	for name := range apiEnv(t, m, c) {
		got = append(got, name)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(contractEnv))
	if !slices.Equal(got, want) {
		t.Errorf("API environment:\n got %v\nwant %v", got, want)
	}
}

// checkDisruption: every PodDisruptionBudget covers pods of the build, one
// covers the API, and the autoscaler scales the API Deployment on CPU.
func checkDisruption(t *testing.T, m *manifests) {
	api, _ := apiContainer(t, m)
	coversAPI := false
	for _, pdb := range m.pdbs {
		matched := false
		for _, p := range m.podTemplates() {
			if selects(pdb.Spec.Selector, p.spec.Labels) {
				matched = true
			}
		}
		if !matched {
			t.Errorf("PodDisruptionBudget/%s matches no pod of the build", pdb.Name)
		}
		coversAPI = coversAPI || selects(pdb.Spec.Selector, api.Labels)
	}
	if !coversAPI {
		t.Error("no PodDisruptionBudget covers the API pods")
	}

	if len(m.hpas) != 1 {
		t.Fatalf("got %d HorizontalPodAutoscalers, want 1", len(m.hpas))
	}
	hpa := m.hpas[0]
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != apiName {
		t.Errorf("HorizontalPodAutoscaler/%s targets %s %s/%s, want apps/v1 Deployment/%s", hpa.Name, ref.APIVersion, ref.Kind, ref.Name, apiName)
	}
	onCPU := slices.ContainsFunc(hpa.Spec.Metrics, func(ms autoscalingv2.MetricSpec) bool {
		return ms.Resource != nil && ms.Resource.Name == corev1.ResourceCPU
	})
	if !onCPU {
		t.Errorf("HorizontalPodAutoscaler/%s does not scale on CPU", hpa.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 3 {
		t.Errorf("HorizontalPodAutoscaler/%s minReplicas %v, want 3 (the replicas the contract's round robin spreads over)", hpa.Name, hpa.Spec.MinReplicas)
	}
}

// checkNetworkPolicies: ingress is denied by default, only the proxy and
// the monitoring namespace reach the replicas, and only the replicas (and
// Redis's own pods) reach Redis, which the replicas can.
func checkNetworkPolicies(t *testing.T, m *manifests) {
	if !slices.ContainsFunc(m.networkPolicies, func(np networkingv1.NetworkPolicy) bool {
		return len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 &&
			slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) && len(np.Spec.Ingress) == 0
	}) {
		t.Error("no NetworkPolicy denies all ingress by default")
	}

	pods := m.podTemplates()
	podsOf := func(name string) []podTemplate {
		var out []podTemplate
		for _, p := range pods {
			if p.spec.Labels[nameLabel] == name {
				out = append(out, p)
			}
		}
		return out
	}
	// peerPods returns the pods of the build a peer admits, or ok=false if
	// it admits more than pods of this namespace named by a selector.
	peerPods := func(peer networkingv1.NetworkPolicyPeer) (names []string, ok bool) {
		if peer.IPBlock != nil || peer.NamespaceSelector != nil || peer.PodSelector == nil {
			return nil, false
		}
		for _, p := range pods {
			if selects(peer.PodSelector, p.spec.Labels) {
				names = append(names, p.spec.Labels[nameLabel])
			}
		}
		return names, len(names) > 0
	}

	for _, target := range []struct {
		name       string
		allowed    []string // pod names that may reach it
		mustAdmit  string   // pods that must be able to reach it
		monitoring bool     // the monitoring namespace may reach it
	}{
		{name: apiName, allowed: []string{proxyName}, mustAdmit: proxyName, monitoring: true},
		{name: redisName, allowed: []string{apiName, redisName, clusterCreateName}, mustAdmit: apiName},
	} {
		for _, pod := range podsOf(target.name) {
			covered, admitted := false, false
			for _, np := range m.networkPolicies {
				if !selects(&np.Spec.PodSelector, pod.spec.Labels) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
					continue
				}
				covered = true
				for _, rule := range np.Spec.Ingress {
					if len(rule.From) == 0 {
						t.Errorf("NetworkPolicy/%s admits everyone to %s", np.Name, pod.owner)
					}
					for _, peer := range rule.From {
						if target.monitoring && isMonitoringNamespace(peer) {
							continue
						}
						names, ok := peerPods(peer)
						if !ok {
							t.Errorf("NetworkPolicy/%s admits a peer other than pods of this namespace to %s: %+v", np.Name, pod.owner, peer)
						}
						for _, n := range names {
							if !slices.Contains(target.allowed, n) {
								t.Errorf("NetworkPolicy/%s admits %s pods to %s; only %v may", np.Name, n, pod.owner, target.allowed)
							}
							admitted = admitted || n == target.mustAdmit
						}
					}
				}
			}
			if !covered {
				t.Errorf("no NetworkPolicy covers the ingress of %s", pod.owner)
			}
			if !admitted {
				t.Errorf("no NetworkPolicy lets %s pods reach %s", target.mustAdmit, pod.owner)
			}
		}
	}
}

func isMonitoringNamespace(peer networkingv1.NetworkPolicyPeer) bool {
	return peer.IPBlock == nil && peer.PodSelector == nil && peer.NamespaceSelector != nil &&
		len(peer.NamespaceSelector.MatchExpressions) == 0 &&
		len(peer.NamespaceSelector.MatchLabels) == 1 &&
		peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == monitoringNamespace
}

// checkMonitoring: the ServiceMonitor scrapes the API's Service on a port it
// has and on the route the service serves metrics on.
func checkMonitoring(t *testing.T, m *manifests, routes []string) {
	if len(m.serviceMonitors) != 1 {
		t.Fatalf("got %d ServiceMonitors, want 1", len(m.serviceMonitors))
	}
	sm := m.serviceMonitors[0]
	var svc *corev1.Service
	for i, s := range m.services {
		if selects(&sm.Spec.Selector, s.Labels) {
			if svc != nil {
				t.Errorf("ServiceMonitor/%s selects both Service/%s and Service/%s", sm.Name, svc.Name, s.Name)
			}
			svc = &m.services[i]
		}
	}
	if svc == nil || svc.Name != apiName {
		t.Fatalf("ServiceMonitor/%s does not select Service/%s", sm.Name, apiName)
	}
	if len(sm.Spec.Endpoints) == 0 {
		t.Fatalf("ServiceMonitor/%s has no endpoint", sm.Name)
	}
	for _, ep := range sm.Spec.Endpoints {
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
			t.Errorf("ServiceMonitor/%s: port %q is not a port of Service/%s", sm.Name, ep.Port, svc.Name)
		}
		if !slices.Contains(routes, ep.Path) {
			t.Errorf("ServiceMonitor/%s: path %q is not a GET route of the service", sm.Name, ep.Path)
		}
	}
	// alerts.yml's ApiReplicaDown watches up{job="api"}; the operator names
	// the job after the Service unless jobLabel says otherwise.
	if sm.Spec.JobLabel != "" {
		t.Errorf("ServiceMonitor/%s sets jobLabel: the alert rules expect job=%q", sm.Name, apiName)
	}
}

// checkProxy: the proxy's probes ask nginx for a location its
// configuration has, on a port it listens on.
func checkProxy(t *testing.T, m *manifests) {
	conf, err := os.ReadFile(nginxFile)
	if err != nil {
		t.Fatal(err)
	}
	var c *corev1.Container
	for _, d := range m.deployments {
		if d.Name == proxyName && len(d.Spec.Template.Spec.Containers) == 1 {
			c = &d.Spec.Template.Spec.Containers[0]
		}
	}
	if c == nil {
		t.Fatalf("no Deployment %q with one container", proxyName)
	}
	for name, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("proxy: no HTTP %s", name)
			continue
		}
		port := containerPort(*c, p.HTTPGet.Port)
		listen := regexp.MustCompile(`(?m)^\s*listen\s+` + strconv.Itoa(int(port)) + `\b`)
		location := regexp.MustCompile(`(?m)^\s*location\s+=\s+` + regexp.QuoteMeta(p.HTTPGet.Path) + `\s*\{`)
		if port == 0 || !listen.Match(conf) {
			t.Errorf("proxy: %s port %s is not a port %s listens on", name, p.HTTPGet.Port.String(), nginxFile)
		}
		if !location.Match(conf) {
			t.Errorf("proxy: %s path %q is not an exact location of %s", name, p.HTTPGet.Path, nginxFile)
		}
	}
}
