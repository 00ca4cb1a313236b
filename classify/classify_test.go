package classify

import (
	"bytes"
	"testing"

	"github.com/coffer-backup/coffer/mask"
)

func TestPropose(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		want   string
	}{
		{"contact", []string{"a@b.example", "c@d.example", "e@f.example"}, "fake email"}, // values decide
		{"email_address", nil, "fake email"},
		{"mobile", nil, "fake phone"},
		{"x", []string{"+44 20 7946 0000", "+44 20 7946 0001"}, "fake phone"},
		{"pan", nil, "fake card"},
		{"ref", []string{"4111 1111 1111 1111", "5500 0000 0000 0004"}, "fake card"},
		{"account", []string{"DE89 3704 0044 0532 0130 00"}, "fake iban"},
		{"surname", nil, "fake last_name"},
		{"dob", []string{"1980-01-02"}, "fake date_of_birth"},
		{"passport_no", nil, "hash"},
		{"street_address", nil, "fake address"},
		{"remarks", []string{"call me"}, "fake text"},
		{"blob", []string{"please write to a@b.example or call", "nothing here at all today"}, "fake text"},
		{"customer_id", []string{"4111 1111 1111 1111"}, "keep"},
		{"created_at", nil, "keep"},
		{"city", []string{"Lyon", "Porto"}, "keep"},
		{"total_cents", []string{"1234567", "2345678"}, "keep"},
	}
	var ps []Proposal
	for _, c := range cases {
		p := Propose(Column{Table: "public.t", Name: c.name, Values: c.values})
		if p.Rule != c.want {
			t.Errorf("%s %q: proposed %q (%s), want %q", c.name, c.values, p.Rule, p.Reason, c.want)
		}
		ps = append(ps, p)
	}
	ps = append(ps, Proposal{Column: Column{Table: "public.we\"ird é", Name: "a b: c"}, Rule: "keep", Class: None, Reason: "x"})
	var b bytes.Buffer
	if err := WriteRules(&b, "abcd", ps); err != nil {
		t.Fatal(err)
	}
	r, err := mask.Parse("w.yaml", b.Bytes())
	if err != nil {
		t.Fatalf("the written rules do not parse: %v\n%s", err, b.String())
	}
	if got, ok := r.Lookup("public.t", "mobile"); !ok || got.String() != "fake phone" {
		t.Fatalf("written rule for mobile: %v %v", got, ok)
	}
}
