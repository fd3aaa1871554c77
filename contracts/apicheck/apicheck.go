// Package apicheck validates real HTTP answers against the partner API's OpenAPI document
// (contracts/openapi.yaml). End-to-end and conformance tests use it so that every answer the
// endpoint gives is held to the published contract, not to a copy of it.
package apicheck

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/loanflow/loanflow/contracts"
)

// Validator checks answers against the document.
type Validator struct {
	router routers.Router
}

// New loads and validates the embedded document.
func New() (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(contracts.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("load openapi: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("validate openapi: %w", err)
	}
	// Match by path only: the document's server is a path prefix, and the endpoint under test
	// may be on any host.
	doc.Servers = openapi3.Servers{{URL: "/integrations"}}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi router: %w", err)
	}
	return &Validator{router: r}, nil
}

// Response checks that an answer with status, header and body is one the document allows for
// method on path (the request's path, from /integrations on).
func (v *Validator) Response(method, path string, status int, header http.Header, body []byte) error {
	req := &http.Request{Method: method, URL: &url.URL{Path: path}, Header: http.Header{}}
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%s %s is not in the document: %w", method, path, err)
	}
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status:  status,
		Header:  h,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	})
}
