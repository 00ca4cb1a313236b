// Package agekeys reads operators' age identities and recipients: native
// X25519 and post-quantum hybrid keys, plugin keys (hardware tokens), and
// passphrase-protected identity files.
package agekeys

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"filippo.io/age/plugin"
)

// Passphrase is asked for when an identity file is passphrase-protected.
type Passphrase func() (string, error)

// LoadIdentities reads an identity file: one identity per line (comments
// with #), or an age file encrypted with a passphrase that contains one.
func LoadIdentities(path string, passphrase Passphrase, ui *plugin.ClientUI) ([]age.Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	if isEncrypted(data) {
		if passphrase == nil {
			return nil, fmt.Errorf("identity file %s is passphrase-protected: set COFFER_IDENTITY_PASSPHRASE_FILE or run on a terminal", path)
		}
		if data, err = decryptWithPassphrase(data, passphrase); err != nil {
			return nil, fmt.Errorf("identity file %s: %w", path, err)
		}
	}
	ids, err := ParseIdentities(data, ui)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return ids, nil
}

func isEncrypted(data []byte) bool {
	return bytes.HasPrefix(data, []byte("age-encryption.org/")) || bytes.HasPrefix(bytes.TrimSpace(data), []byte(armor.Header))
}

func decryptWithPassphrase(data []byte, passphrase Passphrase) ([]byte, error) {
	pass, err := passphrase()
	if err != nil {
		return nil, err
	}
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, err
	}
	var src io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte(armor.Header)) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, id)
	if err != nil {
		return nil, fmt.Errorf("wrong passphrase, or not a passphrase-protected identity file: %w", err)
	}
	return io.ReadAll(r)
}

// ParseIdentities parses identity lines. Errors never include key material.
func ParseIdentities(data []byte, ui *plugin.ClientUI) ([]age.Identity, error) {
	var ids []age.Identity
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var id age.Identity
		var err error
		switch {
		case strings.HasPrefix(line, "AGE-PLUGIN-"):
			id, err = plugin.NewIdentity(line, ui)
		default:
			var parsed []age.Identity
			parsed, err = age.ParseIdentities(strings.NewReader(line))
			if err == nil {
				id = parsed[0]
			}
		}
		if err != nil {
			return nil, fmt.Errorf("line %d is not an age identity", n)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no identity found")
	}
	return ids, nil
}

// ParseRecipient parses one recipient: age1… (X25519), age1pq1… (hybrid) or
// age1NAME1… (a plugin).
func ParseRecipient(s string, ui *plugin.ClientUI) (age.Recipient, error) {
	s = strings.TrimSpace(s)
	if u := strings.ToUpper(s); strings.HasPrefix(u, "AGE-SECRET-KEY") || strings.HasPrefix(u, "AGE-PLUGIN-") {
		// Never echo a secret key into an error (and so into logs).
		return nil, errors.New("an age identity (secret key) was given, not a recipient: give its public key, age1… (age-keygen -y prints it)")
	}
	if strings.HasPrefix(s, "age1") && !strings.HasPrefix(s, "age1pq1") && strings.Count(s, "1") > 1 {
		if r, err := plugin.NewRecipient(s, ui); err == nil {
			return r, nil
		}
	}
	rs, err := age.ParseRecipients(strings.NewReader(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not an age recipient (age1…)", s)
	}
	return rs[0], nil
}

// ReadRecipientsFile reads one recipient per line, with # comments.
func ReadRecipientsFile(path string, ui *plugin.ClientUI) ([]age.Recipient, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("recipients file: %w", err)
	}
	var rs []age.Recipient
	var names []string
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := ParseRecipient(line, ui)
		if err != nil {
			return nil, nil, fmt.Errorf("recipients file %s line %d: %w", path, n+1, err)
		}
		rs = append(rs, r)
		names = append(names, line)
	}
	if len(rs) == 0 {
		return nil, nil, fmt.Errorf("recipients file %s has no recipient", path)
	}
	return rs, names, nil
}
