package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// TestSystemdUnit checks contrib/systemd/coffer.service with
// systemd-analyze, pointing it at the binary under test.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is not installed (apt-get install systemd): %v", err)
	}
	unit, err := os.ReadFile("../../contrib/systemd/coffer.service")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "coffer.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/coffer", cofferBin)), 0o644)
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "coffer.service") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestKubernetesCronJob checks the example's structure, its schedule, and
// that the command it runs is one coffer accepts.
func TestKubernetesCronJob(t *testing.T) {
	b, err := os.ReadFile("../../contrib/kubernetes/cronjob.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cj struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			Schedule    string `yaml:"schedule"`
			JobTemplate struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Args []string `yaml:"args"`
								Env  []struct {
									Name  string `yaml:"name"`
									Value string `yaml:"value"`
								} `yaml:"env"`
							} `yaml:"containers"`
						} `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			} `yaml:"jobTemplate"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &cj); err != nil {
		t.Fatal(err)
	}
	if cj.APIVersion != "batch/v1" || cj.Kind != "CronJob" {
		t.Fatalf("not a batch/v1 CronJob: %s %s", cj.APIVersion, cj.Kind)
	}
	if _, err := cron.ParseStandard(cj.Spec.Schedule); err != nil {
		t.Fatalf("schedule %q: %v", cj.Spec.Schedule, err)
	}
	cs := cj.Spec.JobTemplate.Spec.Template.Spec.Containers
	if len(cs) != 1 || len(cs[0].Args) == 0 {
		t.Fatal("no container args")
	}
	for _, e := range cs[0].Env {
		if strings.Contains(strings.ToLower(e.Name), "secret") && e.Value != "" {
			t.Errorf("%s holds a secret inline", e.Name)
		}
	}
	// The command line must parse: ask coffer for its help with those args.
	out, err := exec.Command(cofferBin, append(cs[0].Args, "--help")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Usage:") {
		t.Fatalf("coffer %v: %v\n%s", cs[0].Args, err, out)
	}
}
