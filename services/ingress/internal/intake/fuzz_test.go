package intake

import (
	"errors"
	"slices"
	"testing"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// FuzzParse feeds the request decoder and validator arbitrary bodies. The seed corpus
// (testdata/fuzz/FuzzParse) holds Yandex's examples and broken variants of them. Whatever the
// input: no panic, and either a valid request or an *Error that names fields from the contract
// (or the body) with a message.
func FuzzParse(f *testing.F) {
	fields := []string{"search_id", "product_type", "phone_number", "amount", "term"}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := Parse(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v, want *Error", err, err)
			}
			if e.Message() == "" || (len(e.Fields) == 0 && e.Body == "") {
				t.Fatalf("error without a reason: %+v", e)
			}
			for _, p := range e.Properties() {
				if !slices.Contains(fields, p) {
					t.Fatalf("property %q is not a contract field", p)
				}
			}
			return
		}
		if (req.Application == nil) == (req.Poll == nil) {
			t.Fatalf("want exactly one of application and poll: %+v", req)
		}
		if !ValidSearchID(req.SearchID()) {
			t.Fatalf("accepted search_id %q", req.SearchID())
		}
		if a := req.Application; a != nil {
			if !a.ProductType.Valid() || !tenDigits(a.PhoneNumber) {
				t.Fatalf("accepted %+v", a)
			}
			if a.ProductType == partnerapi.ProductLoan && (a.Amount == nil || a.Term == nil) {
				t.Fatalf("loan without amount or term accepted: %+v", a)
			}
			if a.Amount != nil && (*a.Amount <= 0 || *a.Amount > partnerapi.MaxMoney) {
				t.Fatalf("amount %v accepted", *a.Amount)
			}
			if a.Term != nil && (*a.Term < 1 || *a.Term > MaxTerm) {
				t.Fatalf("term %d accepted", *a.Term)
			}
		}
	})
}
