package chain

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/loanflow/loanflow/contracts/events"
)

// Formats of Render and NewWriter.
const (
	// FormatTable is for people: aligned columns and a one-line summary of each payload.
	FormatTable = "table"
	// FormatJSONL is one record per line, exactly as stored, for tools and re-verification.
	FormatJSONL = "jsonl"
	// FormatCSV is a header and one row per record with every field, for spreadsheets.
	FormatCSV = "csv"
)

// Table column widths: wide enough for the usual value (an event type, a UUID), so that
// rows stream out aligned without reading every record first. A longer value shifts only
// its own row.
const (
	seqWidth     = 6
	timeWidth    = len(tableTime)
	stageWidth   = len(StageScoring)
	eventWidth   = len(events.TypeApplicationReceived)
	searchWidth  = 36
	tableTime    = "2006-01-02T15:04:05.000Z"
	summaryLimit = 120 // bytes of a payload shown for an event type without a summary
)

var csvHeader = []string{"seq", "time", "event_type", "search_id", "stage", "correlation_id",
	"source_seq", "payload", "prev_hash", "hash"}

// Writer renders records one at a time, so that a replay of the whole stream needs no
// memory for it. Call Flush after the last record.
type Writer struct {
	format string
	bw     *bufio.Writer
	csv    *csv.Writer
	json   *json.Encoder
	header bool // written
}

// NewWriter returns a Writer of the given format to w.
func NewWriter(w io.Writer, format string) (*Writer, error) {
	bw := bufio.NewWriter(w)
	out := &Writer{format: format, bw: bw}
	switch format {
	case FormatTable:
	case FormatJSONL:
		out.json = json.NewEncoder(bw)
		// Payloads hold "<" and "&" in details and links; keep them readable.
		out.json.SetEscapeHTML(false)
	case FormatCSV:
		out.csv = csv.NewWriter(bw)
	default:
		return nil, fmt.Errorf("chain: unknown format %q: want %s, %s or %s",
			format, FormatTable, FormatJSONL, FormatCSV)
	}
	return out, nil
}

// Render writes recs to w in the given format: table, jsonl or csv.
func Render(w io.Writer, format string, recs []Record) error {
	out, err := NewWriter(w, format)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := out.Write(r); err != nil {
			return err
		}
	}
	return out.Flush()
}

// Write renders one record.
func (w *Writer) Write(r Record) error {
	if err := w.writeHeader(); err != nil {
		return err
	}
	switch w.format {
	case FormatJSONL:
		if err := w.json.Encode(r); err != nil {
			return fmt.Errorf("chain: record %d: %w", r.Seq, err)
		}
		return nil
	case FormatCSV:
		return w.csv.Write([]string{
			strconv.FormatUint(r.Seq, 10), r.Time.UTC().Format(time.RFC3339Nano), r.EventType,
			r.SearchID, r.Stage, r.CorrelationID, strconv.FormatUint(r.SourceSeq, 10),
			string(r.Payload), r.PrevHash, r.Hash,
		})
	}
	_, err := fmt.Fprintf(w.bw, "%*d  %-*s  %-*s  %-*s  %-*s  %s\n",
		seqWidth, r.Seq, timeWidth, r.Time.UTC().Format(tableTime),
		stageWidth, cell(r.Stage), eventWidth, cell(r.EventType),
		searchWidth, cell(r.SearchID), summarise(r))
	return err
}

// Flush writes the header if no record was written, and anything buffered, to the
// underlying writer.
func (w *Writer) Flush() error {
	if err := w.writeHeader(); err != nil {
		return err
	}
	if w.csv != nil {
		if w.csv.Flush(); w.csv.Error() != nil {
			return w.csv.Error()
		}
	}
	return w.bw.Flush()
}

func (w *Writer) writeHeader() error {
	if w.header {
		return nil
	}
	w.header = true
	switch w.format {
	case FormatCSV:
		return w.csv.Write(csvHeader)
	case FormatTable:
		_, err := fmt.Fprintf(w.bw, "%*s  %-*s  %-*s  %-*s  %-*s  %s\n",
			seqWidth, "SEQ", timeWidth, "TIME", stageWidth, "STAGE", eventWidth, "EVENT",
			searchWidth, "SEARCH_ID", "SUMMARY")
		return err
	}
	return nil
}

// summarise returns the one-line digest of a record's payload that the table shows: what a
// compliance officer reads first for each event type.
func summarise(r Record) string {
	var b summary
	switch r.EventType {
	case events.TypeApplicationReceived:
		var p events.ApplicationReceived
		if json.Unmarshal(r.Payload, &p) != nil {
			break
		}
		b.add("product", string(p.ProductType))
		if p.Amount != nil {
			b.add("amount", p.Amount.String())
		}
		if p.Term != nil {
			b.add("term", strconv.Itoa(*p.Term))
		}
		b.add("phone", p.PhoneMask)
		return b.String()
	case events.TypeApplicationScored:
		var p events.ApplicationScored
		if json.Unmarshal(r.Payload, &p) != nil {
			break
		}
		b.add("outcome", string(p.Outcome))
		if p.Approval != "" {
			b.add("approval", string(p.Approval))
		}
		b.add("max", p.MaxAmount.String())
		if p.MaxPayment > 0 {
			b.add("max_payment", p.MaxPayment.String())
		}
		if len(p.ReasonCodes) > 0 {
			b.add("reasons", strings.Join(p.ReasonCodes, ","))
		}
		b.add("policy", p.PolicyVersion)
		return b.String()
	case events.TypeDecisionMade:
		var p events.DecisionMade
		if json.Unmarshal(r.Payload, &p) != nil {
			break
		}
		b.add("decision", string(p.Decision))
		b.add("offers", strconv.Itoa(len(p.Offers)))
		if len(p.Offers) > 0 {
			ranges := make([]string, len(p.Offers))
			for i, o := range p.Offers {
				ranges[i] = o.Amount.Min.String() + ".." + o.Amount.Max.String()
			}
			b.add("amounts", strings.Join(ranges, ","))
		}
		// The offers the self-check kept from Yandex, each with the checks it failed: a
		// replay must show why an answer has fewer offers than the catalog made, or none.
		if len(p.Dropped) > 0 {
			dropped := make([]string, len(p.Dropped))
			for i, d := range p.Dropped {
				dropped[i] = d.OfferID + ":" + strings.Join(d.Checks, "+")
			}
			b.add("dropped", strings.Join(dropped, ","))
		}
		if len(p.ReasonCodes) > 0 {
			b.add("reasons", strings.Join(p.ReasonCodes, ","))
		}
		return b.String()
	case events.TypeApplicationFailed:
		var p events.ApplicationFailed
		if json.Unmarshal(r.Payload, &p) != nil {
			break
		}
		b.add("stage", p.Stage)
		b.add("reason", p.Reason)
		b.add("detail", p.Detail)
		return b.String()
	case events.TypeApplicationReferred:
		var p events.ApplicationReferred
		if json.Unmarshal(r.Payload, &p) != nil {
			break
		}
		b.add("suggested", string(p.Suggested.Approval))
		b.add("max", p.Suggested.MaxAmount.String())
		b.add("reasons", strings.Join(p.ReasonCodes, ","))
		b.add("decide_by", p.DecideBy.UTC().Format(time.RFC3339))
		return b.String()
	case events.TypeUnderwritingTaken:
		var p events.UnderwritingTaken
		if json.Unmarshal(r.Payload, &p) != nil {
			break
		}
		b.add("by", p.TakenBy)
		return b.String()
	case events.TypeUnderwritingDecided:
		var p events.UnderwritingDecided
		if json.Unmarshal(r.Payload, &p) != nil {
			break
		}
		b.add("by", p.DecidedBy)
		b.add("outcome", string(p.Decision.Outcome))
		if p.Decision.Outcome == events.OutcomeApproved {
			b.add("approval", string(p.Decision.Approval))
			b.add("max", p.Decision.MaxAmount.String())
		}
		b.add("reasons", strings.Join(p.ReasonCodes, ","))
		return b.String()
	case events.TypeOfferClicked:
		var p events.OfferClicked
		if json.Unmarshal(r.Payload, &p) != nil {
			break
		}
		b.add("offer", p.OfferID)
		b.add("channel", p.Channel)
		return b.String()
	}
	// An event type without a summary, or a payload that does not decode: show the payload
	// itself rather than hide it.
	p := string(r.Payload)
	if len(p) > summaryLimit {
		cut := summaryLimit
		for cut > 0 && !utf8.RuneStart(p[cut]) {
			cut--
		}
		p = p[:cut] + "…"
	}
	b.addRaw("payload", quoteIfNeeded(p, false))
	return b.String()
}

// summary builds "key=value key=value".
type summary struct{ strings.Builder }

func (b *summary) add(key, value string) { b.addRaw(key, quoteIfNeeded(value, true)) }

// addRaw adds a value that is already safe to print.
func (b *summary) addRaw(key, value string) {
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(key)
	b.WriteByte('=')
	b.WriteString(value)
}

// cell makes a table cell safe to print: a value with control characters (a line break, a
// terminal escape sequence) is shown quoted rather than acted upon.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return quoteIfNeeded(s, false)
}

// quoteIfNeeded quotes s when it would not read as one token: empty, holding a space or a
// quote (when spaces matter), or holding anything unprintable.
func quoteIfNeeded(s string, spaces bool) string {
	if s == "" && spaces {
		return `""`
	}
	for _, c := range s {
		if !unicode.IsPrint(c) || spaces && (c == ' ' || c == '"') {
			return strconv.Quote(s)
		}
	}
	return s
}
