// Package deploytest checks loanflow's deployment files against the code they deploy: the
// NATS cluster configuration of deploy/nats (started for real, every service's credentials
// tried against what they must and must not do), docker-compose.yml (loaded with the
// compose-spec loader) and the Kubernetes manifests of deploy/k8s (rendered with kustomize),
// each compared with the settings the services' Config types read. With the docker build tag,
// an end-to-end suite runs the images with testcontainers-go.
package deploytest
