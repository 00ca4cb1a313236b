package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{Dir: t.TempDir(), Customers: 3000, Out: &out, Tool: "coffer test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if !res.Verified || len(res.Restore.Tables) != 3 {
		t.Fatalf("demo did not verify: %+v", res.Restore.Tables)
	}
	if res.Night2.BytesStored >= res.Night1.BytesStored {
		t.Errorf("night 2 stored %d bytes, night 1 %d: no deduplication", res.Night2.BytesStored, res.Night1.BytesStored)
	}
	if res.Drill == nil || !res.Drill.Passed || len(res.Drill.Runs) != 2 {
		t.Fatalf("the demo's drill: %+v", res.Drill)
	}
	for _, want := range []string{"night 1", "night 2", "customers", "orders", "payments", "equal the backup", "drill      PASSED"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's story does not mention %q", want)
		}
	}
}
