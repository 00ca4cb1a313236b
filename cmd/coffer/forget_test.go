package main_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLIForget(t *testing.T) {
	root := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t, root)
	c.init()
	w := c.without("COFFER_IDENTITY_FILE")
	for i := range 4 {
		w.backup(strings.NewReader(strings.Repeat("row "+string(rune('a'+i))+"\n", 5000)), "--source", "shop", "--stdin", "--tag", map[bool]string{true: "monthly", false: "nightly"}[i == 0])
	}
	w.backup(strings.NewReader("other\n"), "--source", "crm", "--stdin")

	out := w.ok(nil, "forget", "--keep-last", "2", "--keep-tag", "monthly", "--dry-run")
	mustContain(t, "forget --dry-run", out, "source shop on", "keep (last 1)", "keep (last 2)", "keep (tag monthly)", "would forget", "source crm on")
	if len(w.snapshots()) != 5 {
		t.Fatal("--dry-run removed snapshots")
	}
	var groups []struct {
		Source    string `json:"source"`
		Snapshots []struct {
			ID      string   `json:"snapshot"`
			Keep    bool     `json:"keep"`
			Reasons []string `json:"reasons"`
		} `json:"snapshots"`
	}
	js := w.ok(nil, "forget", "--keep-last", "2", "--keep-tag", "monthly", "--dry-run", "--json")
	if err := json.Unmarshal([]byte(js), &groups); err != nil || len(groups) != 2 || groups[1].Source != "shop" || len(groups[1].Snapshots) != 4 {
		t.Fatalf("forget --json: %v\n%s", err, js)
	}
	if s := groups[1].Snapshots; s[0].Reasons[0] != "last 1" || s[2].Keep || s[3].Reasons[0] != "tag monthly" {
		t.Fatalf("decisions: %+v", s)
	}

	w.ok(nil, "forget", "--keep-last", "2", "--keep-tag", "monthly", "--source", "shop", "--prune")
	if n := len(w.snapshots("--source", "shop")); n != 3 {
		t.Fatalf("%d shop snapshots after forget, want 3", n)
	}
	// Each stream is one chunk list of its own: the pruned snapshots'
	// lists went with them.
	if lists, _ := filepath.Glob(filepath.Join(root, "chunklists", "*")); len(lists) != 4 {
		t.Fatalf("%d chunk lists after forget --prune, want the 4 the remaining snapshots name: %v", len(lists), lists)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--keep-daily", "-3"}, "--keep-daily -3"},
		{[]string{"--keep-last", "1", "--source", "nope"}, `source "nope"`},
		{[]string{"--keep-within", "3 months"}, "--keep-within"},
		{[]string{}, "give snapshot ids"},
		{[]string{"--keep-tag", "never-used"}, "--allow-empty"},
	} {
		mustContain(t, "forget "+strings.Join(tc.args, " "), w.fail(nil, append([]string{"forget"}, tc.args...)...), tc.want)
	}
	mustContain(t, "check", c.ok(nil, "check", "--read-data"), "no errors")
	var st struct {
		Snapshots int     `json:"snapshots"`
		Ratio     float64 `json:"dedup_ratio"`
		Sources   []struct {
			Source    string `json:"source"`
			Snapshots int    `json:"snapshots"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(w.ok(nil, "stats", "--json")), &st); err != nil || st.Snapshots != 4 || len(st.Sources) != 2 || st.Sources[1].Snapshots != 3 || st.Ratio <= 1 {
		t.Fatalf("stats: %v %+v", err, st)
	}
}
