package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type checkJSON struct {
	Packs        int    `json:"packs"`
	Subset       string `json:"subset"`
	PacksChosen  int    `json:"packs_chosen"`
	PacksRead    int    `json:"packs_read"`
	PacksDamaged int    `json:"packs_damaged"`
	Problems     []struct {
		Object string `json:"object"`
	} `json:"problems"`
}

func packFiles(t *testing.T, repo string) []string {
	t.Helper()
	packs, err := filepath.Glob(filepath.Join(repo, "data", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return packs
}

// A one-pack repository whose pack is damaged: a 10% subset still reads
// that pack, says so, and fails.
func TestCheckSubsetReadsAtLeastOnePack(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t, repo)
	c.init()
	c.backup(strings.NewReader(strings.Repeat("row\n", 5000)), "--source", "db", "--stdin")
	packs := packFiles(t, repo)
	if len(packs) != 1 {
		t.Fatalf("%d packs, want 1", len(packs))
	}
	b, err := os.ReadFile(packs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(packs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := c.run(nil, "check", "--read-data", "--subset", "10%")
	if r.code == 0 {
		t.Fatalf("check --read-data --subset 10%% passed a damaged one-pack repository:\n%s", r.stdout)
	}
	mustContain(t, "check output", r.stdout, "read 1 of 1 pack (subset 10%: 1 chosen): 1 damaged, 0 verified", "error: data/")
	if strings.Contains(r.stdout, "no errors were found") || strings.Contains(r.stdout, "all verified") {
		t.Errorf("check says all is well above the error:\n%s", r.stdout)
	}
}

// Slices 1/3, 2/3 and 3/3 together read every pack exactly once.
func TestCheckSubsetSlicesCoverEveryPack(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t, repo)
	c.init()
	for i := range 7 {
		c.backup(strings.NewReader(strings.Repeat(fmt.Sprintf("row %d\n", i), 3000+i)), "--source", "db", "--stdin")
	}
	total := len(packFiles(t, repo))
	if total < 7 {
		t.Fatalf("%d packs, want at least 7", total)
	}
	read := 0
	for n := 1; n <= 3; n++ {
		out := c.ok(nil, "--json", "check", "--read-data", "--subset", fmt.Sprintf("%d/3", n))
		var rep checkJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if want := (total - (n - 1) + 2) / 3; rep.PacksRead != want || rep.PacksChosen != want {
			t.Errorf("slice %d/3 of %d packs read %d (chose %d), want %d", n, total, rep.PacksRead, rep.PacksChosen, want)
		}
		read += rep.PacksRead
		human := c.ok(nil, "check", "--read-data", "--subset", fmt.Sprintf("%d/3", n))
		mustContain(t, "check output", human, fmt.Sprintf("read %d of %d packs (subset %d/3", rep.PacksRead, total, n), "all verified")
	}
	if read != total {
		t.Errorf("slices 1/3..3/3 read %d packs, the repository has %d", read, total)
	}
	all := c.ok(nil, "check", "--read-data")
	mustContain(t, "check output", all, fmt.Sprintf("read %d of %d packs: all verified", total, total))
}

func TestCheckSubsetBadStrings(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t, repo)
	c.init()
	for _, s := range []string{"0%", "101%", "abc", "0/3", "4/3", "1/0", "-1/3", "1/x", "NaN", "1.5"} {
		msg := c.fail(nil, "check", "--read-data", "--subset", s)
		mustContain(t, "error for --subset "+s, msg, fmt.Sprintf("--subset %q", s))
	}
	mustContain(t, "error without --read-data", c.fail(nil, "check", "--subset", "1/3"), "--subset needs --read-data")
}
