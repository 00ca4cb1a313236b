package mysql_test

import (
	"github.com/coffer-backup/coffer/engine/mysql"
	"github.com/coffer-backup/coffer/restore"
)

var _ restore.Target = (*mysql.Target)(nil)
