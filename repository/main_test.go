package repository_test

import (
	"testing"

	"github.com/coffer-backup/coffer/internal/testminio"
)

func TestMain(m *testing.M) { testminio.Main(m) }
