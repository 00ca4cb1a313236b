package mysql

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/engine/command"
)

// DefaultsParam names the address option that reads a MySQL option file
// (~/.my.cnf style): mysql:///shop?defaults-file=/home/me/.my.cnf.
const DefaultsParam = "defaults-file"

// defaultsGroups are the option groups the MariaDB and MySQL clients
// read, in the order they read them: later groups win.
var defaultsGroups = []string{"client", "client-server", "client-mariadb", "mysqldump", "mariadb-dump"}

// fileOptions are what coffer takes from an option file. Everything else
// in it (ssl-*, character sets, …) is not coffer's to apply and is left.
type fileOptions struct {
	user, password, host, socket string
	port                         int
}

// readDefaults reads the option file at path with my_print_defaults, the
// clients' own reader (so !include, quoting and escapes mean what they
// mean to mysqldump, and a world-writable file is ignored as it ignores
// it). The file is the operator's; its password goes where MYSQL_PWD
// would and is never printed.
func readDefaults(ctx context.Context, path string) (*fileOptions, error) {
	if !filepath.IsAbs(path) {
		home, err := os.UserHomeDir()
		if err != nil || !strings.HasPrefix(path, "~/") {
			return nil, fmt.Errorf("mysql option file %q: give an absolute path (or ~/…)", path)
		}
		path = filepath.Join(home, path[2:])
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("mysql option file (%s=): %w", DefaultsParam, err)
	}
	prog, err := lookPath("my_print_defaults")
	if err != nil {
		return nil, err
	}
	var out, stderr bytes.Buffer
	cmd := command.New(ctx, command.Env(nil), append([]string{prog, "--defaults-file=" + path}, defaultsGroups...)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("read mysql option file %s: %v: %s", path, err, firstLine(stderr.String()))
	}
	return parseDefaults(out.Bytes(), path)
}

// parseDefaults reads my_print_defaults' output: one --name=value a line.
func parseDefaults(out []byte, path string) (*fileOptions, error) {
	o := &fileOptions{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, _ := strings.Cut(strings.TrimPrefix(sc.Text(), "--"), "=")
		switch strings.ReplaceAll(name, "_", "-") {
		case "user":
			o.user = value
		case "password":
			o.password = value
		case "host":
			o.host = value
		case "socket":
			o.socket = value
		case "port":
			p, err := strconv.Atoi(value)
			if err != nil || p <= 0 || p > 65535 {
				return nil, fmt.Errorf("mysql option file %s: bad port %q", path, value)
			}
			o.port = p
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mysql option file %s: %w", path, err)
	}
	if o.socket != "" && !filepath.IsAbs(o.socket) {
		return nil, fmt.Errorf("mysql option file %s: socket %q is not an absolute path", path, o.socket)
	}
	return o, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strconv.QuoteToGraphic(s)
}

// applyDefaults fills what the address left out from the option file;
// what the address says wins. A password from MYSQL_PWD or
// COFFER_MYSQL_PASSWORD_FILE wins over the file's.
func (c *conn) applyDefaults(o *fileOptions, a addressParts) {
	if !a.user {
		c.user = o.user
	}
	if !a.host && c.socket == "" {
		switch {
		case o.socket != "" && (o.host == "" || o.host == "localhost"):
			c.socket = filepath.Clean(o.socket)
		case o.host != "" && o.host != "localhost":
			c.host = o.host
		}
	}
	if !a.port && o.port != 0 {
		c.port = o.port
	}
	if c.password == "" {
		c.password = o.password
	}
}

// addressParts says which parts the address itself gave.
type addressParts struct{ user, host, port bool }
