package mask

import (
	"fmt"
	"strings"
	"time"
)

const base36 = "0123456789abcdefghijklmnopqrstuvwxyz"

// fakeDomains are reserved for documentation (RFC 2606): mail to them goes
// nowhere.
var fakeDomains = []string{"example.com", "example.net", "example.org"}

// cardPrefix is the issuer prefix of fake cards: the 400000 range that
// payment processors document as test cards.
const cardPrefix = "400000"

func pick(s *stream, list []string) string { return list[s.intn(len(list))] }

func fakeName(s *stream) string { return pick(s, words.first) + " " + pick(s, words.last) }

// appendLocal makes an e-mail local part: first.last. and six random
// base-36 characters, then three that tag it as coffer's (see
// Masker.Recognise). It is made in m's scratch buffer, after the prefix of
// its tag's input, and valid until the next call.
func (m *Masker) appendLocal(s *stream) []byte {
	b := append(m.scratch[:0], emailTagPrefix...)
	b = append(b, pick(s, words.lowerFirst)...)
	b = append(b, '.')
	b = append(b, pick(s, words.lowerLast)...)
	b = append(b, '.')
	for range 6 {
		b = append(b, base36[s.intn(36)])
	}
	t := m.tag.sum(b)
	b = append(b, base36[int(t[0])%36], base36[int(t[1])%36], base36[int(t[2])%36])
	m.scratch = b
	return b[len(emailTagPrefix):]
}

const emailTagPrefix = "email\x00"

func (m *Masker) emailTag(body string) string {
	t := m.tag.sum([]byte(emailTagPrefix + body))
	return string([]byte{base36[int(t[0])%36], base36[int(t[1])%36], base36[int(t[2])%36]})
}

func (m *Masker) fakeEmail(s *stream) string {
	local := m.appendLocal(s)
	return string(local) + "@" + pick(s, fakeDomains)
}

// keepDomain replaces the local part of an e-mail and keeps its domain; a
// value with no @ becomes a whole fake e-mail.
func (m *Masker) keepDomain(s *stream, orig string) string {
	i := strings.LastIndexByte(orig, '@')
	if i < 0 {
		return m.fakeEmail(s)
	}
	return string(m.appendLocal(s)) + orig[i:]
}

// fakePhone keeps the shape of a phone number (its separators, its length,
// its country code and the first digit after it) and replaces the other
// digits; the last two tag it as coffer's.
func (m *Masker) fakePhone(s *stream, orig string) string {
	out := []byte(orig)
	pos := make([]int, 0, 24)
	for i := range out {
		if out[i] >= '0' && out[i] <= '9' {
			pos = append(pos, i)
		}
	}
	keep := phoneKept(orig, pos)
	if len(pos)-keep < 4 {
		for _, p := range pos[keep:] {
			out[p] = '0' + byte(s.intn(10))
		}
		return string(out)
	}
	for _, p := range pos[keep : len(pos)-2] {
		out[p] = '0' + byte(s.intn(10))
	}
	t := m.phoneTag(out, pos)
	out[pos[len(pos)-2]], out[pos[len(pos)-1]] = '0'+byte(t/10), '0'+byte(t%10)
	return string(out)
}

// phoneKept is how many leading digits a fake phone keeps: a +country code
// (the digits before the first separator) and one more.
func phoneKept(orig string, pos []int) int {
	if len(pos) < 7 {
		return 0
	}
	keep := 1
	if strings.HasPrefix(orig, "+") {
		keep = 0
		for keep < len(pos) && pos[keep] == keep+1 && keep < 3 {
			keep++
		}
		keep++
	}
	return keep
}

// phoneTag is the two tag digits of a phone number: a keyed function of
// its other digits.
func (m *Masker) phoneTag(out []byte, pos []int) int {
	d := append(m.scratch[:0], "phone\x00"...)
	for _, p := range pos[:len(pos)-2] {
		d = append(d, out[p])
	}
	m.scratch = d
	t := m.tag.sum(d)
	return (int(t[0])<<8 | int(t[1])) % 100
}

// fakeCard is a card number in the test range, as long as the original
// (16 digits when that is not a card length), with its separators, a tag
// digit before the Luhn check digit, and a valid check digit.
func (m *Masker) fakeCard(s *stream, orig string) string {
	pos := make([]int, 0, 24)
	for i := 0; i < len(orig); i++ {
		if orig[i] >= '0' && orig[i] <= '9' {
			pos = append(pos, i)
		}
	}
	n := len(pos)
	if n < 13 || n > 19 {
		orig, pos, n = "0000000000000000", nil, 16
		for i := range 16 {
			pos = append(pos, i)
		}
	}
	d := append(make([]byte, 0, 24), cardPrefix...)
	for len(d) < n-2 {
		d = append(d, '0'+byte(s.intn(10)))
	}
	m.scratch = append(append(m.scratch[:0], "card\x00"...), d...)
	d = append(d, '0'+byte(m.tag.sum(m.scratch)[0]%10))
	d = append(d, luhnDigit(d))
	out := []byte(orig)
	for i, p := range pos {
		out[p] = d[i]
	}
	return string(out)
}

// luhnDigit is the check digit that makes digits+check pass Luhn.
func luhnDigit(digits []byte) byte {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		v := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return '0' + byte((10-sum%10)%10)
}

// Luhn reports whether a string of digits (separators ignored) passes the
// Luhn check.
func Luhn(s string) bool {
	var d []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			d = append(d, c)
		case c == ' ' || c == '-':
		default:
			return false
		}
	}
	if len(d) < 12 {
		return false
	}
	return luhnDigit(d[:len(d)-1]) == d[len(d)-1]
}

// fakeIBAN keeps an IBAN's country and shape (digits stay digits, letters
// letters, spaces where they were) and computes valid check digits.
func fakeIBAN(s *stream, orig string) string {
	o := strings.ToUpper(orig)
	country := "DE"
	if len(o) >= 2 && isUpper(o[0]) && isUpper(o[1]) {
		country = o[:2]
	}
	var bban []byte
	rest := ""
	if len(o) > 4 {
		rest = o[4:]
	}
	if strings.TrimSpace(rest) == "" {
		rest = "0000 0000 0000 0000 00"
	}
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case isUpper(c):
			bban = append(bban, 'A'+byte(s.intn(26)))
		case c >= '0' && c <= '9':
			bban = append(bban, '0'+byte(s.intn(10)))
		default:
			bban = append(bban, c)
		}
	}
	return country + ibanCheck(country, string(bban)) + string(bban)
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// ibanCheck computes the two check digits of an IBAN (ISO 13616, mod 97).
func ibanCheck(country, bban string) string {
	rem := 0
	add := func(c byte) {
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case isUpper(c):
			v := int(c-'A') + 10
			rem = (rem*100 + v) % 97
		}
	}
	for i := 0; i < len(bban); i++ {
		add(bban[i])
	}
	for _, c := range []byte(country + "00") {
		add(c)
	}
	return fmt.Sprintf("%02d", 98-rem)
}

// IBANValid reports whether s is an IBAN with valid check digits.
func IBANValid(s string) bool {
	s = strings.ToUpper(strings.ReplaceAll(s, " ", ""))
	if len(s) < 15 || len(s) > 34 || !isUpper(s[0]) || !isUpper(s[1]) {
		return false
	}
	for i := 2; i < len(s); i++ {
		if !(isUpper(s[i]) || s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	return ibanCheck(s[:2], s[4:]) == s[2:4]
}

const dateLayout = "2006-01-02"

// fakeBirth is a date of birth between 1940 and 2005, in the original's
// layout when it starts with a date (a time after it is kept).
func fakeBirth(s *stream, orig string) string {
	start := time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC)
	d := start.AddDate(0, 0, s.intn(66*365)).Format(dateLayout)
	if len(orig) >= 10 {
		if _, err := time.Parse(dateLayout, orig[:10]); err == nil {
			return d + orig[10:]
		}
	}
	return d
}

// shiftDate moves a date (or the date part of a timestamp) by a keyed
// offset of 1 to days days, earlier or later.
func shiftDate(s *stream, orig string, days int) (string, error) {
	if len(orig) < 10 {
		return "", fmt.Errorf("shift_date: %q is not a date (YYYY-MM-DD…)", truncate(orig, 40))
	}
	t, err := time.Parse(dateLayout, orig[:10])
	if err != nil {
		return "", fmt.Errorf("shift_date: %q is not a date (YYYY-MM-DD…)", truncate(orig, 40))
	}
	off := 1 + s.intn(days)
	if s.next()&1 == 0 {
		off = -off
	}
	return t.AddDate(0, 0, off).Format(dateLayout) + orig[10:], nil
}

// fakeText is lorem-ipsum words about as long as the original.
func fakeText(s *stream, orig string) string {
	n := min(max(len(orig)/7, 3), 60)
	w := make([]string, n)
	for i := range w {
		w[i] = pick(s, words.text)
	}
	w[0] = strings.ToUpper(w[0][:1]) + w[0][1:]
	return strings.Join(w, " ") + "."
}

func fakeAddress(s *stream) string {
	return fmt.Sprintf("%d %s", 1+s.intn(240), pick(s, words.streets))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
