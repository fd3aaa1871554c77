package intake

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/pseudonym"
)

const sid = "3f1c9a62-5b7e-4d2a-9c1e-0b8f6a4d2e71"

func TestParseValid(t *testing.T) {
	money := func(k int64) *partnerapi.Money { m := partnerapi.Money(k); return &m }
	months := func(n int) *int { return &n }
	tests := []struct {
		name string
		body string
		want Request
	}{
		{"loan", `{"search_id":"` + sid + `","product_type":"loan","phone_number":"9330445040","amount":500000,"term":24}`,
			Request{Application: &partnerapi.Application{SearchID: sid, ProductType: "loan", PhoneNumber: "9330445040", Amount: money(500000_00), Term: months(24)}}},
		{"loan with kopecks and integral float term", `{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":600000.01,"term":12.0}`,
			Request{Application: &partnerapi.Application{SearchID: "a", ProductType: "loan", PhoneNumber: "9330445040", Amount: money(600000_01), Term: months(12)}}},
		{"card without amount and term", `{"search_id":"` + sid + `","product_type":"credit_card","phone_number":"9330445040"}`,
			Request{Application: &partnerapi.Application{SearchID: sid, ProductType: "credit_card", PhoneNumber: "9330445040"}}},
		{"poll", `{"search_id":"` + sid + `"}`, Request{Poll: &partnerapi.Poll{SearchID: sid}}},
		{"poll with unknown fields and nulls", `{"search_id":"x_1","extra":1,"amount":null}`, Request{Poll: &partnerapi.Poll{SearchID: "x_1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v / %+v, want %+v / %+v", got.Application, got.Poll, tt.want.Application, tt.want.Poll)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantProps []string
		wantMsg   string // whole message when set, else a substring check on each property
		wantSID   string
	}{
		{"yandex bad example",
			`{"search_id":"` + sid + `","product_type":"loan","phone_number":"93304450","amount":"500000.00$","term":24}`,
			[]string{"phone_number", "amount"}, "Поле phone_number должно содержать 10 цифр; поле amount должно быть числом", sid},
		{"missing search_id in poll", `{}`, []string{"search_id"}, "Поле search_id обязательно", ""},
		{"search_id not a string", `{"search_id":42}`, []string{"search_id"}, "Поле search_id должно быть строкой", ""},
		{"search_id with spaces", `{"search_id":"a b"}`, []string{"search_id"}, "", ""},
		{"search_id too long", `{"search_id":"` + strings.Repeat("a", 129) + `"}`, []string{"search_id"}, "", ""},
		{"unknown product", `{"search_id":"a","product_type":"mortgage","phone_number":"9330445040"}`, []string{"product_type"},
			`Поле product_type должно быть "loan" или "credit_card"`, "a"},
		{"loan without amount and term", `{"search_id":"a","product_type":"loan","phone_number":"9330445040"}`, []string{"amount", "term"}, "", "a"},
		{"phone with +7", `{"search_id":"a","product_type":"credit_card","phone_number":"+79330445040"}`, []string{"phone_number"}, "", "a"},
		{"phone as number", `{"search_id":"a","product_type":"credit_card","phone_number":9330445040}`, []string{"phone_number"}, "", "a"},
		{"phone missing", `{"search_id":"a","product_type":"credit_card"}`, []string{"phone_number"}, "", "a"},
		{"amount three decimals", `{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":1.005,"term":12}`, []string{"amount"}, "", "a"},
		{"amount zero", `{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":0,"term":12}`, []string{"amount"}, "", "a"},
		{"amount negative", `{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":-5,"term":12}`, []string{"amount"}, "", "a"},
		{"amount huge", `{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":1e30,"term":12}`, []string{"amount"}, "", "a"},
		{"term fractional", `{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":1000,"term":12.5}`, []string{"term"}, "", "a"},
		{"term as string", `{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":1000,"term":"12"}`, []string{"term"}, "", "a"},
		{"term zero", `{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":1000,"term":0}`, []string{"term"}, "", "a"},
		{"term too long", `{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":1000,"term":601}`, []string{"term"}, "", "a"},
		{"card with bad optional amount", `{"search_id":"a","product_type":"credit_card","phone_number":"9330445040","amount":"x"}`, []string{"amount"}, "", "a"},
		{"everything wrong", `{"search_id":1,"product_type":2,"phone_number":3,"amount":"4","term":"5"}`,
			[]string{"search_id", "product_type", "phone_number", "amount", "term"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error = %v, want *Error", err)
			}
			if got := e.Properties(); !reflect.DeepEqual(got, tt.wantProps) {
				t.Errorf("properties = %q, want %q", got, tt.wantProps)
			}
			if tt.wantMsg != "" && e.Message() != tt.wantMsg {
				t.Errorf("message = %q, want %q", e.Message(), tt.wantMsg)
			}
			for _, p := range tt.wantProps {
				if !strings.Contains(strings.ToLower(e.Message()), "поле "+p) {
					t.Errorf("message %q does not name %s", e.Message(), p)
				}
			}
			if e.SearchID != tt.wantSID {
				t.Errorf("search_id = %q, want %q", e.SearchID, tt.wantSID)
			}
		})
	}
}

func TestParseNotAnObject(t *testing.T) {
	for _, body := range []string{``, `   `, `{"search_id":`, `[1,2]`, `"text"`, `null`, `{"search_id":"a"} {"x":1}`, "\xff\xfe"} {
		_, err := Parse([]byte(body))
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Parse(%q) error = %v, want *Error", body, err)
		}
		if e.Body == "" || len(e.Fields) != 0 {
			t.Errorf("Parse(%q) = %+v, want a body error", body, e)
		}
	}
}

func TestFingerprint(t *testing.T) {
	h, err := pseudonym.New([]byte("0123456789abcdef0123"))
	if err != nil {
		t.Fatal(err)
	}
	parse := func(body string) *partnerapi.Application {
		t.Helper()
		r, err := Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return r.Application
	}
	a := Fingerprint(h, parse(`{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":500000,"term":24}`))
	same := Fingerprint(h, parse(`{"term":24.0,"amount":500000.00,"phone_number":"9330445040","product_type":"loan","search_id":"a"}`))
	if a != same {
		t.Error("the same application written differently has another fingerprint")
	}
	for _, other := range []string{
		`{"search_id":"a","product_type":"loan","phone_number":"9330445041","amount":500000,"term":24}`,
		`{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":500000.01,"term":24}`,
		`{"search_id":"a","product_type":"loan","phone_number":"9330445040","amount":500000,"term":25}`,
		`{"search_id":"a","product_type":"credit_card","phone_number":"9330445040"}`,
	} {
		if Fingerprint(h, parse(other)) == a {
			t.Errorf("%s has the same fingerprint", other)
		}
	}
	if strings.Contains(a, "9330445040") {
		t.Error("fingerprint holds the phone")
	}
}
