package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Snapshot is the content of a `snapshots/ID` object.
type Snapshot struct {
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host"`
	Source  string    `json:"source"`
	Tags    []string  `json:"tags,omitempty"`
	Engine  string    `json:"engine"`
	Format  string    `json:"format"`
	// ServerVersion and Databases describe a database source.
	ServerVersion string   `json:"server_version,omitempty"`
	Databases     []string `json:"databases,omitempty"`
	Tool          string   `json:"tool"`
	Size          int64    `json:"size"`
	Stored        int64    `json:"stored"`
	ChunksNew     int      `json:"chunks_new"`
	ChunksTotal   int      `json:"chunks_total"`
	Digest        ID       `json:"digest"`
	// Lists are the chunk lists holding the stream's chunk ids, in order
	// (version 2); Chunks are the ids themselves (version 1). Read them
	// with Repo.SnapshotChunks.
	Lists  []ID `json:"lists,omitempty"`
	Chunks []ID `json:"chunks,omitempty"`
	// Private is an age file to the repository key holding what is derived
	// from customer rows (per-table digests).
	Private []byte `json:"private,omitempty"`
	// AuditHead is the id of the newest audit record when the backup wrote
	// the snapshot (absent in older snapshots): a snapshot newer than a
	// record shows that the record existed.
	AuditHead string `json:"audit_head,omitempty"`
	// Physical describes a physical base backup (engine postgres-physical):
	// the WAL range recovery needs. Absent for logical backups.
	Physical *PhysicalInfo `json:"physical,omitempty"`

	id ID
}

// ID returns the snapshot's id (zero until saved or loaded).
func (s *Snapshot) ID() ID { return s.id }

// SnapshotVersion is the version of the snapshots this code writes:
// version 2 names chunk lists, version 1 (still read) holds the chunk ids.
const SnapshotVersion = 2

// SaveSnapshot stores a snapshot and sets its id. A snapshot with Chunks
// and no Lists is stored as version 1, any other as version 2.
func (r *Repo) SaveSnapshot(ctx context.Context, s *Snapshot) (ID, error) {
	s.Version = SnapshotVersion
	if len(s.Chunks) > 0 && len(s.Lists) == 0 {
		s.Version = 1
	}
	id, err := r.saveMeta(ctx, "snapshot", "snapshots", s, true)
	if err == nil {
		s.id = id
	}
	return id, err
}

// SealPrivate encrypts v as JSON to the repository key, for Snapshot.Private
// and the private part of other records (a drill's full report): a writer
// can seal but not open it.
func (r *Repo) SealPrivate(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return encrypt(compressMeta(nil, b), r.wk.Recipient)
}

// OpenPrivate decrypts a snapshot's private part into v.
func (r *Repo) OpenPrivate(s *Snapshot, v any) error {
	return r.OpenSealed("snapshots/"+s.id.String()+" (private part)", s.Private, v)
}

// OpenSealed decrypts what SealPrivate sealed into v; object names it in
// errors. It needs the repository key (ErrNeedIdentity without it).
func (r *Repo) OpenSealed(object string, sealed []byte, v any) error {
	if r.data == nil {
		return ErrNeedIdentity
	}
	c, err := decrypt(object, sealed, r.dataIdentities()...)
	if err != nil {
		return err
	}
	b, err := decompressMeta(c)
	if err != nil {
		return &CorruptError{Object: object, Reason: "decompression refused", Err: err}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &CorruptError{Object: object, Reason: "malformed JSON", Err: err}
	}
	return nil
}

// LoadSnapshot reads and authenticates one snapshot.
func (r *Repo) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	name := "snapshots/" + id.String()
	var s Snapshot
	err := r.loadMeta(ctx, "snapshot", "snapshots", id, &s)
	if isNotFound(err) {
		return nil, fmt.Errorf("snapshot %s not found in %s: list snapshots with `coffer snapshots`: %w", id.Short(), r.be.Location(), err)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case s.Version < 1 || s.Version > SnapshotVersion:
		return nil, &UnsupportedVersionError{Object: name, Version: s.Version}
	case s.Version == 1 && len(s.Lists) > 0, s.Version >= 2 && len(s.Chunks) > 0:
		return nil, &CorruptError{Object: name, Reason: fmt.Sprintf("a version %d snapshot with both chunk ids and chunk lists", s.Version)}
	case s.ChunksTotal < 0 || s.Version == 1 && len(s.Chunks) != s.ChunksTotal:
		return nil, &CorruptError{Object: name, Reason: fmt.Sprintf("it holds %d chunk ids and says chunks_total is %d", len(s.Chunks), s.ChunksTotal)}
	}
	s.id = id
	return &s, nil
}

// Snapshots loads every snapshot, oldest first. Snapshots that fail to
// load are left out of the list and reported in a *DamagedError, so that a
// listing shows what is intact without hiding what is not.
func (r *Repo) Snapshots(ctx context.Context) ([]*Snapshot, error) {
	ids, err := r.ListIDs(ctx, "snapshots")
	if err != nil {
		return nil, err
	}
	loaded := make([]*Snapshot, len(ids))
	errs := make([]error, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, id := range ids {
		g.Go(func() error {
			loaded[i], errs[i] = r.LoadSnapshot(gctx, id)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []*Snapshot
	damaged := &DamagedError{}
	for i, s := range loaded {
		if isNotFound(errs[i]) {
			continue // forgotten since the listing
		}
		if errs[i] != nil {
			damaged.Errs = append(damaged.Errs, errs[i])
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].id.String() < out[j].id.String()
	})
	if len(damaged.Errs) > 0 {
		return out, damaged
	}
	return out, nil
}

// DamagedError lists the objects that could not be loaded.
type DamagedError struct{ Errs []error }

func (e *DamagedError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// FindSnapshot resolves "latest", a full id, or a unique id prefix, among
// the snapshots of source (any source when empty). For "latest", a
// snapshot object that cannot be read is skipped and passed to the
// function given to SetWarn: it is someone else's (junk) or damaged, and
// must not stop the restore of every source.
func (r *Repo) FindSnapshot(ctx context.Context, ref, source string) (*Snapshot, error) {
	if ref == "latest" || ref == "" {
		all, err := r.Snapshots(ctx)
		var damaged *DamagedError
		if errors.As(err, &damaged) {
			// One junk or damaged object must not stop every source's
			// restore: skip it, and say so.
			for _, e := range damaged.Errs {
				if r.warn != nil {
					r.warn(e)
				}
			}
		} else if err != nil {
			return nil, err
		}
		for i := len(all) - 1; i >= 0; i-- {
			if source == "" || all[i].Source == source {
				return all[i], nil
			}
		}
		if source != "" {
			return nil, fmt.Errorf("no snapshot of source %q in %s: list sources with `coffer snapshots`", source, r.be.Location())
		}
		return nil, fmt.Errorf("no snapshots in %s yet: run `coffer backup` first", r.be.Location())
	}
	ids, err := r.ListIDs(ctx, "snapshots")
	if err != nil {
		return nil, err
	}
	var match []ID
	for _, id := range ids {
		if strings.HasPrefix(id.String(), strings.ToLower(ref)) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("no snapshot %q in %s: list them with `coffer snapshots`", ref, r.be.Location())
	case 1:
		s, err := r.LoadSnapshot(ctx, match[0])
		if err == nil && source != "" && s.Source != source {
			return nil, fmt.Errorf("snapshot %s is of source %q, not %q: give a snapshot of %q (coffer snapshots --source %s), or leave out --source",
				s.ID().Short(), s.Source, source, source, source)
		}
		return s, err
	default:
		return nil, fmt.Errorf("snapshot prefix %q is ambiguous (%d matches): give more digits", ref, len(match))
	}
}

// DeleteSnapshot removes a snapshot (forget). Its chunks stay until prune.
func (r *Repo) DeleteSnapshot(ctx context.Context, id ID) error {
	if err := r.be.Delete(ctx, "snapshots/"+id.String()); err != nil {
		return fmt.Errorf("forget snapshot %s: %w", id.Short(), err)
	}
	return nil
}

// PhysicalInfo is what a physical base backup of PostgreSQL records for
// recovery (docs/format.md, "Physical base backups").
type PhysicalInfo struct {
	SystemIdentifier string `json:"system_identifier"`
	Timeline         int    `json:"timeline"`
	StartLSN         string `json:"start_lsn"`
	StartWAL         string `json:"start_wal"` // the first WAL file recovery needs
	StopLSN          string `json:"stop_lsn"`  // recovery replays at least to here
	WALSegmentSize   int64  `json:"wal_segment_size"`
	// Superuser is the cluster's bootstrap superuser (the role of oid 10,
	// initdb's), and ServerVersionNum the server's server_version_num;
	// both empty in snapshots taken before coffer recorded them.
	Superuser        string `json:"superuser,omitempty"`
	ServerVersionNum int    `json:"server_version_num,omitempty"`
	// Tablespaces are the server's user tablespaces, in the order of
	// their parts in the stream (none for a server without any).
	Tablespaces []Tablespace `json:"tablespaces,omitempty"`
}
