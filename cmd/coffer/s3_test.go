package main_test

import (
	"testing"

	"github.com/coffer-backup/coffer/internal/testminio"
)

// TestCLIRoundTripMinIO200MB: 200 MB through the CLI into a real MinIO
// bucket and back, byte-identical.
func TestCLIRoundTripMinIO200MB(t *testing.T) {
	m := testminio.Server(t)
	c := newCLI(t, "", m.Env(m.Bucket(t, false), "customers/prod")...)
	cliRoundTrip(t, c, 200<<20)
}

func TestFaultUnreachableS3(t *testing.T) {
	endpoint := testminio.ClosedEndpoint(t)
	c := newCLI(t, "s3://backups/customers", "COFFER_S3_ENDPOINT="+endpoint,
		"AWS_ACCESS_KEY_ID=test-access", "AWS_SECRET_ACCESS_KEY=test-secret")
	mustContain(t, "init against an unreachable endpoint", c.fail(nil, "init"), endpoint, "COFFER_S3_ENDPOINT")
	mustContain(t, "snapshots against an unreachable endpoint", c.fail(nil, "snapshots"), endpoint)
}

func TestFaultWrongS3Credentials(t *testing.T) {
	m := testminio.Server(t)
	c := newCLI(t, "", m.Env(m.Bucket(t, false), "x")...)
	c.init()
	bad := c.with("AWS_SECRET_ACCESS_KEY=not-the-secret")
	mustContain(t, "snapshots with a wrong secret", bad.fail(nil, "snapshots"), "AWS_SECRET_ACCESS_KEY")
}
