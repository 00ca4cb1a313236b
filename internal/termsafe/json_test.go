package termsafe

import (
	"encoding/json"
	"testing"
)

func TestJSONEscapesWhatTerminalsInterpret(t *testing.T) {
	for _, v := range []string{"plain Müller 東京", "c1\u009b2J", "del\x7f", "rlo\u202etxt.exe", "isolate\u2066x\u2069",
		"lrm\u200e", "tag\U000e0041", "nl\nesc\x1b[2J"} {
		b, err := json.Marshal(map[string]string{"name": v})
		if err != nil {
			t.Fatal(err)
		}
		safeJSON := JSON(b)
		if !safe(string(safeJSON), true) {
			t.Errorf("JSON(%q) = %s: still raw", v, safeJSON)
		}
		var back map[string]string
		if err := json.Unmarshal(safeJSON, &back); err != nil || back["name"] != v {
			t.Errorf("JSON(%q) = %s decodes to %q, %v", v, safeJSON, back["name"], err)
		}
	}
	indented := []byte("{\n\t\"a\": 1\r\n}")
	if got := JSON(indented); string(got) != string(indented) {
		t.Errorf("JSON changed white space: %q", got)
	}
}
