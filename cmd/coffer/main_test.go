package main_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/coffer-backup/coffer/internal/testminio"
)

func TestMain(m *testing.M) {
	cleanup, err := buildCoffer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	testminio.Stop()
	cleanup()
	os.Exit(code)
}
