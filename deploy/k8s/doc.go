// Package k8s holds the Kubernetes manifests of the service (a kustomize
// base and overlays beside this file) and, in its tests, their offline
// validation: every kustomization is built with kustomize's Go API and every
// document decoded strictly into the Kubernetes API types, then checked
// against the service itself (its routes, its configuration variables, its
// alert rules and its nginx configuration).
package k8s
