// Package classify proposes, per column of a database snapshot, a
// sensitivity class and a masking rule, from the column's name and type
// and from the shapes of its values (e-mails, phone numbers, card numbers
// with a valid Luhn digit, IBANs, dates of birth, free text that holds
// contact data). It writes the proposals as a rules file (package mask)
// for the operator to review and keep in version control.
package classify

import (
	"net/mail"
	"regexp"
	"strings"

	"github.com/coffer-backup/coffer/mask"
)

// Column is what a snapshot shows of one column: its name and type and a
// sample of its non-NULL values.
type Column struct {
	Table  string   `json:"table"`
	Name   string   `json:"column"`
	Type   string   `json:"type,omitempty"`
	Values []string `json:"-"`
}

// Class is a column's sensitivity.
type Class string

// The classes, most sensitive first.
const (
	Payment  Class = "payment"  // card numbers, IBANs
	Contact  Class = "contact"  // e-mails, phones
	Identity Class = "identity" // names, addresses, dates of birth, national ids
	FreeText Class = "free text"
	None     Class = "none"
)

// Proposal is the rule proposed for a column and why.
type Proposal struct {
	Column
	Class  Class   `json:"class"`
	Rule   string  `json:"rule"`
	Share  float64 `json:"share"` // of the sampled values that matched the shape, 0 when the name decided
	Reason string  `json:"reason"`
}

var (
	phoneShape = regexp.MustCompile(`^\+?[0-9][0-9 ().-]{5,22}[0-9]$`)
	dateShape  = regexp.MustCompile(`^(19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]`)
	emailIn    = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	phoneIn    = regexp.MustCompile(`\+?[0-9][0-9 ().-]{7,18}[0-9]`)
)

// names are column-name patterns, tried in order: the first that matches
// decides (email before address, so that email_address is an e-mail).
var names = []struct {
	re     *regexp.Regexp
	class  Class
	rule   string
	reason string
}{
	{regexp.MustCompile(`e_?mail`), Contact, "fake email", "an e-mail column"},
	{regexp.MustCompile(`phone|mobile|(^|_)tel($|_)|fax|msisdn`), Contact, "fake phone", "a phone column"},
	{regexp.MustCompile(`iban`), Payment, "fake iban", "an IBAN column"},
	{regexp.MustCompile(`card_?(number|no|num)|(^|_)pan($|_)|cc_?num|credit_?card`), Payment, "fake card", "a card number column"},
	{regexp.MustCompile(`ssn|social_security|national_?id|passport|tax_?id|(^|_)nin($|_)|id_card`), Identity, "hash", "a national id column"},
	{regexp.MustCompile(`first_?name|given_?name|forename`), Identity, "fake first_name", "a first name column"},
	{regexp.MustCompile(`last_?name|surname|family_?name`), Identity, "fake last_name", "a last name column"},
	{regexp.MustCompile(`^(full_?|customer_?|contact_?|display_?)?name$`), Identity, "fake name", "a person's name column"},
	{regexp.MustCompile(`birth|(^|_)dob($|_)`), Identity, "fake date_of_birth", "a date of birth column"},
	{regexp.MustCompile(`street|address|addr($|_)|address_line`), Identity, "fake address", "an address column"},
	{regexp.MustCompile(`note|comment|remark|message|description|memo`), FreeText, "fake text", "a free-text column"},
}

// minShare is the share of sampled values that must match a shape.
const minShare = 0.6

// Propose proposes a rule for a column.
func Propose(c Column) Proposal {
	p := Proposal{Column: c, Class: None, Rule: "keep", Reason: "nothing personal found in its name or values"}
	lname := strings.ToLower(c.Name)
	if strings.HasSuffix(lname, "_id") || lname == "id" || strings.HasSuffix(lname, "_at") {
		return p // keys and timestamps
	}
	// Values first: a column named "contact" that holds e-mails is one.
	for _, s := range shapes {
		if share := shareOf(c.Values, s.match); share >= minShare {
			p.Class, p.Rule, p.Share, p.Reason = s.class, s.rule, share, s.reason
			return p
		}
	}
	for _, n := range names {
		if n.re.MatchString(lname) {
			p.Class, p.Rule, p.Reason = n.class, n.rule, n.reason
			if n.class == FreeText {
				p.Share = shareOf(c.Values, holdsContact)
			}
			return p
		}
	}
	if share := shareOf(c.Values, holdsContact); share >= 0.01 && longText(c.Values) {
		p.Class, p.Rule, p.Share, p.Reason = FreeText, "fake text", share, "free text that holds e-mails or phone numbers"
	}
	return p
}

var shapes = []struct {
	match  func(string) bool
	class  Class
	rule   string
	reason string
}{
	{isEmail, Contact, "fake email", "values are e-mail addresses"},
	{isCard, Payment, "fake card", "values are card numbers (valid Luhn digit)"},
	{mask.IBANValid, Payment, "fake iban", "values are IBANs (valid check digits)"},
	{isPhone, Contact, "fake phone", "values are phone numbers"},
}

func isEmail(v string) bool {
	if !strings.Contains(v, "@") || strings.ContainsAny(v, " <>") {
		return false
	}
	a, err := mail.ParseAddress(v)
	return err == nil && a.Address == v
}

func isCard(v string) bool {
	d := 0
	for _, c := range v {
		if c >= '0' && c <= '9' {
			d++
		}
	}
	return d >= 13 && d <= 19 && mask.Luhn(v)
}

func isPhone(v string) bool {
	if !phoneShape.MatchString(v) || dateShape.MatchString(v) {
		return false
	}
	d := 0
	for _, c := range v {
		if c >= '0' && c <= '9' {
			d++
		}
	}
	return d >= 7 && d <= 15 && (strings.HasPrefix(v, "+") || strings.ContainsAny(v, " -()"))
}

func holdsContact(v string) bool { return emailIn.MatchString(v) || phoneIn.MatchString(v) }

func longText(vs []string) bool {
	n := 0
	for _, v := range vs {
		if strings.Count(v, " ") >= 3 {
			n++
		}
	}
	return len(vs) > 0 && float64(n)/float64(len(vs)) >= 0.5
}

func shareOf(vs []string, match func(string) bool) float64 {
	if len(vs) == 0 {
		return 0
	}
	n := 0
	for _, v := range vs {
		if match(v) {
			n++
		}
	}
	return float64(n) / float64(len(vs))
}
