package chaos_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Phones of deploy/demo/clients.csv.
const (
	phoneKnown      = "9330445040" // grade A salary client: several full-approved offers
	phoneUnknown    = "9001234567" // not in the file: pre-approved, conservative limits
	phoneStopListed = "9037654321" // rejected
)

// Outcomes of an accepted application after the polls.
const (
	outcomeDone   = "done"
	outcomeFailed = "failed" // a final 500 with a message
	outcomeLost   = "lost"   // still pending, unknown (404) or unanswerable at the poll deadline
)

// application is one application the driver sent and what became of it.
type application struct {
	id   string
	body []byte
	// sentAt is the intended send time, from the start of the load.
	sentAt time.Duration
	// status is the HTTP status of the first answer, 0 when there was none (refused, reset).
	status int
	// first describes the first answer: its status field, message, or the transport error.
	first string
	// refused: the connection was refused (ingress down), nothing was sent.
	refused bool
	// outcome and last are set by the polls of accepted applications.
	outcome string
	last    string
}

func (a *application) accepted() bool { return a.status == http.StatusOK }

// answerBody is the part of an answer the driver reads.
type answerBody struct {
	SearchID string `json:"search_id"`
	Status   string `json:"status"`
	Message  string `json:"message"`
}

// endpoint is ingress's loan_approval endpoint as Yandex calls it.
type endpoint struct {
	url, token string
	client     *http.Client
}

func newEndpoint(addr, token string) *endpoint {
	return &endpoint{
		url:   "http://" + addr + "/integrations/api/banking/loan_approval",
		token: token,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy: nil, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second,
			DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		}},
	}
}

// post sends body and returns the status, the decoded answer and the Retry-After header.
func (e *endpoint) post(body []byte) (int, answerBody, string, error) {
	req, err := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return 0, answerBody{}, "", err
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, answerBody{}, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, answerBody{}, "", err
	}
	var ab answerBody
	if err := json.Unmarshal(raw, &ab); err != nil {
		return resp.StatusCode, ab, "", fmt.Errorf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, ab, resp.Header.Get("Retry-After"), nil
}

// newApplications makes n unique applications: loans and cards, the three phones, varied
// amounts and terms.
func newApplications(runID string, n int) []*application {
	phones := []string{phoneKnown, phoneUnknown, phoneStopListed, phoneUnknown, phoneKnown}
	terms := []int{6, 12, 24, 36, 60}
	apps := make([]*application, n)
	for i := range apps {
		id := fmt.Sprintf("chaos-%s-%06d", runID, i)
		req := map[string]any{"search_id": id, "phone_number": phones[i%len(phones)]}
		if i%3 == 2 {
			req["product_type"] = "credit_card"
		} else {
			req["product_type"] = "loan"
			req["amount"] = 50000 + (i%30)*50000
			req["term"] = terms[(i/3)%len(terms)]
		}
		b, _ := json.Marshal(req)
		apps[i] = &application{id: id, body: b}
	}
	return apps
}

// drive offers apps open loop at rate per second from start: each is sent at its own time,
// whatever the earlier ones are doing. It returns once every request has its answer or error.
func drive(e *endpoint, apps []*application, rate float64, start time.Time) {
	interval := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	for i, a := range apps {
		a.sentAt = time.Duration(i) * interval
		if wait := time.Until(start.Add(a.sentAt)); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, ab, _, err := e.post(a.body)
			a.status = status
			switch {
			case err != nil:
				a.first = err.Error()
				a.refused = errors.Is(err, syscall.ECONNREFUSED)
			case status == http.StatusOK:
				a.first = ab.Status
			default:
				a.first = fmt.Sprintf("%d %s", status, ab.Message)
			}
		}()
	}
	wg.Wait()
}

// pollAll polls every accepted application until its answer is final or the deadline passes,
// with a few workers.
func pollAll(e *endpoint, apps []*application, deadline time.Time) {
	work := make(chan *application)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				poll(e, a, deadline)
			}
		}()
	}
	for _, a := range apps {
		if a.accepted() {
			work <- a
		}
	}
	close(work)
	wg.Wait()
}

// poll asks for one application's answer until it is done, or failed: a 500 with a message and
// no Retry-After (an internal error, which says to retry, is polled again).
func poll(e *endpoint, a *application, deadline time.Time) {
	body := []byte(`{"search_id":"` + a.id + `"}`)
	for {
		status, ab, retryAfter, err := e.post(body)
		switch {
		case err != nil:
			a.last = err.Error()
		case status == http.StatusOK && ab.Status == "done":
			a.outcome, a.last = outcomeDone, "done"
			return
		case status == http.StatusInternalServerError && ab.Message != "" && retryAfter == "":
			a.outcome, a.last = outcomeFailed, fmt.Sprintf("500 %s", ab.Message)
			return
		case status == http.StatusOK:
			a.last = ab.Status
		default:
			a.last = fmt.Sprintf("%d %s (Retry-After %q)", status, ab.Message, retryAfter)
		}
		if time.Now().After(deadline) {
			a.outcome = outcomeLost
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
