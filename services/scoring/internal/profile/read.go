package profile

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/pseudonym"
)

// Format is the syntax of a client file.
type Format string

// Client file formats.
const (
	FormatCSV   Format = "csv"   // a header line, then one client per line
	FormatJSONL Format = "jsonl" // one JSON object per line
)

// FormatFromPath picks the format from the file name's extension: .csv, or .jsonl / .ndjson.
func FormatFromPath(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return FormatCSV, nil
	case ".jsonl", ".ndjson":
		return FormatJSONL, nil
	}
	return "", fmt.Errorf("profile: %s: unknown client file format, want .csv, .jsonl or .ndjson", path)
}

// Field names of a client file, the same in CSV headers and JSON Lines.
const (
	fieldPhone        = "phone"
	fieldIncome       = "monthly_income"
	fieldDebt         = "monthly_debt_payments"
	fieldGrade        = "bureau_grade"
	fieldClientSince  = "client_since"
	fieldSalaryClient = "salary_client"
	fieldStopList     = "stop_list"
)

// fields lists every field of a client file in its documented order.
var fields = []string{fieldPhone, fieldIncome, fieldDebt, fieldGrade, fieldClientSince, fieldSalaryClient, fieldStopList}

// jsonStringFields are the fields JSON Lines carries as strings; the others are numbers or
// booleans, as in the Profile's own JSON.
var jsonStringFields = map[string]bool{fieldPhone: true, fieldGrade: true, fieldClientSince: true}

// MaxLineErrors caps Stats.Errors so that a file of garbage cannot exhaust memory; Stats.Rejected
// still counts every bad line, and Options.Rejected sees every one as it is found.
const MaxLineErrors = 1000

// maxLineBytes bounds one JSON line; a client record is a few hundred bytes.
const maxLineBytes = 1 << 20

// Entry is one valid client of a file: the bucket key and the value to store under it.
type Entry struct {
	// Line is the entry's line number in the file, counting from 1.
	Line int
	// Key is the keyed hash of the phone number (pseudonym.Hasher.Phone), never the number.
	Key     string
	Profile Profile
}

// LineError is one rejected line. Reason names the fields at fault and never their values, so
// that a phone number in the wrong column cannot reach a log.
type LineError struct {
	Line   int
	Reason string
}

// Error formats e as "line N: reason".
func (e LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Stats sums up one file.
type Stats struct {
	// Records counts the data lines read: not the CSV header, not blank lines.
	Records int
	// Imported counts the entries passed to the callback.
	Imported int
	// Rejected counts the bad lines.
	Rejected int
	// Errors holds the first MaxLineErrors bad lines, in file order.
	Errors []LineError
}

// Position is how far a read has come.
type Position struct {
	// Line is the line of the last record read, counting from 1.
	Line int
	// Bytes counts the bytes of the file read so far.
	Bytes int64
}

// Options are what a caller watches of a read while it runs.
type Options struct {
	// Rejected, when not nil, is called with every bad line as it is found, in file order:
	// unlike Stats.Errors it misses none, and keeps none.
	Rejected func(LineError)
	// Progress, when not nil, is called after every record, good or bad; it should be cheap.
	Progress func(Position)
}

// Read parses a client file and calls fn with each valid line, in file order. A bad line is
// recorded in Stats and skipped. Read stops with an error when the file cannot be read at all
// (I/O, a missing or wrong CSV header, an over-long line) or when fn returns one.
func Read(r io.Reader, format Format, hasher *pseudonym.Hasher, fn func(Entry) error) (Stats, error) {
	return ReadWith(r, format, hasher, fn, Options{})
}

// ReadWith is Read that reports each bad line and its progress through opts as it goes.
func ReadWith(r io.Reader, format Format, hasher *pseudonym.Hasher, fn func(Entry) error, opts Options) (Stats, error) {
	if hasher == nil || fn == nil {
		return Stats{}, errors.New("profile: Read needs a hasher and a callback")
	}
	im := &importer{hasher: hasher, fn: fn, opts: opts}
	var err error
	switch format {
	case FormatCSV:
		err = im.readCSV(r)
	case FormatJSONL:
		err = im.readJSONL(r)
	default:
		err = fmt.Errorf("profile: unknown client file format %q", format)
	}
	return im.stats, err
}

// importer turns records into entries and keeps the counts.
type importer struct {
	hasher *pseudonym.Hasher
	fn     func(Entry) error
	opts   Options
	stats  Stats
}

func (im *importer) reject(line int, reason string) {
	im.stats.Rejected++
	e := LineError{Line: line, Reason: reason}
	if len(im.stats.Errors) < MaxLineErrors {
		im.stats.Errors = append(im.stats.Errors, e)
	}
	if im.opts.Rejected != nil {
		im.opts.Rejected(e)
	}
}

func (im *importer) progress(line int, bytes int64) {
	if im.opts.Progress != nil {
		im.opts.Progress(Position{Line: line, Bytes: bytes})
	}
}

// record validates one line's fields, given as text by field name, and hands the entry to fn.
func (im *importer) record(line int, rec map[string]string) error {
	key, p, problems := im.parse(rec)
	if len(problems) > 0 {
		im.reject(line, strings.Join(problems, "; "))
		return nil
	}
	if err := im.fn(Entry{Line: line, Key: key, Profile: p}); err != nil {
		return fmt.Errorf("profile: line %d: %w", line, err)
	}
	im.stats.Imported++
	return nil
}

// parse checks the fields of one record. The phone leaves it only as its keyed hash.
func (im *importer) parse(rec map[string]string) (string, Profile, []string) {
	var p Profile
	var problems []string
	required := func(name string) (string, bool) {
		v := rec[name]
		if v == "" {
			problems = append(problems, name+" is required")
			return "", false
		}
		return v, true
	}
	money := func(name string) partnerapi.Money {
		v, ok := required(name)
		if !ok {
			return 0
		}
		m, err := partnerapi.ParseMoney(v)
		switch {
		case errors.Is(err, partnerapi.ErrMoneyPrecision):
			problems = append(problems, name+" must have at most 2 decimals")
		case errors.Is(err, partnerapi.ErrMoneyRange):
			problems = append(problems, name+" is out of range")
		case err != nil:
			problems = append(problems, name+" must be a number of roubles")
		}
		return m
	}
	boolean := func(name string) bool {
		v, ok := required(name)
		if !ok {
			return false
		}
		switch strings.ToLower(v) {
		case "true", "1":
			return true
		case "false", "0":
			return false
		}
		problems = append(problems, name+" must be true, false, 1 or 0")
		return false
	}

	phone, ok := required(fieldPhone)
	if ok && !tenDigits(phone) {
		problems = append(problems, fieldPhone+" must be exactly 10 digits")
	}
	p.MonthlyIncome = money(fieldIncome)
	p.MonthlyDebtPayments = money(fieldDebt)
	p.BureauGrade = rec[fieldGrade]
	p.ClientSince = rec[fieldClientSince]
	p.SalaryClient = boolean(fieldSalaryClient)
	p.StopList = boolean(fieldStopList)
	// Domain rules (grade, date, signs) come from the same check as stored profiles; a money
	// field that failed to parse is zero and so adds nothing here.
	problems = append(problems, p.problems()...)
	if len(problems) > 0 {
		return "", Profile{}, problems
	}
	return im.hasher.Phone(phone), p, nil
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

// readCSV reads a CSV file whose header names every field, in any order.
func (im *importer) readCSV(r io.Reader) error {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return errors.New("profile: csv: empty file, a header line is required")
	}
	if err != nil {
		return fmt.Errorf("profile: csv header: %w", err)
	}
	columns, err := csvColumns(header)
	if err != nil {
		return err
	}
	// Every record must have as many fields as the header.
	cr.FieldsPerRecord = len(header)
	for {
		values, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			// The reader resumes at the next record after a malformed one.
			im.stats.Records++
			reason := "malformed CSV quoting"
			if errors.Is(perr.Err, csv.ErrFieldCount) {
				reason = fmt.Sprintf("want %d fields as in the header", len(header))
			}
			im.reject(perr.StartLine, reason)
			im.progress(perr.Line, cr.InputOffset())
			continue
		}
		if err != nil {
			return fmt.Errorf("profile: csv: %w", err)
		}
		im.stats.Records++
		line, _ := cr.FieldPos(0)
		rec := make(map[string]string, len(columns))
		for i, name := range columns {
			rec[name] = strings.TrimSpace(values[i])
		}
		if err := im.record(line, rec); err != nil {
			return err
		}
		im.progress(line, cr.InputOffset())
	}
}

// csvColumns maps each header position to its field name. Errors name unknown columns by
// position only: a file without a header would otherwise put a phone number in the error.
func csvColumns(header []string) ([]string, error) {
	columns := make([]string, len(header))
	seen := make(map[string]bool, len(header))
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff") // a byte order mark that spreadsheets write
		}
		if !known(name) {
			return nil, fmt.Errorf("profile: csv header: column %d is not one of %s (is the header line missing?)", i+1, strings.Join(fields, ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("profile: csv header: column %q appears twice", name)
		}
		seen[name] = true
		columns[i] = name
	}
	for _, f := range fields {
		if !seen[f] {
			return nil, fmt.Errorf("profile: csv header: column %q is missing", f)
		}
	}
	return columns, nil
}

func known(name string) bool { return slices.Contains(fields, name) }

// readJSONL reads one JSON object per line; blank lines are skipped.
func (im *importer) readJSONL(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxLineBytes)
	// The scanner reads ahead; what the split function consumed is how far the lines go.
	var consumed int64
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		advance, token, err := bufio.ScanLines(data, atEOF)
		consumed += int64(advance)
		return advance, token, err
	})
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\ufeff"))
		}
		if len(text) == 0 {
			continue
		}
		im.stats.Records++
		rec, problems := jsonRecord(text)
		if len(problems) > 0 {
			im.reject(line, strings.Join(problems, "; "))
		} else if err := im.record(line, rec); err != nil {
			return err
		}
		im.progress(line, consumed)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("profile: jsonl: line %d is longer than %d bytes", line+1, maxLineBytes)
		}
		return fmt.Errorf("profile: jsonl: %w", err)
	}
	return nil
}

// jsonRecord turns one JSON object into field texts: strings unquoted, numbers and booleans as
// written. A null or absent field is left out, so that it reads as missing.
func jsonRecord(text []byte) (map[string]string, []string) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(text, &obj); err != nil || obj == nil {
		return nil, []string{"not a JSON object"}
	}
	rec := make(map[string]string, len(obj))
	var problems []string
	for _, name := range fields {
		raw, ok := obj[name]
		if !ok || string(raw) == "null" {
			continue
		}
		isString := raw[0] == '"'
		if isString != jsonStringFields[name] {
			if jsonStringFields[name] {
				problems = append(problems, name+" must be a string")
			} else {
				problems = append(problems, name+" must not be a string")
			}
			continue
		}
		if isString {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				problems = append(problems, name+" must be a string")
				continue
			}
			rec[name] = strings.TrimSpace(s)
			continue
		}
		rec[name] = string(raw)
	}
	var unknown []string
	for name := range obj {
		if !known(name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		problems = append(problems, unknownFields(unknown))
	}
	return rec, problems
}

// unknownFields names unexpected JSON keys when they look like field names; any other key
// might be personal data (a phone used as a key) and is only counted.
func unknownFields(names []string) string {
	var safe []string
	for _, n := range names {
		if identifier(n) {
			safe = append(safe, fmt.Sprintf("%q", n))
		}
	}
	if len(safe) != len(names) {
		return fmt.Sprintf("%d unknown fields, not named as they may hold personal data", len(names))
	}
	slices.Sort(safe)
	return "unknown fields " + strings.Join(safe, ", ")
}

// identifier reports whether s is a short name of letters and underscores.
func identifier(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
