package profile

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/loanflow/loanflow/pkg/pseudonym"
)

func newHasher(t testing.TB) *pseudonym.Hasher {
	t.Helper()
	h, err := pseudonym.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// readAll reads a whole file and returns what the callback saw.
func readAll(t testing.TB, data string, format Format) ([]Entry, Stats, error) {
	t.Helper()
	var got []Entry
	stats, err := Read(strings.NewReader(data), format, newHasher(t), func(e Entry) error {
		got = append(got, e)
		return nil
	})
	return got, stats, err
}

func TestReadCSV(t *testing.T) {
	h := newHasher(t)
	// Columns in another order than documented, a byte order mark, and spaces around values.
	data := "\ufeffbureau_grade,phone,monthly_income,monthly_debt_payments,stop_list,salary_client,client_since\n" + // 1
		"A,9330445040,85000.50,12000,false,true,2019-04-01\n" + // 2 good
		"B, 9161234567 ,120000,0,0,1,\n" + // 3 good, no join date, 1/0 booleans
		"\n" + // 4 blank: skipped
		"C,916123456,50000,0,false,false,\n" + // 5 phone of 9 digits
		"C,91612345ab,50000,0,false,false,\n" + // 6 phone with letters
		"D,9161234500,50000.005,-1,false,false,\n" + // 7 three decimals, negative debt
		"E,9161234501,abc,0,no,TRUE,2023-02-29\n" + // 8 grade, income, boolean, date
		"A,9161234502,50000,0,false\n" + // 9 too few fields
		"A,,,0,false,false,\n" + // 10 required fields empty
		"A,\"9161234503\",\"70000\",0,FALSE,False,\"2020-01-31\"\n" + // 11 good, quoted
		"A,9161234504,5\"0,0,false,false,\n" + // 12 bare quote
		"C,9161234505,30000,0,false,false,2021-12-31\n" // 13 good
	got, stats, err := readAll(t, data, FormatCSV)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := []Entry{
		{Line: 2, Key: h.Phone("9330445040"), Profile: Profile{MonthlyIncome: 85_000_50, MonthlyDebtPayments: 12_000_00, BureauGrade: "A", ClientSince: "2019-04-01", SalaryClient: true}},
		{Line: 3, Key: h.Phone("9161234567"), Profile: Profile{MonthlyIncome: 120_000_00, BureauGrade: "B", SalaryClient: true}},
		{Line: 11, Key: h.Phone("9161234503"), Profile: Profile{MonthlyIncome: 70_000_00, BureauGrade: "A", ClientSince: "2020-01-31"}},
		{Line: 13, Key: h.Phone("9161234505"), Profile: Profile{MonthlyIncome: 30_000_00, BureauGrade: "C", ClientSince: "2021-12-31"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries =\n%+v\nwant\n%+v", got, want)
	}
	wantStats := Stats{Records: 11, Imported: 4, Rejected: 7, Errors: []LineError{
		{5, "phone must be exactly 10 digits"},
		{6, "phone must be exactly 10 digits"},
		{7, "monthly_income must have at most 2 decimals; monthly_debt_payments must not be negative"},
		{8, "monthly_income must be a number of roubles; stop_list must be true, false, 1 or 0; " +
			"bureau_grade must be A, B, C or D; client_since must be a date YYYY-MM-DD"},
		{9, "want 7 fields as in the header"},
		{10, "phone is required; monthly_income is required"},
		{12, "malformed CSV quoting"},
	}}
	if !reflect.DeepEqual(stats, wantStats) {
		t.Errorf("stats =\n%+v\nwant\n%+v", stats, wantStats)
	}
}

func TestReadJSONL(t *testing.T) {
	h := newHasher(t)
	data := `{"phone":"9330445040","monthly_income":85000.50,"monthly_debt_payments":12000,"bureau_grade":"A","client_since":"2019-04-01","salary_client":true,"stop_list":false}` + "\n" + // 1 good
		"\n" + // 2 blank: skipped
		`{"stop_list":1,"salary_client":0,"bureau_grade":"D","monthly_debt_payments":0,"monthly_income":0,"phone":"9161234567","client_since":null}` + "\n" + // 3 good, any order, 1/0, null date
		`{"phone":9161234500,"monthly_income":"50000","monthly_debt_payments":0,"bureau_grade":"B","salary_client":false,"stop_list":"false"}` + "\n" + // 4 wrong JSON types
		`{"phone":"9161234501","monthly_income":50000,"monthly_debt_payments":0,"bureau_grade":"B","salary_client":false}` + "\n" + // 5 stop_list missing
		`{"phone":"9161234502","monthly_income":50000,"monthly_debt_payments":0,"bureau_grade":"B","salary_client":false,"stop_list":false,"email":"x","Notes":1}` + "\n" + // 6 unknown fields
		`{"phone":"9161234503",` + "\n" + // 7 not JSON
		`["9161234504"]` + "\n" + // 8 not an object
		`null` + "\n" + // 9 not an object
		`{"phone":"9161234505","monthly_income":1e3,"monthly_debt_payments":0.1,"bureau_grade":"C","salary_client":true,"stop_list":true}` + "\r\n" + // 10 good, CRLF
		`{"phone":"9161234506","monthly_income":100,"monthly_debt_payments":0,"bureau_grade":"C","salary_client":2,"stop_list":false,"client_since":"2020-13-01"}` // 11 no final newline
	got, stats, err := readAll(t, data, FormatJSONL)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := []Entry{
		{Line: 1, Key: h.Phone("9330445040"), Profile: Profile{MonthlyIncome: 85_000_50, MonthlyDebtPayments: 12_000_00, BureauGrade: "A", ClientSince: "2019-04-01", SalaryClient: true}},
		{Line: 3, Key: h.Phone("9161234567"), Profile: Profile{BureauGrade: "D", StopList: true}},
		{Line: 10, Key: h.Phone("9161234505"), Profile: Profile{MonthlyIncome: 1_000_00, MonthlyDebtPayments: 10, BureauGrade: "C", SalaryClient: true, StopList: true}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries =\n%+v\nwant\n%+v", got, want)
	}
	wantStats := Stats{Records: 10, Imported: 3, Rejected: 7, Errors: []LineError{
		{4, "phone must be a string; monthly_income must not be a string; stop_list must not be a string"},
		{5, "stop_list is required"},
		{6, `unknown fields "Notes", "email"`},
		{7, "not a JSON object"},
		{8, "not a JSON object"},
		{9, "not a JSON object"},
		{11, "salary_client must be true, false, 1 or 0; client_since must be a date YYYY-MM-DD"},
	}}
	if !reflect.DeepEqual(stats, wantStats) {
		t.Errorf("stats =\n%+v\nwant\n%+v", stats, wantStats)
	}
}

func TestReadFatalErrors(t *testing.T) {
	const header = "phone,monthly_income,monthly_debt_payments,bureau_grade,client_since,salary_client,stop_list\n"
	tests := []struct {
		name   string
		data   string
		format Format
		want   string
	}{
		{"empty csv", "", FormatCSV, "profile: csv: empty file, a header line is required"},
		{"csv without header", "9330445040,85000,0,A,,true,false\n", FormatCSV,
			"profile: csv header: column 1 is not one of phone, monthly_income, monthly_debt_payments, bureau_grade, client_since, salary_client, stop_list (is the header line missing?)"},
		{"csv column missing", "phone,monthly_income,monthly_debt_payments,bureau_grade,client_since,salary_client\n", FormatCSV,
			`profile: csv header: column "stop_list" is missing`},
		{"csv column twice", strings.TrimSuffix(header, "\n") + ",phone\n", FormatCSV, `profile: csv header: column "phone" appears twice`},
		{"csv unknown column", strings.TrimSuffix(header, "\n") + ",email\n", FormatCSV, "profile: csv header: column 8 is not one of"},
		{"jsonl line too long", `{"phone":"` + strings.Repeat("9", maxLineBytes) + `"}`, FormatJSONL,
			fmt.Sprintf("profile: jsonl: line 1 is longer than %d bytes", maxLineBytes)},
		{"unknown format", header, Format("xlsx"), `profile: unknown client file format "xlsx"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(t, tt.data, tt.format)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Read error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReadStopsOnCallbackError(t *testing.T) {
	data := "phone,monthly_income,monthly_debt_payments,bureau_grade,client_since,salary_client,stop_list\n" +
		"9330445040,85000,0,A,,true,false\n" +
		"9330445041,85000,0,A,,true,false\n" +
		"9330445042,85000,0,A,,true,false\n"
	errStore := errors.New("bucket unavailable")
	calls := 0
	stats, err := Read(strings.NewReader(data), FormatCSV, newHasher(t), func(Entry) error {
		calls++
		if calls == 2 {
			return errStore
		}
		return nil
	})
	if !errors.Is(err, errStore) || !strings.HasPrefix(err.Error(), "profile: line 3: ") {
		t.Errorf("Read error = %v, want line 3 wrapping %v", err, errStore)
	}
	if calls != 2 || stats.Imported != 1 {
		t.Errorf("calls = %d, imported = %d; want 2 calls, 1 imported", calls, stats.Imported)
	}
}

func TestReadNeedsHasherAndCallback(t *testing.T) {
	if _, err := Read(strings.NewReader(""), FormatCSV, nil, func(Entry) error { return nil }); err == nil {
		t.Error("Read without a hasher succeeded")
	}
	if _, err := Read(strings.NewReader(""), FormatCSV, newHasher(t), nil); err == nil {
		t.Error("Read without a callback succeeded")
	}
}

func TestReadCapsReportedErrors(t *testing.T) {
	data := strings.Repeat("{}\n", MaxLineErrors+5)
	_, stats, err := readAll(t, data, FormatJSONL)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Rejected != MaxLineErrors+5 || len(stats.Errors) != MaxLineErrors || stats.Errors[MaxLineErrors-1].Line != MaxLineErrors {
		t.Errorf("rejected %d, reported %d, want %d and %d in order", stats.Rejected, len(stats.Errors), MaxLineErrors+5, MaxLineErrors)
	}
}

// TestPhoneNeverInOutput feeds the phone number in every place a broken file could hold it and
// checks that no entry, statistic or error carries it in clear.
func TestPhoneNeverInOutput(t *testing.T) {
	const phone = "9330445040"
	const header = "phone,monthly_income,monthly_debt_payments,bureau_grade,client_since,salary_client,stop_list\n"
	files := []struct {
		name   string
		data   string
		format Format
	}{
		{"valid csv", header + phone + ",85000,0,A,,true,false\n", FormatCSV},
		{"csv without header", phone + ",85000,0,A,,true,false\n", FormatCSV},
		{"csv header made of the phone", "phone,monthly_income,monthly_debt_payments,bureau_grade,client_since,salary_client," + phone + "\n", FormatCSV},
		{"phone in every column", header + strings.Repeat(phone+",", 6) + phone + "\n", FormatCSV},
		{"phone with a prefix", header + "+7" + phone + ",85000,0,A,,true,false\n", FormatCSV},
		{"phone in a bad quote", header + `9330"445040,85000,0,A,,true,false` + "\n" + phone + "\n", FormatCSV},
		{"valid jsonl", `{"phone":"` + phone + `","monthly_income":1,"monthly_debt_payments":0,"bureau_grade":"A","salary_client":true,"stop_list":false}`, FormatJSONL},
		{"phone as a number", `{"phone":` + phone + `}`, FormatJSONL},
		{"phone as a key", `{"` + phone + `":1,"phone":"8` + phone + `"}`, FormatJSONL},
		{"phone in every field", `{"phone":"` + phone + `1","monthly_income":"` + phone + `","monthly_debt_payments":` + phone + `.001,"bureau_grade":"` + phone +
			`","client_since":"` + phone + `","salary_client":` + phone + `,"stop_list":"` + phone + `"}`, FormatJSONL},
		{"broken json", `{"phone":"` + phone + `",`, FormatJSONL},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			entries, stats, err := readAll(t, f.data, f.format)
			var out strings.Builder
			fmt.Fprintf(&out, "%+v\n%#v\n%+v\n%#v\n%v\n", entries, entries, stats, stats, err)
			for _, le := range stats.Errors {
				out.WriteString(le.Error())
			}
			b, jerr := json.Marshal(entries)
			if jerr != nil {
				t.Fatal(jerr)
			}
			out.Write(b)
			if strings.Contains(out.String(), phone) {
				t.Errorf("the phone number appears in the output:\n%s", out.String())
			}
		})
	}
}

func TestFormatFromPath(t *testing.T) {
	tests := []struct {
		path    string
		want    Format
		wantErr bool
	}{
		{"clients.csv", FormatCSV, false},
		{"/data/CLIENTS.CSV", FormatCSV, false},
		{"clients.jsonl", FormatJSONL, false},
		{"clients.ndjson", FormatJSONL, false},
		{"clients.json", "", true},
		{"clients", "", true},
		{"clients.csv.gz", "", true},
	}
	for _, tt := range tests {
		got, err := FormatFromPath(tt.path)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("FormatFromPath(%q) = %q, %v; want %q, error %v", tt.path, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestReadWithReportsEveryBadLineAndProgress reads files with more bad lines than Stats keeps:
// Options.Rejected sees every one in order, and Options.Progress follows the lines and bytes to
// the end of the file, bad lines included.
func TestReadWithReportsEveryBadLineAndProgress(t *testing.T) {
	const header = "phone,monthly_income,monthly_debt_payments,bureau_grade,client_since,salary_client,stop_list\n"
	const n = MaxLineErrors + 500
	var csvData, jsonData strings.Builder
	csvData.WriteString(header)
	var wantCSV, wantJSON []LineError
	for i := range n {
		phone := fmt.Sprintf("91%08d", i)
		if i%3 == 0 { // good
			fmt.Fprintf(&csvData, "%s,50000,0,B,,false,false\n", phone)
			fmt.Fprintf(&jsonData, `{"phone":%q,"monthly_income":50000,"monthly_debt_payments":0,"bureau_grade":"B","salary_client":false,"stop_list":false}`+"\n", phone)
			continue
		}
		fmt.Fprintf(&csvData, "%s,50000,0,Z,,false,false\n", phone)
		wantCSV = append(wantCSV, LineError{Line: i + 2, Reason: "bureau_grade must be A, B, C or D"})
		fmt.Fprintf(&jsonData, `{"phone":%q}`+"\n", phone)
		wantJSON = append(wantJSON, LineError{Line: i + 1, Reason: "monthly_income is required; monthly_debt_payments is required; salary_client is required; stop_list is required; bureau_grade must be A, B, C or D"})
	}
	tests := []struct {
		format     Format
		data       string
		want       []LineError
		firstLine  int
		lastLine   int
		wantCalled int
	}{
		{FormatCSV, csvData.String(), wantCSV, 2, n + 1, n},
		{FormatJSONL, jsonData.String(), wantJSON, 1, n, n},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			var got []LineError
			var positions []Position
			stats, err := ReadWith(strings.NewReader(tt.data), tt.format, newHasher(t), func(Entry) error { return nil }, Options{
				Rejected: func(e LineError) { got = append(got, e) },
				Progress: func(p Position) { positions = append(positions, p) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("reported %d bad lines, want %d", len(got), len(tt.want))
			}
			for i := range min(len(got), len(tt.want)) {
				if got[i] != tt.want[i] {
					t.Fatalf("bad line %d reported as %v, want %v", i, got[i], tt.want[i])
				}
			}
			if stats.Rejected != len(tt.want) || len(stats.Errors) != MaxLineErrors {
				t.Errorf("rejected %d, kept %d; want %d and %d", stats.Rejected, len(stats.Errors), len(tt.want), MaxLineErrors)
			}
			if len(positions) != tt.wantCalled {
				t.Fatalf("progress called %d times, want once per record (%d)", len(positions), tt.wantCalled)
			}
			for i := 1; i < len(positions); i++ {
				if positions[i].Line <= positions[i-1].Line || positions[i].Bytes <= positions[i-1].Bytes {
					t.Fatalf("progress went from %+v to %+v", positions[i-1], positions[i])
				}
			}
			first, last := positions[0], positions[len(positions)-1]
			if first.Line != tt.firstLine || last.Line != tt.lastLine || last.Bytes != int64(len(tt.data)) {
				t.Errorf("progress from %+v to %+v, want lines %d to %d and %d bytes at the end", first, last, tt.firstLine, tt.lastLine, len(tt.data))
			}
		})
	}
}
