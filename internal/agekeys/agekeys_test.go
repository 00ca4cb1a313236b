package agekeys_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
	"filippo.io/age/plugin"

	"github.com/coffer-backup/coffer/internal/agekeys"
)

// keygen runs the real age-keygen and returns the identity file's text
// and its public key.
func keygen(t *testing.T) (text, recipient string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.txt")
	out, err := exec.Command("age-keygen", "-o", path).CombinedOutput()
	if err != nil {
		t.Fatalf("age-keygen: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if pk, ok := strings.CutPrefix(line, "# public key: "); ok {
			return string(b), strings.TrimSpace(pk)
		}
	}
	t.Fatalf("age-keygen wrote no public key comment:\n%s", b)
	return "", ""
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ageEncrypt encrypts msg with the real age CLI to recipient.
func ageEncrypt(t *testing.T, recipient, msg string) []byte {
	t.Helper()
	cmd := exec.Command("age", "-r", recipient)
	cmd.Stdin = strings.NewReader(msg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("age -r: %v\n%s", err, stderr.String())
	}
	return out
}

// mustDecrypt decrypts ct with ids and checks it is msg.
func mustDecrypt(t *testing.T, ct []byte, msg string, ids ...age.Identity) {
	t.Helper()
	r, err := age.Decrypt(bytes.NewReader(ct), ids...)
	if err != nil {
		t.Fatalf("decrypt with the loaded identities: %v", err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != msg {
		t.Fatalf("decrypted %q, %v; want %q", got, err, msg)
	}
}

func fixed(pass string) agekeys.Passphrase {
	return func() (string, error) { return pass, nil }
}

// noPassphrase fails the test if asked: plain files need none.
func noPassphrase(t *testing.T) agekeys.Passphrase {
	return func() (string, error) {
		t.Error("asked for a passphrase for a plain identity file")
		return "", errors.New("no passphrase here")
	}
}

func TestLoadIdentitiesKeygen(t *testing.T) {
	text, pub := keygen(t)
	path := writeFile(t, "id.txt", []byte(text))
	ids, err := agekeys.LoadIdentities(path, noPassphrase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 {
		t.Fatalf("got %d identities, want 1", len(ids))
	}
	x, ok := ids[0].(*age.X25519Identity)
	if !ok {
		t.Fatalf("identity is %T, want *age.X25519Identity", ids[0])
	}
	if x.Recipient().String() != pub {
		t.Errorf("identity's recipient %s, want age-keygen's %s", x.Recipient(), pub)
	}
	mustDecrypt(t, ageEncrypt(t, pub, "nightly dump"), "nightly dump", ids...)
}

func TestLoadIdentitiesSeveral(t *testing.T) {
	text1, pub1 := keygen(t)
	text2, pub2 := keygen(t)
	pq, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	file := "# operators of db1\n\n" + text1 + "\n   \n  # indented comment\n" +
		"  " + strings.TrimSpace(text2) + "  \r\n" + // indented, CRLF
		"# post-quantum\n" + pq.String() + "\n"
	path := writeFile(t, "ids.txt", []byte(file))
	ids, err := agekeys.LoadIdentities(path, noPassphrase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 {
		t.Fatalf("got %d identities, want 3", len(ids))
	}
	if _, ok := ids[2].(*age.HybridIdentity); !ok {
		t.Errorf("third identity is %T, want *age.HybridIdentity", ids[2])
	}
	// Each identity decrypts what was encrypted to it alone.
	mustDecrypt(t, ageEncrypt(t, pub1, "one"), "one", ids...)
	mustDecrypt(t, ageEncrypt(t, pub2, "two"), "two", ids...)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, pq.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "three")
	w.Close()
	mustDecrypt(t, buf.Bytes(), "three", ids...)
}

func TestLoadIdentitiesPlugin(t *testing.T) {
	s := plugin.EncodeIdentity("yubikey", []byte("slot 1"))
	path := writeFile(t, "yubikey.txt", []byte("# hardware token\n"+s+"\n"))
	ids, err := agekeys.LoadIdentities(path, noPassphrase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := ids[0].(*plugin.Identity)
	if len(ids) != 1 || !ok || p.Name() != "yubikey" {
		t.Fatalf("got %d identities, first %T; want one yubikey plugin identity", len(ids), ids[0])
	}
}

// protect encrypts an identity file's text to a passphrase, the way
// `age-keygen | age -p` does (the CLI needs a terminal for the passphrase).
func protect(t *testing.T, text, pass string, armored bool) []byte {
	t.Helper()
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(10) // keep the test quick; the format is the same
	var buf bytes.Buffer
	var dst io.Writer = &buf
	var aw io.WriteCloser
	if armored {
		aw = armor.NewWriter(&buf)
		dst = aw
	}
	w, err := age.Encrypt(dst, r)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, text)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if aw != nil {
		if err := aw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestLoadIdentitiesPassphrase(t *testing.T) {
	text, pub := keygen(t)
	ct := ageEncrypt(t, pub, "secret rows")
	for _, armored := range []bool{false, true} {
		name := "binary"
		if armored {
			name = "armored"
		}
		t.Run(name, func(t *testing.T) {
			data := protect(t, text, "correct horse", armored)
			if armored {
				data = append([]byte("\n"), data...) // leading space is tolerated
			}
			path := writeFile(t, "id.age", data)

			ids, err := agekeys.LoadIdentities(path, fixed("correct horse"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != 1 {
				t.Fatalf("got %d identities, want 1", len(ids))
			}
			mustDecrypt(t, ct, "secret rows", ids...)

			_, err = agekeys.LoadIdentities(path, fixed("wrong horse"), nil)
			if err == nil {
				t.Fatal("a wrong passphrase loaded the identity")
			}
			for _, want := range []string{path, "wrong passphrase"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("wrong passphrase error %q does not mention %q", err, want)
				}
			}

			_, err = agekeys.LoadIdentities(path, nil, nil)
			if err == nil {
				t.Fatal("loaded a protected identity without a passphrase")
			}
			for _, want := range []string{path, "passphrase-protected", "COFFER_IDENTITY_PASSPHRASE_FILE"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("no-passphrase error %q does not mention %q", err, want)
				}
			}

			errAsk := errors.New("terminal closed")
			_, err = agekeys.LoadIdentities(path, func() (string, error) { return "", errAsk }, nil)
			if !errors.Is(err, errAsk) {
				t.Errorf("err = %v, want the passphrase prompt's error", err)
			}
		})
	}
}

// TestLoadIdentitiesProtectedNotIdentity: a passphrase-protected file that
// holds something else is an error, not an empty list.
func TestLoadIdentitiesProtectedNotIdentity(t *testing.T) {
	path := writeFile(t, "notes.age", protect(t, "just some notes\n", "pw", true))
	_, err := agekeys.LoadIdentities(path, fixed("pw"), nil)
	if err == nil {
		t.Fatal("loaded identities from an encrypted file of notes")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("error %q should name the file and the line", err)
	}
}

// TestLoadIdentitiesRecipientEncrypted: a file encrypted to a recipient,
// not a passphrase, is reported as such rather than with a panic.
func TestLoadIdentitiesRecipientEncrypted(t *testing.T) {
	_, pub := keygen(t)
	path := writeFile(t, "id.age", ageEncrypt(t, pub, "AGE-SECRET-KEY-1XYZ\n"))
	_, err := agekeys.LoadIdentities(path, fixed("pw"), nil)
	if err == nil {
		t.Fatal("loaded an identity from a file encrypted to someone else")
	}
	mustMention(t, err, path, "not a passphrase-protected identity file")
}

func mustMention(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestLoadIdentitiesBad(t *testing.T) {
	text, pub := keygen(t)
	secret := strings.TrimSpace(text[strings.Index(text, "AGE-SECRET-KEY-"):])
	corrupt := secret[:len(secret)-4] + "QQQQ" // bad checksum
	for _, tc := range []struct {
		name string
		data string
		want []string
	}{
		{"empty", "", []string{"no identity"}},
		{"only comments", "# created: today\n\n# nothing else\n", []string{"no identity"}},
		{"a recipient, not an identity", pub + "\n", []string{"line 1 is not an age identity"}},
		{"prose", "hello\nworld\n", []string{"line 1 is not an age identity"}},
		{"bad line after a good one", text + "\n" + corrupt + "\n", []string{"line 5 is not an age identity"}},
		{"ssh key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n", []string{"line 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "id.txt", []byte(tc.data))
			ids, err := agekeys.LoadIdentities(path, noPassphrase(t), nil)
			if err == nil {
				t.Fatalf("loaded %d identities, want an error", len(ids))
			}
			mustMention(t, err, append([]string{path}, tc.want...)...)
			if strings.Contains(err.Error(), "AGE-SECRET-KEY") || strings.Contains(err.Error(), secret[15:30]) {
				t.Errorf("error reveals key material: %q", err)
			}
		})
	}
}

func TestLoadIdentitiesMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.txt")
	_, err := agekeys.LoadIdentities(path, noPassphrase(t), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want one wrapping fs.ErrNotExist", err)
	}
	mustMention(t, err, path, "identity file")
}

func TestParseRecipient(t *testing.T) {
	_, pub := keygen(t)
	pq, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	yubikey := plugin.EncodeRecipient("yubikey", []byte("slot 1"))
	for _, tc := range []struct {
		name, in, want string // want: the recipient's String()
		wantType       string
	}{
		{"x25519", pub, pub, "*age.X25519Recipient"},
		{"surrounding space", "  " + pub + "\t\n", pub, "*age.X25519Recipient"},
		{"hybrid", pq.Recipient().String(), pq.Recipient().String(), "*age.HybridRecipient"},
		{"plugin", yubikey, yubikey, "*plugin.Recipient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := agekeys.ParseRecipient(tc.in, nil)
			if err != nil {
				t.Fatal(err)
			}
			s, ok := r.(interface{ String() string })
			if !ok || s.String() != tc.want {
				t.Errorf("parsed %v, want %s", r, tc.want)
			}
			if got := typeName(r); got != tc.wantType {
				t.Errorf("parsed a %s, want %s", got, tc.wantType)
			}
		})
	}
	for _, bad := range []string{"", "age1", pub[:len(pub)-1], pub + "x", "ssh-ed25519 AAAA", "age1yubikey1"} {
		t.Run("bad "+bad, func(t *testing.T) {
			_, err := agekeys.ParseRecipient(bad, nil)
			if err == nil {
				t.Fatalf("ParseRecipient(%q) succeeded", bad)
			}
			mustMention(t, err, "not an age recipient")
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *age.X25519Recipient:
		return "*age.X25519Recipient"
	case *age.HybridRecipient:
		return "*age.HybridRecipient"
	case *plugin.Recipient:
		return "*plugin.Recipient"
	}
	return "something else"
}

func TestReadRecipientsFile(t *testing.T) {
	_, pub1 := keygen(t)
	_, pub2 := keygen(t)
	file := "# operators\n\n" + pub1 + "\r\n   \n  # alice's laptop\n  " + pub2 + "  \n"
	path := writeFile(t, "recipients.txt", []byte(file))
	rs, names, err := agekeys.ReadRecipientsFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || len(names) != 2 || names[0] != pub1 || names[1] != pub2 {
		t.Fatalf("got %d recipients named %q, want %s and %s", len(rs), names, pub1, pub2)
	}
	// What is encrypted to the recipients read opens with the real age CLI
	// and the matching identity.
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "for both")
	w.Close()
	if !bytes.HasPrefix(buf.Bytes(), []byte("age-encryption.org/v1")) {
		t.Fatal("not an age file")
	}
}

// TestReadRecipientsFileAgeCLI: a file written for `age -R` reads the same.
func TestReadRecipientsFileAgeCLI(t *testing.T) {
	text, pub := keygen(t)
	path := writeFile(t, "recipients.txt", []byte("# for age -R\n"+pub+"\n"))
	rs, _, err := agekeys.ReadRecipientsFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "via coffer")
	w.Close()
	idPath := writeFile(t, "id.txt", []byte(text))
	cmd := exec.Command("age", "-d", "-i", idPath)
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "via coffer" {
		t.Fatalf("age -d: %q, %v", out, err)
	}
}

func TestReadRecipientsFileBad(t *testing.T) {
	_, pub := keygen(t)
	for _, tc := range []struct {
		name, data string
		want       []string
	}{
		{"bad third line", "# ops\n" + pub + "\nage1notarecipient\n", []string{"line 3", "age1notarecipient", "not an age recipient"}},
		{"identity instead of recipient", "AGE-SECRET-KEY-1QQQQ\n", []string{"line 1", "identity", "not a recipient"}},
		{"empty", "", []string{"has no recipient"}},
		{"only comments", "# nobody yet\n\n", []string{"has no recipient"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "recipients.txt", []byte(tc.data))
			_, _, err := agekeys.ReadRecipientsFile(path, nil)
			if err == nil {
				t.Fatal("read recipients from a bad file")
			}
			mustMention(t, err, append([]string{path}, tc.want...)...)
		})
	}
	missing := filepath.Join(t.TempDir(), "none.txt")
	_, _, err := agekeys.ReadRecipientsFile(missing, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want one wrapping fs.ErrNotExist", err)
	}
	mustMention(t, err, missing)
}

// TestRecipientIsSecretKey: an identity given where a recipient belongs
// (a pasted key, a recipients file that is really an identity file) must
// not be echoed into an error message, where it would end up in logs.
func TestRecipientIsSecretKey(t *testing.T) {
	text, _ := keygen(t)
	secret := strings.TrimSpace(text[strings.Index(text, "AGE-SECRET-KEY-"):])
	pq, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, key string }{
		{"x25519", secret},
		{"lower case", strings.ToLower(secret)},
		{"hybrid", pq.String()},
		{"plugin", plugin.EncodeIdentity("yubikey", []byte("slot 1"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.key[len(tc.key)-20:]
			_, err := agekeys.ParseRecipient(tc.key, nil)
			if err == nil {
				t.Fatal("an identity parsed as a recipient")
			}
			if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(body)) {
				t.Errorf("ParseRecipient error reveals the secret key: %q", err)
			}
			mustMention(t, err, "identity", "not a recipient")

			path := writeFile(t, "recipients.txt", []byte(text))
			if tc.name != "x25519" {
				path = writeFile(t, "recipients.txt", []byte("# oops\n"+tc.key+"\n"))
			}
			_, _, err = agekeys.ReadRecipientsFile(path, nil)
			if err == nil {
				t.Fatal("an identity file read as recipients")
			}
			if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(body)) {
				t.Errorf("ReadRecipientsFile error reveals the secret key: %q", err)
			}
			mustMention(t, err, path, "identity")
		})
	}
}
