package mask

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/pseudonyms.golden from this code (only when a pseudonym is meant to change: it never should)")

// goldenRules are the rules whose pseudonyms testdata/pseudonyms.golden
// pins: every kind, and unique columns, whose collisions re-derive.
var goldenRules = []Rule{
	{Action: Hash}, {Action: KeepDomain}, {Action: ShiftDate, Days: 30}, {Action: Redact}, {Action: Null},
	{Action: Fake, Kind: Name}, {Action: Fake, Kind: FirstName}, {Action: Fake, Kind: LastName}, {Action: Fake, Kind: Email},
	{Action: Fake, Kind: Phone}, {Action: Fake, Kind: Address}, {Action: Fake, Kind: Card}, {Action: Fake, Kind: IBAN},
	{Action: Fake, Kind: DateOfBirth}, {Action: Fake, Kind: Text},
	{Action: Fake, Kind: Email, Unique: true}, {Action: Fake, Kind: Card, Unique: true}, {Action: Fake, Kind: LastName, Unique: true},
}

// goldenValue is the i-th input of a rule: values of the rule's shape, a
// few of them repeated (as names and cities repeat in a customer table).
func goldenValue(r Rule, i int) string {
	j := i
	if i%3 == 0 {
		j = i % 17
	}
	switch {
	case r.Action == ShiftDate, r.Kind == DateOfBirth:
		return fmt.Sprintf("19%02d-%02d-%02d 10:00:00", 40+j%60, 1+j%12, 1+j%28)
	case r.Kind == Phone:
		return fmt.Sprintf("+44 20 7946 %04d", j)
	case r.Kind == Card:
		return fmt.Sprintf("5500-0000-%04d-0004", j)
	case r.Kind == IBAN:
		return fmt.Sprintf("DE89 3704 0044 0532 %04d 00", j)
	case r.Kind == Text:
		return fmt.Sprintf("Asked on the phone to send invoices to x%d@y.com instead; VIP since 20%02d.", j, j%30)
	}
	return fmt.Sprintf("ada.abbott.%d@mail.example.com", j)
}

// TestGolden pins the pseudonyms: the same input must give the same
// output in every release (next month's copy, trace), so any change to
// how they are computed must leave these unchanged. The file holds the
// first outputs of each rule and a digest of 3,000.
func TestGolden(t *testing.T) {
	var b strings.Builder
	m := NewMasker(testKey(7))
	for _, r := range goldenRules {
		c := m.Column("golden."+r.String(), r)
		h := sha256.New()
		for i := range 3000 {
			v := goldenValue(r, i)
			out, null, err := c.Mask(v)
			if r.Unique && r.Kind == LastName && err != nil {
				fmt.Fprintf(h, "%d error %v\n", i, err)
				break
			}
			if err != nil {
				t.Fatalf("%s(%q): %v", r, v, err)
			}
			fmt.Fprintf(h, "%q %v\n", out, null)
			if i < 4 {
				fmt.Fprintf(&b, "%s\t%q\t%q\t%v\n", r, v, out, null)
			}
		}
		fmt.Fprintf(&b, "%s\tsha256 of 3000\t%s\n", r, hex.EncodeToString(h.Sum(nil)))
	}
	const path = "testdata/pseudonyms.golden"
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (make it once with go test -run TestGolden -update)", err)
	}
	if got := b.String(); got != string(want) {
		t.Fatalf("pseudonyms changed: a masked copy would no longer match last month's, nor trace:\ngot:\n%s\nwant:\n%s", got, want)
	}
}
