package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ageKeygen writes a new identity with the real age-keygen and returns its
// path and public key.
func ageKeygen(t *testing.T) (path, recipient string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "identity.txt")
	out, err := exec.Command("age-keygen", "-o", path).CombinedOutput()
	if err != nil {
		t.Fatalf("age-keygen: %v\n%s", err, out)
	}
	out, err = exec.Command("age-keygen", "-y", path).Output()
	if err != nil {
		t.Fatalf("age-keygen -y: %v", err)
	}
	return path, strings.TrimSpace(string(out))
}

var fingerprintLine = regexp.MustCompile(`(?m)^writer key fingerprint:\s+([0-9a-f]{4}(?:-[0-9a-f]{4}){7})$`)

// fingerprint returns the writer key fingerprint that init printed.
func fingerprint(t *testing.T, initOut string) string {
	t.Helper()
	m := fingerprintLine.FindStringSubmatch(initOut)
	if m == nil {
		t.Fatalf("init printed no writer key fingerprint:\n%s", initOut)
	}
	return m[1]
}

// backupAndRestore backs up a small stream with the writer key only, and
// checks that c (with an operator identity) restores it.
func backupAndRestore(t *testing.T, c *cli) {
	t.Helper()
	const data = "INSERT INTO customers VALUES (1, 'Ada');\n"
	c.without("COFFER_IDENTITY_FILE").backup(strings.NewReader(strings.Repeat(data, 2000)), "--source", "db", "--stdin")
	if got := c.ok(nil, "restore", "latest", "--source", "db"); got != strings.Repeat(data, 2000) {
		t.Fatalf("restored %d bytes, not the backed-up stream", len(got))
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestInitRecipients(t *testing.T) {
	id1, pub1 := ageKeygen(t)
	id2, pub2 := ageKeygen(t)
	id3, _ := ageKeygen(t)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	out := c.ok(nil, "init", "--recipient", pub1, "--recipient", pub2)
	mustContain(t, "init output", out, pub1, pub2, "writer key fingerprint", filepath.Join(c.dir, "writer.key"))
	fingerprint(t, out)
	if _, err := os.Stat(filepath.Join(c.dir, "operator.txt")); err == nil {
		t.Error("init with recipients wrote an identity file")
	}
	if strings.Contains(out, "operator identity") {
		t.Errorf("init with recipients mentions a generated identity:\n%s", out)
	}

	backupAndRestore(t, c.with("COFFER_IDENTITY_FILE="+id1))
	for _, id := range []string{id1, id2} {
		op := c.with("COFFER_IDENTITY_FILE=" + id)
		op.ok(nil, "restore", "latest", "--source", "db")
		// An operator needs no writer key: it is in the repository,
		// encrypted to the operators.
		op.without("COFFER_WRITER_KEY_FILE").ok(nil, "restore", "latest", "--source", "db")
	}

	other := c.with("COFFER_IDENTITY_FILE=" + id3)
	r := other.run(nil, "restore", "latest", "--source", "db")
	if r.code == 0 || r.stdout != "" {
		t.Fatalf("a third identity restored: exit %d, %d bytes", r.code, len(r.stdout))
	}
	mustContain(t, "restore with a third identity", r.stderr, "keys/repository.age", pub1, pub2, id3)
}

func TestInitRecipientsFile(t *testing.T) {
	id1, pub1 := ageKeygen(t)
	id2, pub2 := ageKeygen(t)
	id3, pub3 := ageKeygen(t)
	file := filepath.Join(t.TempDir(), "operators.txt")
	text := "# db1 operators\n\n" + pub1 + "\n  # bob\n  " + pub2 + "  \r\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	// --recipient and --recipients-file add up.
	out := c.ok(nil, "init", "--recipients-file", file, "--recipient", pub3)
	mustContain(t, "init output", out, pub1, pub2, pub3)
	backupAndRestore(t, c.with("COFFER_IDENTITY_FILE="+id2))
	for _, id := range []string{id1, id3} {
		c.with("COFFER_IDENTITY_FILE="+id).ok(nil, "restore", "latest", "--source", "db")
	}
}

func TestInitBadRecipients(t *testing.T) {
	idPath, pub := ageKeygen(t)
	secret, err := os.ReadFile(idPath)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(secret[strings.Index(string(secret), "AGE-SECRET-KEY-"):]))
	badFile := filepath.Join(t.TempDir(), "operators.txt")
	os.WriteFile(badFile, []byte("# ops\n"+pub+"\nage1typo\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"not a recipient", []string{"--recipient", "age1typo"}, []string{"--recipient", "age1typo", "not an age recipient"}},
		{"a secret key", []string{"--recipient", key}, []string{"--recipient", "identity", "not a recipient"}},
		{"bad line in file", []string{"--recipients-file", badFile}, []string{badFile, "line 3", "age1typo"}},
		{"missing file", []string{"--recipients-file", badFile + ".missing"}, []string{badFile + ".missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := filepath.Join(t.TempDir(), "repo")
			c := newCLI(t, repo)
			msg := c.fail(nil, append([]string{"init"}, tc.args...)...)
			mustContain(t, "init error", msg, tc.want...)
			if strings.Contains(msg, key) {
				t.Errorf("init error reveals a secret key:\n%s", msg)
			}
			if _, err := os.Stat(repo); err == nil {
				t.Error("a failed init created the repository")
			}
			if _, err := os.Stat(filepath.Join(c.dir, "writer.key")); err == nil {
				t.Error("a failed init wrote a writer key")
			}
		})
	}
}

func TestInitGeneratesIdentity(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	out := c.ok(nil, "init")
	idPath, wkPath := filepath.Join(c.dir, "operator.txt"), filepath.Join(c.dir, "writer.key")
	for _, p := range []string{idPath, wkPath} {
		if m := fileMode(t, p); m != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, m)
		}
	}
	// The identity is a valid age identity file, and its public key is the
	// recipient init printed.
	pub, err := exec.Command("age-keygen", "-y", idPath).Output()
	if err != nil {
		t.Fatalf("age-keygen -y %s: %v", idPath, err)
	}
	mustContain(t, "init output", out, "operator recipient:", strings.TrimSpace(string(pub)),
		"operator identity:", idPath, "writer key:", wkPath)
	fingerprint(t, out)
	wk, err := os.ReadFile(wkPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(wk), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		if (k == "metadata-identity" || k == "mac-key" || k == "chunk-id-key") && strings.Contains(out, v) {
			t.Errorf("init printed the writer key's %s", k)
		}
	}
	backupAndRestore(t, c)
}

func TestInitNoIdentityWhere(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t, repo).without("COFFER_IDENTITY_FILE")
	mustContain(t, "init without recipient nor identity file", c.fail(nil, "init"),
		"--recipient", "--identity-file", "COFFER_IDENTITY_FILE")
	if _, err := os.Stat(repo); err == nil {
		t.Error("a failed init created the repository")
	}
	mustContain(t, "init without writer key file",
		newCLI(t, repo).without("COFFER_WRITER_KEY_FILE").fail(nil, "init"),
		"--writer-key-file", "COFFER_WRITER_KEY_FILE")
}

func TestInitRefusesExisting(t *testing.T) {
	t.Run("writer key exists", func(t *testing.T) {
		repo := filepath.Join(t.TempDir(), "repo")
		c := newCLI(t, repo)
		wk := filepath.Join(c.dir, "writer.key")
		if err := os.WriteFile(wk, []byte("an old key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		mustContain(t, "init over a writer key", c.fail(nil, "init"), wk, "already exists")
		if b, _ := os.ReadFile(wk); string(b) != "an old key\n" {
			t.Error("init changed the existing writer key")
		}
		if _, err := os.Stat(repo); err == nil {
			t.Error("init created the repository although it refused")
		}
	})

	t.Run("identity exists", func(t *testing.T) {
		repo := filepath.Join(t.TempDir(), "repo")
		c := newCLI(t, repo)
		id := filepath.Join(c.dir, "operator.txt")
		if err := os.WriteFile(id, []byte("# an old identity\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		mustContain(t, "init over an identity", c.fail(nil, "init"), id, "already exists")
		if b, _ := os.ReadFile(id); string(b) != "# an old identity\n" {
			t.Error("init changed the existing identity file")
		}
		if _, err := os.Stat(repo); err == nil {
			t.Error("init created the repository although it refused")
		}
		if _, err := os.Stat(filepath.Join(c.dir, "writer.key")); err == nil {
			t.Error("init wrote a writer key although it refused")
		}
	})

	t.Run("repository exists", func(t *testing.T) {
		repo := filepath.Join(t.TempDir(), "repo")
		c := newCLI(t, repo)
		c.init()
		// The same settings again: the writer key is there already.
		mustContain(t, "second init", c.fail(nil, "init"), "already exists")

		// Fresh key paths, same repository: the repository is refused.
		_, pub := ageKeygen(t)
		again := newCLI(t, repo)
		wk := filepath.Join(again.dir, "writer.key")
		msg := again.fail(nil, "init", "--recipient", pub)
		mustContain(t, "init of an existing repository", msg, "a coffer repository already exists", repo)
		if _, err := os.Stat(wk); err == nil {
			t.Error("init of an existing repository wrote a writer key")
		}
		// The first repository still works with its own keys.
		backupAndRestore(t, c)
	})
}

func TestInitPinnedFingerprint(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	fp := fingerprint(t, c.ok(nil, "init"))
	backupAndRestore(t, c)

	other := newCLI(t, filepath.Join(t.TempDir(), "other"))
	otherFP := fingerprint(t, other.ok(nil, "init"))
	if otherFP == fp {
		t.Fatal("two repositories have the same writer key fingerprint")
	}

	for _, tc := range []struct {
		name string
		c    *cli
	}{
		{"writer key from file", c},
		{"writer key from the repository", c.without("COFFER_WRITER_KEY_FILE")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, pin := range []string{fp, strings.ToUpper(fp), strings.ReplaceAll(fp, "-", "")} {
				tc.c.with("COFFER_WRITER_FINGERPRINT="+pin).ok(nil, "restore", "latest", "--source", "db")
			}
			for _, pin := range []string{otherFP, "0000-0000-0000-0000-0000-0000-0000-0000", fp[:len(fp)-1] + "x"} {
				r := tc.c.with("COFFER_WRITER_FINGERPRINT="+pin).run(nil, "restore", "latest", "--source", "db")
				if r.code == 0 || r.stdout != "" {
					t.Fatalf("restore with pinned fingerprint %s: exit %d, %d bytes", pin, r.code, len(r.stdout))
				}
				mustContain(t, "restore with another pinned fingerprint", r.stderr, "pinned", pin, fp)
			}
		})
	}
}

func TestInitJSON(t *testing.T) {
	t.Run("generated identity", func(t *testing.T) {
		repo := filepath.Join(t.TempDir(), "repo")
		c := newCLI(t, repo)
		out := c.ok(nil, "init", "--json")
		var res struct {
			JSONVersion int      `json:"json_version"`
			Repository  string   `json:"repository"`
			ID          string   `json:"repository_id"`
			Operators   []string `json:"operators"`
			Fingerprint string   `json:"writer_key_fingerprint"`
			WriterKey   string   `json:"writer_key_file"`
			Identity    string   `json:"identity_file"`
			TrustFile   string   `json:"trust_file"`
		}
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&res); err != nil {
			t.Fatalf("init --json: %v\n%s", err, out)
		}
		pub, err := exec.Command("age-keygen", "-y", filepath.Join(c.dir, "operator.txt")).Output()
		if err != nil {
			t.Fatal(err)
		}
		if res.Repository != repo || res.ID == "" || res.WriterKey != filepath.Join(c.dir, "writer.key") ||
			res.Identity != filepath.Join(c.dir, "operator.txt") ||
			len(res.Operators) != 1 || res.Operators[0] != strings.TrimSpace(string(pub)) ||
			!regexp.MustCompile(`^[0-9a-f]{4}(-[0-9a-f]{4}){7}$`).MatchString(res.Fingerprint) {
			t.Fatalf("init --json: %+v", res)
		}
		if res.TrustFile != res.Identity+".trust" || fileMode(t, res.TrustFile) != 0o600 {
			t.Fatalf("init --json: trust file %q, want %s.trust with mode 0600", res.TrustFile, res.Identity)
		}
		if b, _ := os.ReadFile(res.TrustFile); !strings.Contains(string(b), res.ID) || !strings.Contains(string(b), res.Fingerprint) {
			t.Fatalf("the trust file does not pin repository %s, writer key %s:\n%s", res.ID, res.Fingerprint, b)
		}
		c.with("COFFER_WRITER_FINGERPRINT="+res.Fingerprint).ok(nil, "snapshots")
	})

	t.Run("recipients", func(t *testing.T) {
		_, pub1 := ageKeygen(t)
		_, pub2 := ageKeygen(t)
		c := newCLI(t, "file://"+filepath.Join(t.TempDir(), "repo"))
		out := c.ok(nil, "--json", "init", "--recipient", pub1, "--recipient", pub2)
		var res map[string]any
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("init --json: %v\n%s", err, out)
		}
		if _, ok := res["identity_file"]; ok {
			t.Errorf("init --json with recipients has an identity_file: %s", out)
		}
		ops, _ := res["operators"].([]any)
		if len(ops) != 2 || ops[0] != pub1 || ops[1] != pub2 {
			t.Errorf("operators = %v, want %s, %s", res["operators"], pub1, pub2)
		}
		for _, k := range []string{"repository", "repository_id", "writer_key_fingerprint", "writer_key_file"} {
			if s, _ := res[k].(string); s == "" {
				t.Errorf("init --json has no %s: %s", k, out)
			}
		}
	})
}
