package mask

import (
	"errors"
	"strings"
	"testing"
)

const goodRules = `version: 1
default: fail
canaries:
  table: public.customers
  domain: canary.example.net
  phone_prefix: "+1-555-0100"
tables:
  public.customers:
    id: keep
    name: fake name
    email: fake email unique
    phone: fake phone
    card: fake card
    born: shift_date 30
    work_email: keep_domain
    notes: redact
    ssn: hash
    fax: "null"
`

func TestParseGood(t *testing.T) {
	r, err := Parse("rules.yaml", []byte(goodRules))
	if err != nil {
		t.Fatal(err)
	}
	if r.Default != DefaultFail || r.Canaries == nil || r.Canaries.Domain != "canary.example.net" {
		t.Fatalf("parsed %+v", r)
	}
	want := map[string]string{"id": "keep", "name": "fake name", "email": "fake email unique", "phone": "fake phone",
		"card": "fake card", "born": "shift_date 30", "work_email": "keep_domain", "notes": "redact", "ssn": "hash", "fax": "null"}
	for col, s := range want {
		rule, ok := r.Lookup("public.customers", col)
		if !ok || rule.String() != s {
			t.Errorf("%s: got %v %q, want %q", col, ok, rule, s)
		}
	}
	if _, ok := r.Lookup("public.customers", "other"); ok {
		t.Error("an unnamed column was found")
	}
	err = r.Cover(map[string][]string{"public.customers": {"id", "email", "loyalty_tier"}, "public.orders": {"id"}})
	var ue *UncoveredError
	if !errors.As(err, &ue) || strings.Join(ue.Columns, ",") != "public.customers.loyalty_tier,public.orders.id" {
		t.Fatalf("Cover: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"unknown key", "default: keep\ntabels: {}\n", "r.yaml:2:1: unknown key \"tabels\""},
		{"bad default", "default: maybe\n", "r.yaml:1:10: default \"maybe\""},
		{"no default", "tables: {}\n", "r.yaml:1:1: no `default:`"},
		{"unknown rule", "default: keep\ntables:\n  t:\n    c: scramble\n", "r.yaml:4:8: column t.c: unknown rule \"scramble\""},
		{"unknown kind", "default: keep\ntables:\n  t:\n    c: fake ssn\n", "r.yaml:4:8: column t.c: fake needs one kind"},
		{"shift range", "default: keep\ntables:\n  t:\n    c: shift_date 0\n", "r.yaml:4:8: column t.c: shift_date needs"},
		{"shift missing", "default: keep\ntables:\n  t:\n    c: shift_date\n", "r.yaml:4:8: column t.c: shift_date needs"},
		{"keep arg", "default: keep\ntables:\n  t:\n    c: keep it\n", "r.yaml:4:8: column t.c: keep takes no argument"},
		{"duplicate column", "default: keep\ntables:\n  t:\n    c: keep\n    c: hash\n", "r.yaml:5:5: \"c\" appears twice"},
		{"duplicate table", "default: keep\ntables:\n  t: {}\n  t: {}\n", "r.yaml:4:3: \"t\" appears twice"},
		{"bad table", "default: keep\ntables:\n  a.b.c: {}\n", "r.yaml:3:3: table \"a.b.c\""},
		{"empty rule", "default: keep\ntables:\n  t:\n    c:\n", "r.yaml:4:7: column t.c: give a rule"},
		{"table not map", "default: keep\ntables:\n  t: keep\n", "r.yaml:3:6: table \"t\" must be a mapping"},
		{"canary domain", "default: keep\ncanaries:\n  table: t\n  domain: x\n  phone_prefix: '+1555'\n", "r.yaml:4:11: canaries.domain \"x\""},
		{"canary missing", "default: keep\ncanaries:\n  table: t\n", "r.yaml:3:3: canaries needs domain"},
		{"version", "version: 2\ndefault: keep\n", "r.yaml:1:10: version \"2\""},
		{"empty", "", "r.yaml: empty"},
		{"yaml", "default: [\n", "r.yaml: not valid YAML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("r.yaml", []byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodRules))
	f.Add([]byte("default: keep\ntables:\n  t:\n    c: fake email\n"))
	f.Add([]byte("default: fail\ntables: {a: {b: shift_date 9999999999999}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse("f.yaml", b)
		if err != nil {
			if r != nil {
				t.Fatal("rules and an error")
			}
			return
		}
		if r.Default != Keep && r.Default != DefaultFail {
			t.Fatalf("default %q accepted", r.Default)
		}
		for tn, cols := range r.Tables {
			for cn, rule := range cols {
				again, err := Parse("g.yaml", []byte("default: keep\ntables:\n  x:\n    y: "+rule.String()+"\n"))
				if err != nil {
					t.Fatalf("%s.%s: rule %q does not parse again: %v", tn, cn, rule, err)
				}
				if got, _ := again.Lookup("x", "y"); got.String() != rule.String() {
					t.Fatalf("%q parsed again as %q", rule, got)
				}
			}
		}
	})
}
