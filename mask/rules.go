// Package mask owns masked copies of a database: the rules file that says
// what happens to each column, and the keyed, deterministic transformations
// (pseudonyms that keep a value's format) that carry the rules out. It knows
// nothing of engines: they hand it one column value at a time.
package mask

import (
	"fmt"
	"sort"
	"strings"
)

// Action is what a rule does to a column's values.
type Action string

// The actions a rule can take.
const (
	Keep       Action = "keep"        // the value as it is
	Null       Action = "null"        // NULL
	Redact     Action = "redact"      // a constant
	Hash       Action = "hash"        // a keyed, irreversible hex digest
	Fake       Action = "fake"        // a keyed pseudonym of a Kind, in the value's format
	ShiftDate  Action = "shift_date"  // the date moved by a keyed offset within ±Days
	KeepDomain Action = "keep_domain" // an e-mail's local part replaced, its domain kept
)

// Kind is what a fake value looks like.
type Kind string

// The kinds of fake values.
const (
	Name        Kind = "name"
	FirstName   Kind = "first_name"
	LastName    Kind = "last_name"
	Email       Kind = "email"
	Phone       Kind = "phone"
	Address     Kind = "address"
	Card        Kind = "card"
	IBAN        Kind = "iban"
	DateOfBirth Kind = "date_of_birth"
	Text        Kind = "text"
)

var kinds = []Kind{Name, FirstName, LastName, Email, Phone, Address, Card, IBAN, DateOfBirth, Text}

// Rule is what happens to one column.
type Rule struct {
	Action Action
	Kind   Kind // with Fake
	Days   int  // with ShiftDate: the largest shift, in days
	Unique bool // the column holds unique values: pseudonyms must stay unique
	Line   int  // where the rule is in its file, for messages
	Column int
}

// String is the rule as the rules file writes it.
func (r Rule) String() string {
	s := string(r.Action)
	switch r.Action {
	case Fake:
		s += " " + string(r.Kind)
	case ShiftDate:
		s += fmt.Sprintf(" %d", r.Days)
	}
	if r.Unique {
		s += " unique"
	}
	return s
}

// Masks reports whether the rule changes values.
func (r Rule) Masks() bool { return r.Action != Keep }

// Canaries configures the synthetic customers planted in a masked copy.
type Canaries struct {
	Table       string // the table the canaries go into, e.g. public.customers
	Domain      string // their e-mails are under this domain, which the operator watches
	PhonePrefix string // their phone numbers start with this, a range the operator watches
}

// Rules is a parsed rules file.
type Rules struct {
	File     string
	Default  Action // Keep or "fail"
	Tables   map[string]map[string]Rule
	Canaries *Canaries
}

// DefaultFail is the default that refuses a column the rules do not name.
const DefaultFail Action = "fail"

// Lookup returns the rule for a column of a table named as the rules file
// names tables (schema.table for PostgreSQL, table for SQLite and MariaDB).
// ok is false when the file does not name the column; the rule is then the
// default's (Keep), which the caller must refuse when Default is fail.
func (r *Rules) Lookup(table, column string) (Rule, bool) {
	cols, ok := r.Tables[table]
	if ok {
		if rule, ok := cols[column]; ok {
			return rule, true
		}
	}
	return Rule{Action: Keep}, false
}

// UncoveredError lists the columns a default: fail rules file does not
// name, found before anything was written to the target.
type UncoveredError struct {
	File    string
	Columns []string // table.column, sorted
}

func (e *UncoveredError) Error() string {
	return fmt.Sprintf("masking rules %s (default: fail) do not name %d column(s) of the snapshot: %s; nothing was written to the target: "+
		"add a rule for each (keep if it holds nothing personal) to %s and restore again", e.File, len(e.Columns), strings.Join(e.Columns, ", "), e.File)
}

// Cover checks that the rules name every column of the tables given
// (table name → its columns) when the default is fail. It is called with
// the whole schema before anything is loaded.
func (r *Rules) Cover(tables map[string][]string) error {
	if r.Default != DefaultFail {
		return nil
	}
	var missing []string
	for t, cols := range tables {
		for _, c := range cols {
			if _, ok := r.Lookup(t, c); !ok {
				missing = append(missing, t+"."+c)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return &UncoveredError{File: r.File, Columns: missing}
}
