package mask

import (
	"strings"
	"testing"
)

// Canaries of a new copy are none of an earlier copy's, even where the
// phone range leaves few numbers (here 1,000), and a range with none left
// is an error that says so, not a loop.
func TestNewCanariesAvoidEarlierCopies(t *testing.T) {
	cfg := &Canaries{Table: "customers", Domain: "canary.example.com", PhonePrefix: "+44 20 7946 0"}
	var used []Canary
	for copy := range 150 {
		cs, err := NewCanaries(cfg, 5, used)
		if err != nil {
			t.Fatalf("copy %d: %v", copy, err)
		}
		for _, c := range cs {
			for _, u := range used {
				if c.Matches(u.Phone) || c.Matches(u.Email) {
					t.Fatalf("copy %d: canary %+v shares a value with an earlier copy's %+v", copy, c, u)
				}
			}
		}
		used = append(used, cs...)
	}
	if _, err := NewCanaries(cfg, 300, used); err == nil || !strings.Contains(err.Error(), "no 300 numbers left") {
		t.Fatalf("an exhausted range: %v", err)
	}
}
