// Package otlptest is an OTLP/HTTP trace collector for tests: it decodes what an exporter
// sends, so that a test checks the spans a real collector would receive, over the wire.
package otlptest

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Request is one export request as received.
type Request struct {
	Method, Path, ContentType string
	Export                    *coltracepb.ExportTraceServiceRequest
}

// Span is an exported span with the service.name of its resource.
type Span struct {
	Service string
	*tracepb.Span
}

// Receiver accepts protobuf export requests on any path; URL is its base address.
type Receiver struct {
	URL string

	mu       sync.Mutex
	requests []Request
	errs     []error
}

// Start runs a receiver until the test ends.
func Start(tb testing.TB) *Receiver {
	tb.Helper()
	r := &Receiver{}
	srv := httptest.NewServer(r)
	tb.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// ServeHTTP decodes one export request and answers it as a collector does.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	export := &coltracepb.ExportTraceServiceRequest{}
	if err == nil {
		err = proto.Unmarshal(body, export)
	}
	r.mu.Lock()
	if err != nil {
		r.errs = append(r.errs, err)
	} else {
		r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path, ContentType: req.Header.Get("Content-Type"), Export: export})
	}
	r.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

// Requests returns the export requests decoded so far.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Err joins the errors of the requests that did not decode.
func (r *Receiver) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

// Spans returns every span received so far, in the order received.
func (r *Receiver) Spans() []Span {
	var out []Span
	for _, req := range r.Requests() {
		for _, rs := range req.Export.GetResourceSpans() {
			service := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					out = append(out, Span{Service: service, Span: sp})
				}
			}
		}
	}
	return out
}
