package apicheck

import (
	"net/http"
	"os"
	"testing"
)

func TestResponse(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	done, err := os.ReadFile("../testdata/answers/loan_done.json")
	if err != nil {
		t.Fatal(err)
	}
	const path = "/integrations/api/banking/loan_approval"
	tests := []struct {
		name   string
		method string
		path   string
		status int
		body   string
		ok     bool
	}{
		{"golden done answer", http.MethodPost, path, 200, string(done), true},
		{"same answer on GET", http.MethodGet, path + "/3f1c9a62-5b7e-4d2a-9c1e-0b8f6a4d2e71", 200, string(done), true},
		{"rejected with data", http.MethodPost, path, 200, `{"search_id":"a","status":"done","name":"Б","decision":"rejected","data":[]}`, false},
		{"error without message", http.MethodPost, path, 404, `{"search_id":"a"}`, false},
		{"status the document lacks", http.MethodPost, path, 418, `{"search_id":"a","message":"x"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
			err := v.Response(tt.method, tt.path, tt.status, h, []byte(tt.body))
			if got := err == nil; got != tt.ok {
				t.Errorf("valid = %v, want %v (err %v)", got, tt.ok, err)
			}
		})
	}
}
