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
	// Commands run without COFFER_CACHE_DIR keep their index cache here,
	// not in the home directory.
	cache, err := os.MkdirTemp("", "coffer-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("XDG_CACHE_HOME", cache)
	code := m.Run()
	os.RemoveAll(cache)
	testminio.Stop()
	cleanup()
	os.Exit(code)
}
