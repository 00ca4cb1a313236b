package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNotifier(t *testing.T) {
	got := make(chan Notice, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n Notice
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &n); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook body %q: %v", b, err)
		}
		got <- n
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "notice.json")
	nf := &Notifier{WebhookURL: srv.URL, WebhookOn: map[string]bool{"failure": true},
		Command: "cat > " + out, CommandOn: map[string]bool{"failure": true, "success": true}}
	ctx := context.Background()
	fail := Notice{Job: "backup shop", Kind: "backup", Source: "shop", Outcome: "failure", Error: "exit status 3", Started: time.Now()}
	if err := nf.Send(ctx, fail); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n.Job != "backup shop" || n.Error != "exit status 3" {
		t.Fatalf("webhook got %+v", n)
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), `"outcome":"failure"`) {
		t.Fatalf("command got %q", b)
	}
	// success: only the command is asked for it
	if err := nf.Send(ctx, Notice{Job: "backup shop", Outcome: "success"}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		t.Fatalf("the webhook was sent a success it did not ask for: %+v", n)
	default:
	}
	bad := &Notifier{WebhookURL: srv.URL + "/x", WebhookOn: map[string]bool{"failure": true}, Command: "exit 7", CommandOn: map[string]bool{"failure": true}}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	if err := bad.Send(ctx, fail); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("a failing receiver: %v", err)
	}
}
