// Package contracts is what loanflow's services share about each other. Its subpackages hold
// the partner API's Go types (partnerapi), the event payloads (events), the JetStream
// topology (topology) and the decisions bucket's records (decisions).
package contracts

import _ "embed"

// OpenAPI is the partner API as an OpenAPI 3.0.3 document (openapi.yaml): the endpoint Yandex
// Search calls, every request and answer shape with its field rules, and our rules where
// Yandex's contract is silent. Load it with an OpenAPI library (for example kin-openapi's
// openapi3.NewLoader().LoadFromData) to validate requests and answers against it. The golden
// samples under testdata keep it in step with the Go types in partnerapi. Do not modify it.
//
//go:embed openapi.yaml
var OpenAPI []byte
