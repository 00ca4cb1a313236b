package mask

import (
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"strings"
)

// Redacted is what redact writes.
const Redacted = "REDACTED"

// maxAttempts bounds the re-derivations that keep a unique column's
// pseudonyms unique (each attempt collides with a chance far below 1 in a
// million for the kinds a unique column takes).
const maxAttempts = 64

// Masker applies rules under a masking key. One Masker serves one restore:
// the columns it hands out remember the pseudonyms of unique columns. A
// Masker and its columns are not safe for concurrent use.
type Masker struct {
	key  Key
	prfs map[string]*prf
	tag  *prf         // tags pseudonyms as coffer's (Recognise)
	seed maphash.Seed // of the hashes that keep unique columns unique
	// scratch is where pseudonyms are made before they become strings.
	scratch []byte
}

// NewMasker returns a Masker under key k.
func NewMasker(k Key) *Masker {
	return &Masker{key: k, prfs: map[string]*prf{}, tag: k.derive("tag"), seed: maphash.MakeSeed()}
}

// Fork returns a Masker under the same key with state of its own, for
// another goroutine: a value's pseudonym is the same from either. A
// unique column's pseudonyms stay unique only among the values one Column
// masked, so each column is masked by one Column, on one goroutine.
func (m *Masker) Fork() *Masker { return NewMasker(m.key) }

func (m *Masker) prf(purpose string) *prf {
	p, ok := m.prfs[purpose]
	if !ok {
		p = m.key.derive(purpose)
		m.prfs[purpose] = p
	}
	return p
}

// Column masks the values of one column. It is not safe for concurrent use.
type Column struct {
	m    *Masker
	name string // table.column, for errors
	rule Rule
	prf  *prf
	seen map[uint64]uint64 // with Rule.Unique: pseudonym → original, by hash

	looked, found int  // memo look-ups and hits, in the first memoTrial
	noMemo        bool // the column's values do not repeat enough
}

// memoTrial is how many values of a column tell whether they repeat
// enough for the memo to pay (a hit in memoPays of them): a column of
// e-mails or card numbers then skips it.
const (
	memoTrial = 8192
	memoPays  = 8
)

// Column returns the masker of a column under rule r.
func (m *Masker) Column(name string, r Rule) *Column {
	c := &Column{m: m, name: name, rule: r, prf: m.prf(purpose(r))}
	if r.Unique {
		c.seen = map[uint64]uint64{}
	}
	return c
}

// purpose is the key a rule's pseudonyms are derived under: one per kind,
// so that the same e-mail gives the same pseudonym in every table whatever
// the column is called, and a name and an e-mail never share outputs.
func purpose(r Rule) string {
	switch r.Action {
	case Fake:
		return "fake/" + string(r.Kind)
	case ShiftDate:
		return fmt.Sprintf("shift_date/%d", r.Days)
	}
	return string(r.Action)
}

// Rule is the column's rule.
func (c *Column) Rule() Rule { return c.rule }

// Mask returns the masked form of a non-NULL value v; null is true when the
// result is NULL. An empty value stays empty (it reveals nothing).
func (c *Column) Mask(v string) (out string, null bool, err error) {
	switch c.rule.Action {
	case Keep:
		return v, false, nil
	case Null:
		return "", true, nil
	case Redact:
		return Redacted, false, nil
	}
	if v == "" {
		return "", false, nil
	}
	if c.seen == nil && !c.noMemo {
		return c.memoized(v)
	}
	out, err = c.pseudonym(v)
	return out, false, err
}

// memoized is the pseudonym of v in a column that is not unique, where it
// depends on v alone: remembered for values that repeat.
func (c *Column) memoized(v string) (string, bool, error) {
	if c.prf.memo == nil {
		c.prf.memo = newMemo()
	}
	out, h, ok := c.prf.memo.get(v)
	if c.looked < memoTrial {
		c.looked++
		if ok {
			c.found++
		}
		c.noMemo = c.looked == memoTrial && c.found*memoPays < memoTrial
	}
	if ok {
		return out, false, nil
	}
	out, err := c.pseudonym(v)
	if err != nil {
		return "", false, err
	}
	c.prf.memo.put(v, h, out)
	return out, false, nil
}

// pseudonym derives v's pseudonym: the first attempt that differs from v
// and, in a unique column, from the other values' pseudonyms.
func (c *Column) pseudonym(v string) (string, error) {
	for attempt := range maxAttempts {
		out, err := c.derive(v, attempt)
		if err != nil {
			return "", fmt.Errorf("column %s: %w", c.name, err)
		}
		if out == v || !c.unique(out, v) {
			continue
		}
		return out, nil
	}
	return "", fmt.Errorf("column %s: no unique pseudonym for a value after %d attempts: the column holds more distinct values than the %s rule can tell apart; use hash", c.name, maxAttempts, c.rule)
}

// unique records out as v's pseudonym in a unique column; false when out
// is already another value's.
func (c *Column) unique(out, v string) bool {
	if c.seen == nil {
		return true
	}
	ho, hv := maphash.String(c.m.seed, out), maphash.String(c.m.seed, v)
	if prev, ok := c.seen[ho]; ok {
		return prev == hv
	}
	c.seen[ho] = hv
	return true
}

func (c *Column) derive(v string, attempt int) (string, error) {
	if c.rule.Action == Hash {
		c.prf.in = append(append(c.prf.in[:0], v...), 0, byte(attempt))
		return hex.EncodeToString(c.prf.sum(c.prf.in)[:16]), nil
	}
	s := c.prf.stream(v, attempt)
	m := c.m
	switch c.rule.Action {
	case KeepDomain:
		return m.keepDomain(s, v), nil
	case ShiftDate:
		return shiftDate(s, v, c.rule.Days)
	}
	switch c.rule.Kind {
	case Name:
		return fakeName(s), nil
	case FirstName:
		return pick(s, words.first), nil
	case LastName:
		return pick(s, words.last), nil
	case Email:
		return m.fakeEmail(s), nil
	case Phone:
		return m.fakePhone(s, v), nil
	case Address:
		return fakeAddress(s), nil
	case Card:
		return m.fakeCard(s, v), nil
	case IBAN:
		return fakeIBAN(s, v), nil
	case DateOfBirth:
		return fakeBirth(s, v), nil
	case Text:
		return fakeText(s, v), nil
	}
	return "", fmt.Errorf("rule %s is not one coffer applies", c.rule)
}

// Recognise reports whether v is, by its keyed tag, a pseudonym this key
// made, and of which kind: e-mails (1 chance in 46,656 that another value
// carries a matching tag), card numbers (1 in 10 among test-range cards)
// and phone numbers (1 in 100). Names, addresses and text carry no tag.
func (m *Masker) Recognise(v string) (Kind, bool) {
	v = strings.TrimSpace(v)
	if i := strings.LastIndexByte(v, '@'); i > 0 {
		local := strings.ToLower(v[:i])
		j := strings.LastIndexByte(local, '.')
		if j < 0 || len(local)-j-1 != 9 {
			return "", false
		}
		return Email, m.emailTag(local[:len(local)-3]) == local[len(local)-3:]
	}
	var pos []int
	for i := 0; i < len(v); i++ {
		if v[i] >= '0' && v[i] <= '9' {
			pos = append(pos, i)
		} else if !strings.ContainsRune("+-() .", rune(v[i])) {
			return "", false
		}
	}
	digits := make([]byte, len(pos))
	for i, p := range pos {
		digits[i] = v[p]
	}
	if len(pos) >= 13 && strings.HasPrefix(string(digits), cardPrefix) && Luhn(string(digits)) {
		d := digits[:len(digits)-2]
		return Card, m.tag.sum(append([]byte("card\x00"), d...))[0]%10 == digits[len(digits)-2]-'0'
	}
	if len(pos) >= 7 && len(pos)-phoneKept(v, pos) >= 4 {
		t := m.phoneTag([]byte(v), pos)
		return Phone, int(digits[len(digits)-2]-'0')*10+int(digits[len(digits)-1]-'0') == t
	}
	return "", false
}
