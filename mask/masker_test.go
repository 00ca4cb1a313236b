package mask

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"testing"
)

func testKey(b byte) Key {
	var k Key
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func mask1(t *testing.T, m *Masker, r Rule, v string) string {
	t.Helper()
	out, null, err := m.Column("t.c", r).Mask(v)
	if err != nil || null {
		t.Fatalf("%s(%q): %q %v %v", r, v, out, null, err)
	}
	return out
}

func TestFormats(t *testing.T) {
	m := NewMasker(testKey(1))
	digits := regexp.MustCompile(`[0-9]`)
	for i := range 500 {
		email := fmt.Sprintf("ada.abbott.%d@mail.example.com", i)
		e := mask1(t, m, Rule{Action: Fake, Kind: Email}, email)
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e || strings.Contains(e, "abbott") {
			t.Fatalf("fake email %q of %q: %v", e, email, err)
		}
		kd := mask1(t, m, Rule{Action: KeepDomain}, email)
		if !strings.HasSuffix(kd, "@mail.example.com") || strings.HasPrefix(kd, "ada.abbott") {
			t.Fatalf("keep_domain %q of %q", kd, email)
		}
		phone := fmt.Sprintf("+44 20 7946 %04d", i)
		p := mask1(t, m, Rule{Action: Fake, Kind: Phone}, phone)
		if digits.ReplaceAllString(p, "9") != digits.ReplaceAllString(phone, "9") || !strings.HasPrefix(p, "+44 2") || p == phone {
			t.Fatalf("fake phone %q of %q does not keep its shape", p, phone)
		}
		card := fmt.Sprintf("5500-0000-%04d-0004", i)
		c := mask1(t, m, Rule{Action: Fake, Kind: Card}, card)
		if !Luhn(c) || !strings.HasPrefix(c, "4000-00") || len(c) != len(card) {
			t.Fatalf("fake card %q of %q", c, card)
		}
		iban := "DE89 3704 0044 0532 0130 00"
		ib := mask1(t, m, Rule{Action: Fake, Kind: IBAN}, fmt.Sprintf("%s%d", iban[:len(iban)-1], i%10))
		if !IBANValid(ib) || !strings.HasPrefix(ib, "DE") || len(ib) != len(iban) {
			t.Fatalf("fake IBAN %q", ib)
		}
		d := mask1(t, m, Rule{Action: ShiftDate, Days: 30}, "1980-02-29 10:00:00")
		if !strings.HasSuffix(d, " 10:00:00") || d[:10] < "1980-01-29" || d[:10] > "1980-03-30" || d[:10] == "1980-02-29" {
			t.Fatalf("shift_date 30 of 1980-02-29: %q", d)
		}
	}
	if !IBANValid("DE89 3704 0044 0532 0130 00") || IBANValid("DE88 3704 0044 0532 0130 00") {
		t.Fatal("IBANValid is wrong on the ISO example")
	}
	if !Luhn("4111 1111 1111 1111") || Luhn("4111 1111 1111 1112") {
		t.Fatal("Luhn is wrong")
	}
}

// The same value gives the same pseudonym in every column of the same
// kind and under the same key; another key gives another.
func TestDeterministic(t *testing.T) {
	r := Rule{Action: Fake, Kind: Email}
	a := mask1(t, NewMasker(testKey(1)), r, "x@y.org")
	b := NewMasker(testKey(1)).Column("other.table", r)
	if got, _, _ := b.Mask("x@y.org"); got != a {
		t.Fatalf("%q then %q", a, got)
	}
	if c := mask1(t, NewMasker(testKey(2)), r, "x@y.org"); c == a {
		t.Fatal("two keys gave the same pseudonym")
	}
	if n := mask1(t, NewMasker(testKey(1)), Rule{Action: Fake, Kind: Name}, "x@y.org"); strings.Contains(a, strings.ToLower(strings.Fields(n)[0])+".") && strings.HasSuffix(a, strings.ToLower(strings.Fields(n)[1])) {
		t.Fatal("kinds share outputs")
	}
}

// A unique column keeps its pseudonyms unique, and says so when the kind
// cannot tell its values apart.
func TestUnique(t *testing.T) {
	m := NewMasker(testKey(3))
	c := m.Column("t.c", Rule{Action: Fake, Kind: Card, Unique: true})
	seen := map[string]string{}
	for i := range 20000 {
		v := fmt.Sprintf("4111%012d", i)
		out, _, err := c.Mask(v)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[out]; ok && prev != v {
			t.Fatalf("%q and %q both became %q", prev, v, out)
		}
		seen[out] = v
		if again, _, _ := c.Mask(v); again != out {
			t.Fatalf("%q masked twice: %q, %q", v, out, again)
		}
	}
	small := m.Column("t.first", Rule{Action: Fake, Kind: FirstName, Unique: true})
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		_, _, err = small.Mask(fmt.Sprint("name", i))
	}
	if err == nil || !strings.Contains(err.Error(), "use hash") {
		t.Fatalf("200 unique first names into %d: %v", len(words.first), err)
	}
}

func TestRecognise(t *testing.T) {
	m := NewMasker(testKey(4))
	for _, c := range []struct {
		r Rule
		v string
	}{{Rule{Action: Fake, Kind: Email}, "a@b.c"}, {Rule{Action: KeepDomain}, "a@corp.example"},
		{Rule{Action: Fake, Kind: Phone}, "+1-555-1234-5678"}, {Rule{Action: Fake, Kind: Card}, "5500 0000 0000 0004"}} {
		out := mask1(t, m, c.r, c.v)
		if k, ok := m.Recognise(out); !ok {
			t.Errorf("%s of %q = %q not recognised (%s)", c.r, c.v, out, k)
		}
		if _, ok := NewMasker(testKey(5)).Recognise(out); ok && c.r.Kind == Email {
			t.Errorf("%q recognised under another key", out)
		}
	}
	// Originals are not pseudonyms, except by the documented chance.
	hits := 0
	for i := range 1000 {
		if _, ok := m.Recognise(fmt.Sprintf("ada.abbott.%d@example.com", i)); ok {
			hits++
		}
	}
	if hits > 2 {
		t.Errorf("%d of 1000 real e-mails recognised as pseudonyms", hits)
	}
}

func TestNullRedact(t *testing.T) {
	m := NewMasker(testKey(1))
	if _, null, _ := m.Column("t.c", Rule{Action: Null}).Mask("secret"); !null {
		t.Fatal("null is not NULL")
	}
	if out := mask1(t, m, Rule{Action: Redact}, "secret"); out != Redacted {
		t.Fatal(out)
	}
	if _, _, err := m.Column("t.c", Rule{Action: ShiftDate, Days: 3}).Mask("yesterday"); err == nil || !strings.Contains(err.Error(), "t.c") {
		t.Fatalf("shift_date of a non-date: %v", err)
	}
}

// The memo of repeated values changes no pseudonym: a column whose values
// repeat uses it, one whose values do not stops, and both give what a
// Masker gives a value it has never seen.
func TestMemo(t *testing.T) {
	m := NewMasker(testKey(5))
	r := Rule{Action: Fake, Kind: Phone}
	repeats, distinct := m.Column("t.a", r), m.Fork().Column("t.b", r)
	ref := NewMasker(testKey(5)).Column("ref", r)
	ref.noMemo = true // derives every value
	for i := range 2 * memoTrial {
		for _, c := range []struct {
			col *Column
			v   string
		}{{repeats, fmt.Sprintf("+44 20 7946 %04d", i%50)}, {distinct, fmt.Sprintf("+44 20 %08d", i)}} {
			got, _, err := c.col.Mask(c.v)
			if want, _, _ := ref.Mask(c.v); err != nil || got != want {
				t.Fatalf("%s(%q) = %q, %v; want %q", c.col.name, c.v, got, err, want)
			}
		}
	}
	if repeats.noMemo || !distinct.noMemo || repeats.found == 0 {
		t.Fatalf("memo: repeated values %v (%d hits), distinct values %v", !repeats.noMemo, repeats.found, !distinct.noMemo)
	}
}
