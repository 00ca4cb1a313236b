package drill

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Assertion is a user's check on the restored data: a query returning one
// value, and the value it must return.
type Assertion struct {
	Name   string `yaml:"name"`
	SQL    string `yaml:"sql"`
	Expect string `yaml:"expect"`
}

// LoadAssertions reads a YAML list of assertions:
//
//   - name: customers has more than 1000 rows
//     sql: SELECT count(*) > 1000 FROM customers
//     expect: true
//   - name: no order without a customer
//     sql: SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL
//     expect: 0
func LoadAssertions(path string) ([]Assertion, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("assertions: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var as []Assertion
	if err := dec.Decode(&as); err != nil {
		return nil, fmt.Errorf("assertions file %s: %w (it is a YAML list of name, sql, expect)", path, err)
	}
	for i, a := range as {
		if a.Name == "" || a.SQL == "" || a.Expect == "" {
			return nil, fmt.Errorf("assertions file %s: entry %d needs name, sql and expect", path, i+1)
		}
	}
	return as, nil
}

// eval runs the query and compares its single value with Expect.
func (a Assertion) eval(ctx context.Context, db *sql.DB) (string, error) {
	var v any
	if err := db.QueryRowContext(ctx, a.SQL).Scan(&v); err != nil {
		return "", fmt.Errorf("query failed: %w", err)
	}
	got := normalize(v)
	want := strings.ToLower(strings.TrimSpace(a.Expect))
	if got == want || (want == "true" && got == "1") || (want == "false" && got == "0") {
		return got, nil
	}
	return got, errors.New("got " + got + ", want " + a.Expect)
}

func normalize(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case []byte:
		return normalizeText(string(v))
	case string:
		return normalizeText(v)
	default:
		return normalizeText(fmt.Sprint(v))
	}
}

func normalizeText(s string) string {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case "t":
		return "true"
	case "f":
		return "false"
	}
	return s
}
