package auditlog_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/auditlog"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage/local"
)

// TestVerifyForkPastHead: a record naming the head's predecessor (an
// append concurrent with the head) extends the log; one naming an older
// record forks it from before the head and is refused.
func TestVerifyForkPastHead(t *testing.T) {
	ctx := context.Background()
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.New(t, be, repository.InitOptions{})
	var ids []string
	for _, ev := range []string{"backup", "backup", "backup"} {
		rec := &repository.AuditRecord{Event: ev}
		if err := r.Writer.AppendAudit(ctx, rec); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID().String())
	}
	key, _ := r.Restorer.AuditPublicKey()
	verify := func(pin *auditlog.Pin) *auditlog.Report {
		t.Helper()
		recs, problems, err := r.Restorer.AuditLog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return auditlog.Verify(auditlog.Input{Records: recs, Problems: problems, Key: key, Pin: pin})
	}
	first := verify(nil)
	if len(first.Problems) != 0 || first.Head == nil || first.Head.ID != ids[2] {
		t.Fatalf("first verification: %+v", first)
	}
	first.Head.Verified = time.Now()
	pin := &auditlog.Pin{Head: first.Head}

	if err := r.Writer.AppendAudit(ctx, &repository.AuditRecord{Event: "backup", Prev: ids[1]}); err != nil {
		t.Fatal(err)
	}
	if rep := verify(pin); len(rep.Problems) != 0 || rep.Since != 1 {
		t.Fatalf("a concurrent append beside the head: %+v", rep.Problems)
	}
	if err := r.Writer.AppendAudit(ctx, &repository.AuditRecord{Event: "backup", Prev: ids[0]}); err != nil {
		t.Fatal(err)
	}
	rep := verify(pin)
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Reason, "does not descend from it") {
		t.Fatalf("a fork from before the head: %+v", rep.Problems)
	}
}
