package pitr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/repository"
)

// Target is where recovery stops. At most one of Time, LSN, Name and XID is
// set; none recovers to the end of the archived WAL.
type Target struct {
	Time   time.Time
	LSN    string
	Name   string
	XID    string
	Action string // promote (default), pause or shutdown
	// Timeline is the timeline recovery follows: latest (the default: the
	// newest in the archive's history files), current (the base backup's)
	// or a timeline's number.
	Timeline string
}

var (
	lsnPattern = regexp.MustCompile(`^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$`)
	xidPattern = regexp.MustCompile(`^[0-9]{1,20}$`)
)

// Check validates the target's values.
func (t Target) Check() error {
	n := 0
	for _, set := range []bool{!t.Time.IsZero(), t.LSN != "", t.Name != "", t.XID != ""} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return errors.New("give one of --target-time, --target-lsn, --target-name and --target-xid")
	case t.LSN != "" && !lsnPattern.MatchString(t.LSN):
		return fmt.Errorf("--target-lsn %q: give a WAL location such as 0/3000060", t.LSN)
	case t.XID != "" && !xidPattern.MatchString(t.XID):
		return fmt.Errorf("--target-xid %q: give a transaction id (digits)", t.XID)
	case strings.ContainsFunc(t.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(t.Name) > 63:
		return errors.New("--target-name: a restore point name has at most 63 characters and no control characters")
	}
	if tl := t.Timeline; tl != "" && tl != "latest" && tl != "current" {
		if n, err := strconv.ParseUint(tl, 10, 32); err != nil || n == 0 || strconv.FormatUint(n, 10) != tl {
			return fmt.Errorf("--target-timeline %q: give latest, current or a timeline's number", tl)
		}
	}
	switch t.Action {
	case "pause", "shutdown":
		if !t.HasPoint() {
			return fmt.Errorf("--target-action %s needs a target (--target-time, --target-lsn, --target-name or --target-xid): without one, recovery replays all the archived WAL and then promotes", t.Action)
		}
		return nil
	case "", "promote":
		return nil
	}
	return fmt.Errorf("--target-action %q: give promote, pause or shutdown", t.Action)
}

func (t Target) timeline() string {
	if t.Timeline == "" {
		return "latest"
	}
	return t.Timeline
}

// quote makes s a postgresql.conf string value.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// WALDir is the directory inside the data directory where the WAL that
// recovery replays is fetched: the server's restore_command copies from
// it, so the server needs neither the repository nor an identity.
const WALDir = "coffer_wal"

// Server is how the restored server is reached: its port (above zero:
// the server's port), the operating-system user that runs it and the
// cluster's superuser, whom that user may log in as. Empty names map
// nobody to anyone else.
type Server struct {
	Port      int
	OSUser    string
	Superuser string
}

// maxSocketDir is the longest directory a server's Unix socket can be in:
// sun_path holds 108 bytes, and the socket's name is /.s.PGSQL.NNNNN.
const maxSocketDir = 107 - len("/.s.PGSQL.65535")

// Configure writes the restored server's configuration: postgresql.conf
// (the backup's own is set aside, see Extract), an empty
// postgresql.auto.conf, a pg_hba.conf that lets only local users in as
// themselves (and srv.OSUser as srv.Superuser), the recovery settings and
// recovery.signal. The server listens on no TCP address, and its only
// socket is in dir itself, mode 0700: only dir's owner (and root) can
// reach it.
func Configure(dir string, t Target, srv Server) error {
	if err := t.Check(); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if len(abs) > maxSocketDir {
		return fmt.Errorf("restore --pgdata %s: the restored server's socket is in its data directory, and this path is %d bytes long, more than a Unix socket's path allows (%d): give a shorter path", dir, len(abs), maxSocketDir)
	}
	for _, name := range []string{srv.OSUser, srv.Superuser} {
		if name != "" && !repository.ValidRoleName(name) {
			return fmt.Errorf("restore --pgdata: %q is not a user name coffer writes into pg_ident.conf (letters, digits, _ . $ -, at most 63)", name)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by coffer restore --pgdata. The backup's own configuration is in\n")
	fmt.Fprintf(&b, "# postgresql.conf%s (not used: it came from the backup host).\n", setAsideSuffix)
	fmt.Fprintf(&b, "listen_addresses = ''\nunix_socket_directories = %s\nunix_socket_permissions = 0700\n", quote(abs))
	fmt.Fprintf(&b, "archive_mode = off\nhot_standby = on\nlc_messages = 'C'\n")
	if srv.Port > 0 {
		fmt.Fprintf(&b, "port = %d\n", srv.Port)
	}
	fmt.Fprintf(&b, "restore_command = %s\n", quote(`cp "`+WALDir+`/%f" "%p"`))
	fmt.Fprintf(&b, "recovery_target_timeline = %s\n", quote(t.timeline()))
	switch {
	case !t.Time.IsZero():
		fmt.Fprintf(&b, "recovery_target_time = %s\n", quote(t.Time.UTC().Format("2006-01-02 15:04:05.999999")+"+00"))
	case t.LSN != "":
		fmt.Fprintf(&b, "recovery_target_lsn = %s\n", quote(t.LSN))
	case t.Name != "":
		fmt.Fprintf(&b, "recovery_target_name = %s\n", quote(t.Name))
	case t.XID != "":
		fmt.Fprintf(&b, "recovery_target_xid = %s\n", quote(t.XID))
	}
	fmt.Fprintf(&b, "recovery_target_action = %s\n", quote(t.action()))
	ident := "# Written by coffer restore --pgdata: each local user as the role of its name\ncoffer /^(.*)$ \\1\n"
	if srv.OSUser != "" && srv.Superuser != "" {
		ident += fmt.Sprintf("# and the server's user as the cluster's superuser\ncoffer \"%s\" \"%s\"\n", srv.OSUser, srv.Superuser)
	}
	for name, content := range map[string]string{
		"postgresql.conf":      b.String(),
		"postgresql.auto.conf": "# Written by coffer restore --pgdata.\n",
		"pg_hba.conf":          "# Written by coffer restore --pgdata: local connections, as the operating-system user only.\nlocal all all peer map=coffer\n",
		"pg_ident.conf":        ident,
		"recovery.signal":      "",
	} {
		err := atomicfile.Write(filepath.Join(dir, name), atomicfile.Options{NoReplace: true}, func(w io.Writer) error {
			_, err := io.WriteString(w, content)
			return err
		})
		if err != nil {
			return fmt.Errorf("restore --pgdata: write %s: %w", name, err)
		}
	}
	return nil
}

func (t Target) action() string {
	if t.Action == "" {
		return "promote"
	}
	return t.Action
}

// HasPoint reports whether the target names a point (a time, LSN, name or
// transaction) rather than the end of the archive.
func (t Target) HasPoint() bool {
	return !t.Time.IsZero() || t.LSN != "" || t.Name != "" || t.XID != ""
}

// Fetched is what FetchWAL fetched.
type Fetched struct {
	Files int
	Bytes int64
	Path  repository.Path // the timelines recovery follows
}

// FetchWAL fetches from the archive every WAL file recovery from the base
// backup may replay into dir/coffer_wal: the timeline history files, each
// checked and parsed, and the segments from the backup's first one on
// along the timelines recovery follows to the timeline t.Timeline names
// (latest by default). A timeline it cannot follow is an error that says
// why, before anything is replayed.
func FetchWAL(ctx context.Context, repo *repository.Repo, snapshot string, info *repository.PhysicalInfo, dir string, timeline string) (Fetched, error) {
	var got Fetched
	seg, err := info.Check(snapshot)
	if err != nil {
		return got, err
	}
	_, start, _ := seg.Parse(info.StartWAL)
	files, _, err := repo.WALFiles(ctx)
	if err != nil {
		return got, err
	}
	tls, err := repo.LoadTimelines(ctx, files)
	if err != nil {
		return got, err
	}
	if got.Path, err = repository.RecoveryPath(seg, info, tls, timeline); err != nil {
		return got, err
	}
	wd := filepath.Join(dir, WALDir)
	if err := os.Mkdir(wd, 0o700); err != nil {
		return got, fmt.Errorf("restore --pgdata: %w", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f.File] || !needed(seg, got.Path, f.File, start) {
			continue
		}
		seen[f.File] = true
		content, err := repo.FetchWAL(ctx, f.File)
		if err != nil {
			return got, fmt.Errorf("fetch WAL file %s: %w", f.File, err)
		}
		err = atomicfile.Write(filepath.Join(wd, f.File), atomicfile.Options{NoReplace: true}, func(w io.Writer) error {
			_, err := w.Write(content)
			return err
		})
		if err != nil {
			return got, err
		}
		got.Files++
		got.Bytes += int64(len(content))
	}
	return got, nil
}

// needed reports whether recovery from a backup starting at segment start
// along path may read the WAL file named file: a history file, or a
// segment from the start on, of the timeline path reads it from.
func needed(seg repository.WALSegments, path repository.Path, file string, start uint64) bool {
	if strings.HasSuffix(file, ".history") {
		return true
	}
	tl, n, ok := seg.Parse(file) // .partial and .backup files are not replayed
	return ok && n >= start && tl == path.TimelineOf(n)
}
