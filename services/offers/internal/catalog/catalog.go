// Package catalog is the bank's product catalog and the arithmetic that turns an approval into
// the partner API's offers: amount and term ranges, rates by grade, monthly annuity payments in
// kopecks, the ПСК (full cost of credit) by Federal Law 353-FZ, card terms, documents and
// proposal links. It has no NATS or HTTP in it, and the same input always gives the same offers.
//
// The ПСК of a credit card depends on how the card is used, so it is computed under one standard
// usage scenario, the same for every card and every client: the whole limit is drawn by a
// purchase on the day the card is issued, outside the grace period, and repaid in 12 equal
// monthly annuity payments at the card rate; the annual fee is paid when the card is issued.
package catalog

import (
	_ "embed"
	"fmt"
	"os"
	"reflect"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// defaultYAML is the catalog used when none is configured; its comments document every setting.
//
//go:embed default.yaml
var defaultYAML []byte

// ReasonNoMatchingProduct is the reason code recorded when scoring approved but no product of
// the catalog fits the approval (a limit below every product's minimum, say): the answer to
// Yandex is then a rejection, and the bank's records must say why.
const ReasonNoMatchingProduct = "NO_MATCHING_PRODUCT"

// GradeUnknown prices clients the bank has no data on, and any grade the catalog does not list.
const GradeUnknown = "unknown"

// grades are the grades every product must price.
var grades = []string{"A", "B", "C", GradeUnknown}

// defaultBankName is sent as the answer's name when the catalog does not set bank_name.
const defaultBankName = "АО «Лоанфлоу Банк»"

// LawPSKCap is the largest ПСК Federal Law 353-FZ (art. 6 p. 23) allows for any consumer
// credit, % a year; a catalog's psk_caps may only be lower.
const LawPSKCap = 292.0

// cardScenarioMonths is the repayment period of the standard usage scenario a card's ПСК is
// computed under (see the package comment).
const cardScenarioMonths = 12

// Catalog is a validated product catalog. It cannot change once parsed and is safe for
// concurrent use.
type Catalog struct {
	version  string
	bankName string
	web      string // proposal link templates; at least one is set
	deep     string
	pskCap   map[partnerapi.ProductType]float64 // the self-check's largest ПСК by product type
	loans    []loanProduct                      // sorted by amount; consecutive tiers split one amount range
	cards    []cardProduct                      // sorted by limit
}

// rateRange is a yearly interest rate range in percent.
type rateRange struct{ min, max float64 }

// product is what loans and cards share. For a card, amount is the credit limit.
type product struct {
	id                 string
	amount             partnerapi.MoneyRange
	rates              map[string]rateRange // by grade, every one of grades present
	fee                partnerapi.Money     // paid when the loan is granted or the card issued
	requiredDocuments  []string
	choosableDocuments []string
	specialConditions  []string
}

type loanProduct struct {
	product
	term partnerapi.TermRange
}

type cardProduct struct {
	product
	gracePeriod int     // days
	ccRate      float64 // minimum monthly payment, % of the debt
}

// Default returns the built-in catalog, default.yaml.
func Default() (*Catalog, error) { return Parse("default.yaml", defaultYAML) }

// Load reads and validates the catalog file at path.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return Parse(path, data)
}

// Version is the catalog's version, recorded with every decision.
func (c *Catalog) Version() string { return c.version }

// BankName is the bank's legal name, sent as name in every final answer.
func (c *Catalog) BankName() string { return c.bankName }

// Equal reports whether c and other hold the same catalog: every product, price, document,
// link and cap, the version included. Comments and layout of the file do not count. A reload
// uses it to refuse a file that changes the products under the running version, which would
// make the version recorded with a decision no longer say which products it was made from.
func (c *Catalog) Equal(other *Catalog) bool { return reflect.DeepEqual(c, other) }
