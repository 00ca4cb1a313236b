package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestCLIAudit(t *testing.T) {
	root := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t, root)
	c.init()
	w := c.without("COFFER_IDENTITY_FILE")
	b := w.backup(strings.NewReader("row\n"), "--source", "shop", "--stdin")
	c.ok(nil, "restore", b.Snapshot, "-o", filepath.Join(t.TempDir(), "out"))
	w.fail(nil, "backup", "--source", "shop", "--exec", "exit 4")
	w.ok(nil, "forget", b.Snapshot)

	var recs []struct {
		Event, Outcome, Actor, Snapshot string
		Detail                          map[string]any
	}
	if err := json.Unmarshal([]byte(w.ok(nil, "audit", "--json")), &recs); err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, r := range recs {
		events = append(events, r.Event+":"+r.Outcome)
	}
	if strings.Join(events, " ") != "init:ok backup:ok restore:ok backup:failed forget:ok" || recs[2].Detail["to"] == nil || recs[1].Snapshot != b.Snapshot {
		t.Fatalf("audit log: %v %+v", events, recs)
	}
	mustContain(t, "audit verify", w.ok(nil, "audit", "verify"), "5 records, chain intact")

	names, _ := filepath.Glob(filepath.Join(root, "audit", "*"))
	sort.Strings(names)
	// Alter the restore record: it and its successor's link fail.
	altered := names[2]
	data, _ := os.ReadFile(altered)
	data[len(data)-3] ^= 1
	os.WriteFile(altered, data, 0o600)
	r := w.run(nil, "audit", "verify")
	if r.code != 1 {
		t.Fatalf("audit verify of an altered log: exit %d", r.code)
	}
	mustContain(t, "audit verify", r.stdout, filepath.Base(altered), "altered")

	// Remove the first backup's record instead: its successor names it.
	os.WriteFile(altered, data, 0o600)
	data[len(data)-3] ^= 1
	os.WriteFile(altered, data, 0o600)
	w.ok(nil, "audit", "verify")
	os.Remove(names[1])
	r = w.run(nil, "audit", "verify")
	if r.code != 1 {
		t.Fatalf("audit verify of a log with a removed record: exit %d", r.code)
	}
	mustContain(t, "audit verify", r.stdout, filepath.Base(names[2]), "removed")
}
