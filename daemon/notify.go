package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/engine/command"
)

// Notice is what a notification says about one job run.
type Notice struct {
	Job      string    `json:"job"`
	Kind     string    `json:"kind"` // backup, check, drill
	Source   string    `json:"source,omitempty"`
	Outcome  string    `json:"outcome"` // success, failure
	Error    string    `json:"error,omitempty"`
	Started  time.Time `json:"started"`
	Duration float64   `json:"duration_seconds"`
	Host     string    `json:"host"`
	Snapshot string    `json:"snapshot,omitempty"`
}

// Notifier sends notices by webhook (a JSON POST) and by a command hook
// (the notice as JSON on its standard input and in COFFER_NOTICE).
type Notifier struct {
	WebhookURL string
	WebhookOn  map[string]bool // "success", "failure"
	Command    string
	CommandOn  map[string]bool
	Client     *http.Client
	// Secrets names the variables of the daemon's environment that hold
	// the config's secrets (*_env): the hook never gets them, nor
	// coffer's own keys and credentials (command.UserEnv).
	Secrets []string
}

// Send delivers n where configured; errors are returned joined, for the log.
func (nf *Notifier) Send(ctx context.Context, n Notice) error {
	body, _ := json.Marshal(n)
	var errs []error
	if nf.WebhookURL != "" && nf.WebhookOn[n.Outcome] {
		errs = append(errs, nf.post(ctx, body))
	}
	if nf.Command != "" && nf.CommandOn[n.Outcome] {
		errs = append(errs, nf.run(ctx, body))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (nf *Notifier) post(ctx context.Context, body []byte) error {
	c := nf.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, nf.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook: the receiver answered %s", resp.Status)
	}
	return nil
}

func (nf *Notifier) run(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", nf.Command)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(hookEnv(nf.Secrets), "COFFER_NOTICE="+string(body))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("notification command: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// hookEnv is the daemon's environment without coffer's secrets and those
// the config names.
func hookEnv(secrets []string) []string {
	var env []string
	for _, e := range command.UserEnv() {
		k, _, _ := strings.Cut(e, "=")
		if !slices.Contains(secrets, k) {
			env = append(env, e)
		}
	}
	return env
}
