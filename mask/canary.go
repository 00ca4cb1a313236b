package mask

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Canary is a synthetic customer planted in one masked copy: its e-mail is
// under the operator's watched domain and its phone in the watched range,
// both random, so that a message to either names the copy it came from.
type Canary struct {
	First   string `json:"first_name"`
	Last    string `json:"last_name"`
	Email   string `json:"email"`
	Phone   string `json:"phone"`
	Address string `json:"address"`
}

// Name is the canary's full name.
func (c Canary) Name() string { return c.First + " " + c.Last }

func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic("mask: the system's random source failed: " + err.Error())
	}
	return int(v.Int64())
}

// NewCanaries makes n canaries under cfg, all different, and different
// from every canary of used (those planted in earlier copies): a canary
// that is in two copies could not name the one that leaked. E-mails and
// phones are compared as Matches compares them (case, digits).
func NewCanaries(cfg *Canaries, n int, used []Canary) ([]Canary, error) {
	out := make([]Canary, 0, n)
	seen := map[string]bool{}
	for _, c := range used {
		seen[strings.ToLower(c.Email)], seen[onlyDigits(c.Phone)] = true, true
	}
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000*n {
			return out, fmt.Errorf("mask: the phone range %q has no %d numbers left that no earlier copy holds (%d canaries planted so far): give a longer range (fewer fixed digits)", cfg.PhonePrefix, n, len(used))
		}
		c := Canary{First: words.first[randInt(len(words.first))], Last: words.last[randInt(len(words.last))]}
		var tag strings.Builder
		for range 6 {
			tag.WriteByte(base36[randInt(36)])
		}
		c.Email = strings.ToLower(c.First+"."+c.Last) + "." + tag.String() + "@" + cfg.Domain
		c.Phone = canaryPhone(cfg.PhonePrefix)
		c.Address = fmt.Sprintf("%d %s", 1+randInt(240), words.streets[randInt(len(words.streets))])
		email, phone := strings.ToLower(c.Email), onlyDigits(c.Phone)
		if seen[email] || seen[phone] {
			continue
		}
		seen[email], seen[phone] = true, true
		out = append(out, c)
	}
	return out, nil
}

// canaryPhone fills the prefix to 11 digits (a country code and a 10-digit
// number), or adds 3 digits to a longer prefix.
func canaryPhone(prefix string) string {
	digits := 0
	for _, c := range prefix {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	add := max(11-digits, 3)
	var b strings.Builder
	b.WriteString(prefix)
	if !strings.HasSuffix(prefix, "-") && !strings.HasSuffix(prefix, " ") {
		b.WriteByte('-')
	}
	for range add {
		b.WriteByte('0' + byte(randInt(10)))
	}
	return b.String()
}

// CanaryRecord is what the audit log keeps of the canaries of one copy,
// sealed under the masking key (SealRecord).
type CanaryRecord struct {
	For      string    `json:"for"`
	Target   string    `json:"target"`
	Snapshot string    `json:"snapshot"`
	Time     time.Time `json:"time"`
	Canaries []Canary  `json:"canaries"`
}

// recordKey is the key that seals canary records: derived from the
// masking key, which only operators can read, and which rotations carry.
func (k Key) recordKey() []byte { return k.derive("canary records").key }

// SealRecord encrypts and authenticates a canary record (AES-256-GCM under
// a key derived from the masking key), for the audit log.
func SealRecord(k Key, r *CanaryRecord) (string, error) {
	plain, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	block, _ := aes.NewCipher(k.recordKey())
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, plain, []byte("coffer canary record v1"))), nil
}

// OpenRecord decrypts a sealed canary record.
func OpenRecord(k Key, s string) (*CanaryRecord, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	block, _ := aes.NewCipher(k.recordKey())
	gcm, _ := cipher.NewGCM(block)
	if err != nil || len(b) < gcm.NonceSize() {
		return nil, errors.New("not a sealed canary record")
	}
	plain, err := gcm.Open(nil, b[:gcm.NonceSize()], b[gcm.NonceSize():], []byte("coffer canary record v1"))
	if err != nil {
		return nil, errors.New("the canary record does not open under this repository's masking key: altered, or sealed under another key")
	}
	var r CanaryRecord
	if err := json.Unmarshal(plain, &r); err != nil {
		return nil, fmt.Errorf("the canary record: %w", err)
	}
	return &r, nil
}

// Matches reports whether v is one of the canary's values: its e-mail (in
// any case), its phone (by digits) or its full name.
func (c Canary) Matches(v string) bool {
	v = strings.TrimSpace(v)
	switch {
	case strings.EqualFold(v, c.Email), strings.EqualFold(v, c.Name()):
		return true
	}
	d := onlyDigits(v)
	return len(d) >= 7 && d == onlyDigits(c.Phone)
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// CanaryCopy is a masked copy as trace reports it.
type CanaryCopy struct {
	For      string    `json:"for,omitempty"`
	Target   string    `json:"target"`
	Snapshot string    `json:"snapshot"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
}
