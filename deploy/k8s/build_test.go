package k8s_test

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kustomizations are every directory a user may build; each must pass every
// check on its own.
var kustomizations = []string{"base", "overlays/sentinel", "overlays/cluster"}

// manifests are the documents of one built kustomization, decoded into
// their API types and grouped by kind.
type manifests struct {
	namespaces      []corev1.Namespace
	configMaps      []corev1.ConfigMap
	secrets         []corev1.Secret
	services        []corev1.Service
	deployments     []appsv1.Deployment
	statefulSets    []appsv1.StatefulSet
	jobs            []batchv1.Job
	pdbs            []policyv1.PodDisruptionBudget
	hpas            []autoscalingv2.HorizontalPodAutoscaler
	networkPolicies []networkingv1.NetworkPolicy
	serviceMonitors []serviceMonitor
	prometheusRules []prometheusRule
}

// build runs kustomize on dir as `kubectl kustomize dir` would (default
// options: no files from outside dir, no plugins) and decodes every
// document strictly: an unknown or misspelt field, a duplicate field or a
// kind not listed in decode fails the test.
func build(t *testing.T, dir string) *manifests {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	m := &manifests{}
	for _, r := range resMap.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s as YAML: %v", dir, r.CurId(), err)
		}
		if err := m.decode(doc); err != nil {
			t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
		}
	}
	return m
}

// decode adds one YAML document to m in its API type.
func (m *manifests) decode(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("reading apiVersion and kind: %w", err)
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		return decodeInto(doc, &m.namespaces)
	case "v1 ConfigMap":
		return decodeInto(doc, &m.configMaps)
	case "v1 Secret":
		return decodeInto(doc, &m.secrets)
	case "v1 Service":
		return decodeInto(doc, &m.services)
	case "apps/v1 Deployment":
		return decodeInto(doc, &m.deployments)
	case "apps/v1 StatefulSet":
		return decodeInto(doc, &m.statefulSets)
	case "batch/v1 Job":
		return decodeInto(doc, &m.jobs)
	case "policy/v1 PodDisruptionBudget":
		return decodeInto(doc, &m.pdbs)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return decodeInto(doc, &m.hpas)
	case "networking.k8s.io/v1 NetworkPolicy":
		return decodeInto(doc, &m.networkPolicies)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return decodeInto(doc, &m.serviceMonitors)
	case "monitoring.coreos.com/v1 PrometheusRule":
		return decodeInto(doc, &m.prometheusRules)
	}
	return fmt.Errorf("kind %q of %q is not checked: add it to decode", tm.Kind, tm.APIVersion)
}

// decodeInto decodes doc strictly, as the API server's strict field
// validation does (case-sensitive names, no unknown or duplicate fields),
// and appends it to list.
func decodeInto[T any](doc []byte, list *[]T) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return fmt.Errorf("converting to JSON: %w", err)
	}
	var v T
	strictErrs, err := json.UnmarshalStrict(js, &v)
	if err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	if len(strictErrs) > 0 {
		return fmt.Errorf("strict decoding: %v", strictErrs)
	}
	*list = append(*list, v)
	return nil
}

// podTemplate is a workload's pod template with the workload's name and
// kind, so that checks of pods cover Deployments, StatefulSets and Jobs.
type podTemplate struct {
	owner string
	spec  corev1.PodTemplateSpec
}

func (m *manifests) podTemplates() []podTemplate {
	var pods []podTemplate
	for _, d := range m.deployments {
		pods = append(pods, podTemplate{"Deployment/" + d.Name, d.Spec.Template})
	}
	for _, s := range m.statefulSets {
		pods = append(pods, podTemplate{"StatefulSet/" + s.Name, s.Spec.Template})
	}
	for _, j := range m.jobs {
		pods = append(pods, podTemplate{"Job/" + j.Name, j.Spec.Template})
	}
	return pods
}

// The prometheus-operator resources, decoded into local types that hold
// only the fields these manifests may use: the operator's own Go types pull
// in client-go and controller-runtime for two small documents. An unknown
// field fails the strict decoding as it does for the API types.

type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
			Relabelings   []struct {
				SourceLabels []string `json:"sourceLabels,omitempty"`
				TargetLabel  string   `json:"targetLabel,omitempty"`
				Regex        string   `json:"regex,omitempty"`
				Replacement  string   `json:"replacement,omitempty"`
				Action       string   `json:"action,omitempty"`
			} `json:"relabelings,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ruleFile `json:"spec"`
}

// ruleFile is a Prometheus rule file (deploy/prometheus/alerts.yml) and the
// spec of a PrometheusRule alike: the operator copies spec.groups into a
// rule file as they are.
type ruleFile struct {
	Groups []ruleGroup `json:"groups"`
}

type ruleGroup struct {
	Name        string            `json:"name"`
	Interval    string            `json:"interval,omitempty"`
	Limit       int               `json:"limit,omitempty"`
	QueryOffset string            `json:"query_offset,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Rules       []rule            `json:"rules"`
}

type rule struct {
	Alert         string            `json:"alert,omitempty"`
	Record        string            `json:"record,omitempty"`
	Expr          string            `json:"expr"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}
