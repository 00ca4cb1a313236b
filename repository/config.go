package repository

import (
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// ChunkerParams are the content-defined chunking parameters.
type ChunkerParams struct {
	Min     uint `json:"min"`
	AvgBits int  `json:"avg_bits"`
	Max     uint `json:"max"`
}

// DefaultChunker is a 64 KiB average between 16 KiB and 256 KiB (see
// docs/format.md, "Choosing the chunk size").
var DefaultChunker = ChunkerParams{Min: 16 << 10, AvgBits: 16, Max: 256 << 10}

// DefaultPackSize is the target plaintext size of a pack.
const DefaultPackSize = 16 << 20

// Config is the repository's `config` object.
type Config struct {
	Version     int           `json:"version"`
	ID          string        `json:"id"`
	Created     time.Time     `json:"created"`
	Recipient   string        `json:"recipient"`
	Operators   []string      `json:"operators"`
	Chunker     ChunkerParams `json:"chunker"`
	PackSize    int           `json:"pack_size"`
	Compression string        `json:"compression"`
	Lock        *ObjectLock   `json:"lock,omitempty"`
	// Generation numbers the repository's keys: 1 (written as absent)
	// until the first `coffer key rotate`, then one more per rotation.
	Generation int `json:"generation,omitempty"`
	// Previous lists the earlier generations whose keys are still stored
	// because packs or private parts encrypted to them remain.
	Previous []int `json:"previous,omitempty"`
	// Carried names the list of metadata objects that rotations carried
	// over from earlier generations' keys (see rotate.go).
	Carried *CarriedRef `json:"carried,omitempty"`
	MAC     string      `json:"mac"`
}

// CarriedRef names a carried list by the SHA-256 of its plaintext.
type CarriedRef struct {
	Object string `json:"object"` // keys/carried-SHA256
	SHA256 string `json:"sha256"`
	// Pending is set while the objects the list names are being sealed
	// again: some may still be sealed to an earlier generation's key.
	Pending bool `json:"pending,omitempty"`
}

// Gen returns the generation of the repository's keys (1 before any
// rotation).
func (c *Config) Gen() int {
	if c.Generation < 1 {
		return 1
	}
	return c.Generation
}

// ObjectLock is the repository's S3 Object Lock policy: every stored object
// is retained Days days from when it was last written or reused.
type ObjectLock struct {
	Mode string `json:"mode"` // "governance" or "compliance"
	Days int    `json:"days"`
}

// Validate checks the policy's values.
func (l *ObjectLock) Validate() error {
	if l.Mode != "governance" && l.Mode != "compliance" {
		return fmt.Errorf("object lock mode %q: use governance or compliance", l.Mode)
	}
	if l.Days < 1 || l.Days > 36500 {
		return fmt.Errorf("object lock days %d: give between 1 and 36500", l.Days)
	}
	return nil
}

func (c *Config) computeMAC(wk *WriterKey) string {
	cp := *c
	cp.MAC = ""
	b, _ := json.Marshal(&cp)
	m := hmacSHA256(wk.MACKey[:])
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// Validate checks the config's parameters and that wk authenticates it.
func (c *Config) Validate(wk *WriterKey) error {
	if c.ID != wk.RepositoryID {
		return fmt.Errorf("the writer key belongs to repository %s, this repository is %s: use this repository's writer key", wk.RepositoryID, c.ID)
	}
	if !hmac.Equal([]byte(c.MAC), []byte(c.computeMAC(wk))) {
		if c.Gen() > 1 && c.Recipient != wk.Recipient.String() {
			return &RotatedError{Repository: c.ID, Generation: c.Gen(), Fingerprint: wk.Fingerprint()}
		}
		return &CorruptError{Object: "config", Reason: "not authenticated by the writer key (altered)"}
	}
	if c.Recipient != wk.Recipient.String() {
		return &CorruptError{Object: "config", Reason: "its recipient is not the writer key's"}
	}
	if err := c.validateGenerations(); err != nil {
		return err
	}
	p := c.Chunker
	if p.AvgBits < 10 || p.AvgBits > 22 || p.Min < 512 || p.Max <= p.Min || p.Max > 8<<20 || c.PackSize < 1<<20 || c.PackSize > 1<<30 {
		return &CorruptError{Object: "config", Reason: "chunker or pack parameters out of range"}
	}
	if c.Lock != nil {
		if err := c.Lock.Validate(); err != nil {
			return &CorruptError{Object: "config", Reason: err.Error()}
		}
	}
	if c.Compression != "zstd" {
		return &CorruptError{Object: "config", Reason: fmt.Sprintf("unknown compression %q", c.Compression)}
	}
	return nil
}

// ParseConfig decodes the `config` object, refusing unknown versions before
// anything else.
func ParseConfig(data []byte) (*Config, error) {
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, &CorruptError{Object: "config", Reason: "not valid JSON", Err: err}
	}
	if v.Version != FormatVersion {
		if v.Version > FormatVersion {
			return nil, &UnsupportedVersionError{Object: "config", Version: v.Version}
		}
		return nil, &CorruptError{Object: "config", Reason: fmt.Sprintf("invalid format version %d", v.Version)}
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, &CorruptError{Object: "config", Reason: "malformed", Err: err}
	}
	return &c, nil
}

func (c *Config) validateGenerations() error {
	bad := func(reason string) error { return &CorruptError{Object: "config", Reason: reason} }
	if c.Generation < 0 || c.Generation == 1 || c.Generation > 1<<20 {
		return bad(fmt.Sprintf("generation %d is out of range", c.Generation))
	}
	last := 0
	for _, g := range c.Previous {
		if g <= last || g >= c.Gen() {
			return bad("previous generations are not increasing and below the current one")
		}
		last = g
	}
	if r := c.Carried; r != nil && (len(r.SHA256) != 64 || r.Object != carriedObject(r.SHA256)) {
		return bad("the carried list is named wrongly")
	}
	return nil
}

// RotatedError reports a writer key of a generation before the
// repository's: an operator rotated the keys, and this host still has the
// old writer key.
type RotatedError struct {
	Repository  string
	Generation  int
	Fingerprint string // of the key in use
}

func (e *RotatedError) Error() string {
	return fmt.Sprintf("the keys of repository %s were rotated (generation %d) and this writer key (fingerprint %s) is of an earlier generation, or config was altered: "+
		"install the new writer key that `coffer key rotate` wrote (an operator can write it again with `coffer key export-writer FILE`) and point COFFER_WRITER_KEY_FILE at it",
		e.Repository, e.Generation, e.Fingerprint)
}
