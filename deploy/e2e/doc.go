// Package e2e holds the smoke test of the deployment: it drives the real
// docker-compose.yml through the Compose CLI with local images only, and
// talks to the stack through the ports it publishes on 127.0.0.1.
//
// It needs a Docker Engine, a Compose tool (the v2 plugin or
// docker-compose 1.29) and the images of `make images`; it lives in its own
// module so that the service's tests never need Docker.
package e2e
