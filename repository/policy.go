package repository

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Roles are the least-privilege roles of DESIGN.md.
var Roles = []string{"writer", "maintainer", "restorer", "copier", "copy-source", "recovery"}

// rolePermissions says, per role, which S3 actions it needs on which of
// the repository's objects (names relative to the repository root; "*"
// inside a directory).
var rolePermissions = map[string]map[string][]string{
	"writer": {
		// read metadata (never data/), add data and metadata, keep reused
		// objects locked, release its own locks
		"s3:GetObject":           {"config", "keys/writer.age", "index/*", "snapshots/*", "chunklists/*", "locks/*", "prune/*", "audit/*", "drills/*"},
		"s3:PutObject":           {"data/*", "index/*", "snapshots/*", "chunklists/*", "locks/*", "audit/*"},
		"s3:GetObjectRetention":  {"data/*", "index/*", "chunklists/*"},
		"s3:PutObjectRetention":  {"data/*", "index/*", "chunklists/*"},
		"s3:DeleteObject":        {"locks/*"},
		"s3:DeleteObjectVersion": {"locks/*"},
	},
	"maintainer": {
		// the writer's reads, plus forget and prune: delete and rewrite
		// metadata, delete packs; still never read data/
		"s3:GetObject":           {"config", "keys/writer.age", "index/*", "snapshots/*", "chunklists/*", "locks/*", "prune/*", "audit/*", "drills/*"},
		"s3:PutObject":           {"index/*", "prune/*", "audit/*"},
		"s3:GetObjectRetention":  {"data/*", "index/*", "chunklists/*"},
		"s3:DeleteObject":        {"data/*", "index/*", "snapshots/*", "chunklists/*", "locks/*", "prune/*"},
		"s3:DeleteObjectVersion": {"data/*", "index/*", "snapshots/*", "chunklists/*", "locks/*", "prune/*"},
	},
	"copier": {
		// coffer copy at the destination, once it is initialised: a
		// writer's rights, plus storing the drill records, WAL objects and
		// copy records it carries; never read data/, never delete but its
		// own locks (docs/format.md, "Copies")
		"s3:GetObject":           {"config", "keys/writer.age", "index/*", "snapshots/*", "chunklists/*", "locks/*", "prune/*", "audit/*", "drills/*", "copies/*"},
		"s3:PutObject":           {"data/*", "index/*", "snapshots/*", "chunklists/*", "locks/*", "audit/*", "drills/*", "wal/*", "copies/*"},
		"s3:GetObjectRetention":  {"data/*", "index/*", "chunklists/*"},
		"s3:PutObjectRetention":  {"data/*", "index/*", "chunklists/*"},
		"s3:DeleteObject":        {"locks/*"},
		"s3:DeleteObjectVersion": {"locks/*"},
	},
	"copy-source": {
		// coffer copy at the source: read every object (ciphertext: the
		// writer key opens only metadata), hold a lock like a backup
		"s3:GetObject":           {"*"},
		"s3:PutObject":           {"locks/*"},
		"s3:DeleteObject":        {"locks/*"},
		"s3:DeleteObjectVersion": {"locks/*"},
	},
	"recovery": {
		// coffer undelete: read every version of every object and copy
		// old versions back as current ones (config and keys included,
		// retained under Object Lock), hide newer objects behind delete
		// markers; never delete a version, so history stays whole
		"s3:GetObject":          {"*"},
		"s3:GetObjectVersion":   {"*"},
		"s3:PutObject":          {"*"},
		"s3:PutObjectRetention": {"*"},
		"s3:DeleteObject":       {"*"},
	},
	"restorer": {
		// read everything, record restores and drills
		"s3:GetObject": {"*"},
		"s3:PutObject": {"audit/*", "drills/*"},
	},
}

// PolicyOptions adapt BucketPolicy to the server's policy engine.
type PolicyOptions struct {
	// IfNoneMatch makes every PutObject the role is given conditional on
	// the request carrying If-None-Match (condition key s3:if-none-match,
	// which AWS S3 knows), and denies PutObject without it outright, so the
	// role can add objects but never replace one. Every object a role puts
	// is named after its content and put conditionally by coffer, so
	// nothing coffer does is refused. Leave it off for servers whose policy
	// engine rejects the key (MinIO, as of the pinned release): there the
	// bucket must be versioned or locked instead (README).
	IfNoneMatch bool
}

// replacesObjects are the roles whose puts replace objects on purpose
// (undelete copies an old version over the current one): their PutObject
// carries no If-None-Match condition.
var replacesObjects = map[string]bool{"recovery": true}

// ifNoneMatchKey is the condition key of a PUT's If-None-Match header.
const ifNoneMatchKey = "s3:if-none-match"

// BucketPolicy returns the minimal S3 policy (IAM JSON) for role on the
// repository at bucket/prefix.
func BucketPolicy(role, bucket, prefix string, opts PolicyOptions) (string, error) {
	perms, ok := rolePermissions[role]
	if !ok {
		return "", fmt.Errorf("unknown role %q: choose %s", role, strings.Join(Roles, ", "))
	}
	root := bucket
	if p := strings.Trim(prefix, "/"); p != "" {
		root += "/" + p
	}
	type statement struct {
		Sid       string         `json:"Sid"`
		Effect    string         `json:"Effect"`
		Action    []string       `json:"Action"`
		Resource  []string       `json:"Resource"`
		Condition map[string]any `json:"Condition,omitempty"`
	}
	listPrefix := strings.TrimPrefix(root, bucket+"/")
	if listPrefix == bucket {
		listPrefix = ""
	}
	stmts := []statement{
		{Sid: "ListRepository", Effect: "Allow", Action: []string{"s3:ListBucket", "s3:ListBucketVersions"},
			Resource: []string{"arn:aws:s3:::" + bucket}},
		{Sid: "ReadBucketSettings", Effect: "Allow", Action: []string{"s3:GetBucketLocation", "s3:GetBucketObjectLockConfiguration"},
			Resource: []string{"arn:aws:s3:::" + bucket}},
	}
	if listPrefix != "" {
		stmts[0].Condition = map[string]any{"StringLike": map[string]any{"s3:prefix": []string{listPrefix, listPrefix + "/*"}}}
	}
	actions := make([]string, 0, len(perms))
	for a := range perms {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	// Actions on the same objects share a statement, which keeps the
	// policy within the 2048 characters of an STS session policy.
	var grouped []string
	same := map[string][]string{}
	for _, a := range actions {
		k := strings.Join(perms[a], " ")
		if a == "s3:PutObject" {
			k = a // its conditions are its own
		}
		if same[k] == nil {
			grouped = append(grouped, k)
		}
		same[k] = append(same[k], a)
	}
	for _, k := range grouped {
		a, sid := same[k][0], ""
		for _, x := range same[k] {
			sid += strings.TrimPrefix(x, "s3:")
		}
		var res []string
		for _, o := range perms[a] {
			res = append(res, "arn:aws:s3:::"+root+"/"+o)
		}
		st := statement{Sid: sid, Effect: "Allow", Action: same[k], Resource: res}
		if a == "s3:PutObject" && opts.IfNoneMatch && !replacesObjects[role] {
			// Allow only puts that carry the header, and deny the others
			// explicitly, so that no broader grant elsewhere lets this role
			// replace an object. Locks are the exception: a backup
			// refreshes its lock by storing it again under its name, so
			// that the storage's time says when (docs/format.md).
			var locks, rest []string
			for _, r := range res {
				if strings.HasSuffix(r, "/locks/*") {
					locks = append(locks, r)
				} else {
					rest = append(rest, r)
				}
			}
			if len(locks) > 0 {
				stmts = append(stmts, statement{Sid: "PutObjectLocks", Effect: "Allow", Action: []string{a}, Resource: locks})
			}
			st.Resource = rest
			st.Condition = map[string]any{"Null": map[string]any{ifNoneMatchKey: "false"}}
			stmts = append(stmts, st, statement{Sid: "DenyPutObjectWithoutIfNoneMatch", Effect: "Deny", Action: []string{a}, Resource: rest,
				Condition: map[string]any{"Null": map[string]any{ifNoneMatchKey: "true"}}})
			continue
		}
		stmts = append(stmts, st)
	}
	b, err := json.MarshalIndent(map[string]any{"Version": "2012-10-17", "Statement": stmts}, "", "  ")
	return string(b), err
}
