package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// problems lists every way answer a to request r breaks the contract: the wire format (strict
// JSON, Content-Type), the OpenAPI document, the echoed search_id, personal data, and the rules
// of a 200 answer and of an error a schema cannot state.
func (e *env) problems(r request, a answer) []string {
	var out []string
	if p := contentType(a.header.Get("Content-Type")); p != "" {
		out = append(out, p)
	}
	if p := strictJSON(a.raw); p != "" {
		return append(out, p)
	}
	if err := e.validate(r, a); err != nil {
		out = append(out, "breaks contracts/openapi.yaml: "+schemaError(err))
	}
	if len(r.echo) > 0 {
		if got, ok := a.body["search_id"].(string); !ok {
			out = append(out, "no search_id in the answer")
		} else if !slices.Contains(r.echo, got) {
			out = append(out, fmt.Sprintf("search_id %q, want %s", got, echoList(r.echo)))
		}
	}
	if r.phone != "" && bytes.Contains(a.raw, []byte(r.phone)) {
		out = append(out, "the answer echoes the phone number (personal data)")
	}
	switch {
	case a.status == http.StatusOK:
		out = append(out, answerProblems(a, r.product)...)
	case a.status >= 400:
		if msg, _ := a.body["message"].(string); strings.TrimSpace(msg) == "" {
			out = append(out, "error without a message")
		}
		_, hasProps := a.body["properties"]
		if a.status == http.StatusBadRequest && !r.unreadable && !hasProps {
			out = append(out, "400 without properties naming the failing fields")
		}
		if a.status != http.StatusBadRequest && hasProps {
			out = append(out, "properties in an answer other than 400")
		}
	}
	return out
}

// schemaError shortens a validation error to what failed, without the schema and value dumps.
func schemaError(err error) string {
	msg := err.Error()
	for _, cut := range []string{"\nSchema:", "\nValue:"} {
		if i := strings.Index(msg, cut); i >= 0 {
			msg = msg[:i]
		}
	}
	return oneLine(msg, 300)
}

func echoList(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = strconv.Quote(id)
	}
	return strings.Join(q, " or ")
}

// contentType says what is wrong with an answer's Content-Type, or "".
func contentType(v string) string {
	mt, params, err := mime.ParseMediaType(v)
	switch {
	case v == "":
		return "no Content-Type, want application/json"
	case err != nil || mt != "application/json":
		return fmt.Sprintf("Content-Type %q, want application/json", v)
	case params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8"):
		return fmt.Sprintf("Content-Type %q: the charset must be UTF-8", v)
	}
	return ""
}

// strictJSON says how raw fails to be one strict JSON object (RFC 8259, UTF-8, no key twice in
// an object), or "".
func strictJSON(raw []byte) string {
	switch {
	case len(bytes.TrimSpace(raw)) == 0:
		return "empty body, want a JSON object"
	case !utf8.Valid(raw):
		return "the body is not UTF-8"
	case !json.Valid(raw):
		return "the body is not strict JSON (RFC 8259): " + snippet(raw)
	case bytes.TrimSpace(raw)[0] != '{':
		return "the body is not a JSON object: " + snippet(raw)
	}
	if path, err := duplicateKey(raw); err != nil {
		return "the body cannot be read as JSON: " + err.Error()
	} else if path != "" {
		return "duplicate JSON key " + path
	}
	return ""
}

// duplicateKey returns the path (such as $.data[0].term) of the first key that occurs twice in
// one object of the valid JSON raw, or "".
func duplicateKey(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return walkJSON(dec, "$")
}

func walkJSON(dec *json.Decoder, path string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", err
			}
			key, _ := kt.(string)
			if seen[key] {
				return path + "." + key, nil
			}
			seen[key] = true
			if dup, err := walkJSON(dec, path+"."+key); dup != "" || err != nil {
				return dup, err
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if dup, err := walkJSON(dec, fmt.Sprintf("%s[%d]", path, i)); dup != "" || err != nil {
				return dup, err
			}
		}
	default:
		return "", nil
	}
	_, err = dec.Token() // the closing delimiter
	return "", err
}

// retryAfter reads the Retry-After header: delay-seconds or an HTTP date (RFC 9110).
func retryAfter(h http.Header) (time.Duration, error) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, errors.New("no Retry-After header")
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), nil
	}
	return 0, fmt.Errorf("Retry-After %q is neither seconds nor an HTTP date", v)
}

// answerProblems checks a 200 answer to an application of product ("" when unknown).
func answerProblems(a answer, product string) []string {
	switch s := a.field("status"); s {
	case "pending":
		if _, err := retryAfter(a.header); err != nil {
			return []string{"pending answer without a usable Retry-After: " + err.Error()}
		}
		return nil
	case "done":
		return doneProblems(a.body, product)
	default:
		return []string{fmt.Sprintf("status %q, want done or pending", s)}
	}
}

// doneProblems checks a done answer: data is null exactly when rejected, the bank is named, and
// every offer keeps the rules of its product.
func doneProblems(body map[string]any, product string) []string {
	var out []string
	if name, _ := body["name"].(string); strings.TrimSpace(name) == "" {
		out = append(out, "done answer without the bank's name")
	}
	data, present := body["data"]
	shown := "absent"
	if present {
		shown = jsonText(data)
	}
	switch d := body["decision"]; d {
	case "rejected":
		if !present || data != nil {
			out = append(out, fmt.Sprintf(`decision "rejected" with data %s, want null`, oneLine(shown, 80)))
		}
	case "has_approve":
		offers, ok := data.([]any)
		if !ok || len(offers) == 0 {
			out = append(out, fmt.Sprintf(`decision "has_approve" with data %s, want a non-empty array of offers`, oneLine(shown, 80)))
		}
		for i, o := range offers {
			om, ok := o.(map[string]any)
			if !ok {
				out = append(out, fmt.Sprintf("offer %d is not an object", i+1))
				continue
			}
			out = append(out, offerProblems(i+1, om, product)...)
		}
	default:
		out = append(out, fmt.Sprintf("decision %s, want has_approve or rejected", jsonText(d)))
	}
	return out
}

// offerProblems checks offer n (from 1): the fields its product requires and forbids, every
// min ≤ max, and a proposal link that is an absolute URL.
func offerProblems(n int, o map[string]any, product string) []string {
	pt, _ := o["product_type"].(string)
	where := fmt.Sprintf("offer %d (%s)", n, pt)
	var out []string
	add := func(format string, args ...any) { out = append(out, where+": "+fmt.Sprintf(format, args...)) }
	if product != "" && pt != product {
		add("product_type %q, but the application asked for %q", pt, product)
	}
	payment, _ := o["payment"].(map[string]any)
	if payment == nil {
		add("no payment object")
	}
	_, hasGrace := o["grace_period"]
	_, hasTerm := o["term"]
	_, hasCC := payment["cc_rate"]
	_, hasPMin := payment["min"]
	_, hasPMax := payment["max"]
	switch pt {
	case "loan":
		if t, ok := o["term"].(map[string]any); !ok {
			add("no term (required for a loan)")
		} else if _, ok := num(t["min"]); !ok {
			add("term.min missing or not a number")
		} else if _, ok := num(t["max"]); !ok {
			add("term.max missing or not a number")
		}
		if !hasPMin || !hasPMax {
			add("no payment.min and payment.max (required for a loan)")
		}
		if hasGrace {
			add("grace_period in a loan offer")
		}
		if hasCC {
			add("payment.cc_rate in a loan offer")
		}
	case "credit_card":
		if _, ok := num(o["grace_period"]); !ok {
			add("no grace_period (required for a credit card)")
		}
		if _, ok := num(payment["cc_rate"]); !ok {
			add("no payment.cc_rate (required for a credit card)")
		}
		if hasTerm {
			add("term in a credit-card offer")
		}
		if hasPMin || hasPMax {
			add("payment.min/max in a credit-card offer")
		}
	default:
		add("product_type %s, want loan or credit_card", jsonText(o["product_type"]))
	}
	for _, k := range sortedKeys(o) {
		r, ok := o[k].(map[string]any)
		if !ok {
			continue
		}
		lo, okLo := num(r["min"])
		hi, okHi := num(r["max"])
		if okLo && okHi && lo > hi {
			add("%s.min %v > %s.max %v", k, r["min"], k, r["max"])
		}
	}
	link, _ := o["propousal_link"].(map[string]any)
	if link == nil {
		add("no propousal_link")
		return out
	}
	web, hasWeb := link["link"]
	deep, hasDeep := link["deep"]
	if !hasWeb && !hasDeep {
		add("propousal_link has neither link nor deep")
	}
	if hasWeb && !absoluteURL(web, true) {
		add("propousal_link.link %s is not an absolute http(s) URL", jsonText(web))
	}
	if hasDeep && !absoluteURL(deep, false) {
		add("propousal_link.deep %s is not an absolute URL", jsonText(deep))
	}
	return out
}

// absoluteURL reports whether v is a string holding an absolute URL; web URLs need http(s) and a host.
func absoluteURL(v any, web bool) bool {
	s, ok := v.(string)
	if !ok || strings.TrimSpace(s) != s || s == "" {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return false
	}
	if web {
		return (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
	}
	return u.Host != "" || u.Opaque != "" || u.Path != ""
}

// num reads a JSON number.
func num(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// strs reads a JSON array of strings; nil if v is not one.
func strs(v any) []string {
	arr, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, ok := x.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// jsonText writes v as compact JSON for a reason.
func jsonText(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(buf.String())
}

// snippet shows the start of a body in a reason.
func snippet(raw []byte) string {
	if len(raw) == 0 {
		return "(empty body)"
	}
	return oneLine(string(raw), 200)
}

// oneLine collapses white space and cuts s to at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
