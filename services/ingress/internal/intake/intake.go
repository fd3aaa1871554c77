// Package intake reads the body Yandex posts to loan_approval: it tells an application from a
// poll and checks every field by the partner contract, naming each failing field with a
// Russian clause the way Yandex's own example does. It has no HTTP or NATS in it.
package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// MaxTerm is the longest term accepted, in months (our rule: 50 years).
const MaxTerm = 600

// searchIDPattern is our rule for search_id: Yandex sends UUIDs; anything of 1–128 letters,
// digits, '-' and '_' is accepted, which keeps it a valid KV key and subject token.
var searchIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ValidSearchID reports whether id follows the search_id rule.
func ValidSearchID(id string) bool { return searchIDPattern.MatchString(id) }

// SearchIDRule is the clause naming the search_id rule.
const SearchIDRule = "поле search_id должно содержать от 1 до 128 символов: латинские буквы, цифры, «-» или «_»"

// FieldError is one failing field and the reason, as a Russian clause.
type FieldError struct {
	Field  string
	Reason string
}

// Error is an invalid body: the fields that fail, in the contract's field order, or a body that
// is not a JSON object at all (no fields).
type Error struct {
	// SearchID is the body's search_id when it could be read, for the answer's search_id.
	SearchID string
	Fields   []FieldError
	// Body describes a body that could not be read as a JSON object.
	Body string
}

func (e *Error) Error() string { return e.Message() }

// Message joins the clauses with "; " and capitalises the first, as in Yandex's example:
// "Поле phone_number должно содержать 10 цифр; поле amount должно быть числом".
func (e *Error) Message() string {
	if e.Body != "" {
		return e.Body
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Reason
	}
	return capitalise(strings.Join(parts, "; "))
}

// Properties lists the failing fields' names.
func (e *Error) Properties() []string {
	out := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	return out
}

func capitalise(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// Request is a valid body: exactly one of Application and Poll is set.
type Request struct {
	Application *partnerapi.Application
	Poll        *partnerapi.Poll
}

// SearchID returns the request's search_id.
func (r Request) SearchID() string {
	if r.Application != nil {
		return r.Application.SearchID
	}
	return r.Poll.SearchID
}

// applicationFields are the fields only an application has: a body with none of them is a poll.
var applicationFields = []string{"product_type", "phone_number", "amount", "term"}

// Parse reads one request body. It returns *Error for anything the contract does not allow.
func Parse(body []byte) (Request, error) {
	fields, err := object(body)
	if err != nil {
		return Request{}, &Error{Body: err.Error()}
	}
	e := &Error{}
	searchID, ok := str(fields, "search_id", e)
	if ok {
		if ValidSearchID(searchID) {
			e.SearchID = searchID
		} else {
			e.add("search_id", SearchIDRule)
		}
	}

	isPoll := true
	for _, f := range applicationFields {
		if _, present := fields[f]; present {
			isPoll = false
		}
	}
	if isPoll {
		if len(e.Fields) > 0 {
			return Request{}, e
		}
		return Request{Poll: &partnerapi.Poll{SearchID: searchID}}, nil
	}

	app := &partnerapi.Application{SearchID: searchID}
	if pt, ok := str(fields, "product_type", e); ok {
		app.ProductType = partnerapi.ProductType(pt)
		if !app.ProductType.Valid() {
			e.add("product_type", `поле product_type должно быть "loan" или "credit_card"`)
		}
	}
	if raw, present := fields["phone_number"]; !present {
		e.add("phone_number", "поле phone_number обязательно")
	} else if phone, err := decodeString(raw); err != nil || !tenDigits(phone) {
		e.add("phone_number", "поле phone_number должно содержать 10 цифр")
	} else {
		app.PhoneNumber = phone
	}
	isLoan := app.ProductType == partnerapi.ProductLoan
	app.Amount = amount(fields, isLoan, e)
	app.Term = term(fields, isLoan, e)
	if len(e.Fields) > 0 {
		return Request{}, e
	}
	return Request{Application: app}, nil
}

func (e *Error) add(field, reason string) { e.Fields = append(e.Fields, FieldError{field, reason}) }

// object decodes body as exactly one JSON object; null members count as absent.
func object(body []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("Тело запроса пустое: ожидается JSON-объект")
	}
	if !utf8.Valid(body) {
		return nil, errors.New("Тело запроса должно быть в кодировке UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, fmt.Errorf("Тело запроса не является корректным JSON: ошибка синтаксиса в позиции %d", syn.Offset)
		case errors.As(err, &typ):
			return nil, errors.New("Тело запроса должно быть JSON-объектом")
		default:
			return nil, errors.New("Тело запроса не является корректным JSON")
		}
	}
	if fields == nil {
		return nil, errors.New("Тело запроса должно быть JSON-объектом")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("Тело запроса должно содержать один JSON-объект")
	}
	for k, v := range fields {
		if string(v) == "null" {
			delete(fields, k)
		}
	}
	return fields, nil
}

// str reads a required string field, adding the failure to e.
func str(fields map[string]json.RawMessage, name string, e *Error) (string, bool) {
	raw, present := fields[name]
	if !present {
		e.add(name, "поле "+name+" обязательно")
		return "", false
	}
	s, err := decodeString(raw)
	if err != nil {
		e.add(name, "поле "+name+" должно быть строкой")
		return "", false
	}
	if s == "" {
		e.add(name, "поле "+name+" не должно быть пустым")
		return "", false
	}
	return s, true
}

func decodeString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", errors.New("not a string")
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

func tenDigits(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isNumber reports whether raw is a JSON number literal (not a string holding one).
func isNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}

// amount reads amount: required for a loan, optional for a card, and checked when present.
func amount(fields map[string]json.RawMessage, required bool, e *Error) *partnerapi.Money {
	raw, present := fields["amount"]
	if !present {
		if required {
			e.add("amount", `поле amount обязательно для product_type "loan"`)
		}
		return nil
	}
	if !isNumber(raw) {
		e.add("amount", "поле amount должно быть числом")
		return nil
	}
	m, err := partnerapi.ParseMoney(string(raw))
	switch {
	case errors.Is(err, partnerapi.ErrMoneyPrecision):
		e.add("amount", "поле amount должно содержать не более двух знаков после запятой")
	case errors.Is(err, partnerapi.ErrMoneyRange):
		e.add("amount", "поле amount должно быть не больше "+partnerapi.MaxMoney.String())
	case err != nil:
		e.add("amount", "поле amount должно быть числом")
	case m <= 0:
		e.add("amount", "поле amount должно быть больше нуля")
	default:
		return &m
	}
	return nil
}

// term reads term: required for a loan, optional for a card; a whole number of months.
func term(fields map[string]json.RawMessage, required bool, e *Error) *int {
	raw, present := fields["term"]
	if !present {
		if required {
			e.add("term", `поле term обязательно для product_type "loan"`)
		}
		return nil
	}
	if !isNumber(raw) {
		e.add("term", "поле term должно быть целым числом месяцев")
		return nil
	}
	// 12 and 12.0 are the same whole number; 12.5 is not.
	m, err := partnerapi.ParseMoney(string(raw))
	if err != nil || m%100 != 0 {
		e.add("term", "поле term должно быть целым числом месяцев")
		return nil
	}
	n := int(m / 100)
	switch {
	case n <= 0:
		e.add("term", "поле term должно быть больше нуля")
	case n > MaxTerm:
		e.add("term", "поле term должно быть не больше "+strconv.Itoa(MaxTerm)+" месяцев")
	default:
		return &n
	}
	return nil
}

// Hasher is the keyed hash the fingerprint is made with.
type Hasher interface {
	Sum(parts ...string) string
}

// Fingerprint is a keyed hash of everything that defines an application, so that a repeat can
// be told from a conflicting reuse of its search_id without storing the phone number.
func Fingerprint(h Hasher, app *partnerapi.Application) string {
	amount, term := "", ""
	if app.Amount != nil {
		amount = app.Amount.String()
	}
	if app.Term != nil {
		term = strconv.Itoa(*app.Term)
	}
	return h.Sum("application.v1", app.SearchID, string(app.ProductType), app.PhoneNumber, amount, term)
}
