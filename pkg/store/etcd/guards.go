package etcd

import (
	"context"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// errRetry says that a guarded transaction failed because a record changed
// between the read that prepared it and its commit: read again.
var errRetry = errors.New("etcd: record changed meanwhile")

// guard is one compare of a transaction together with a read, run when the
// transaction fails, that tells whether this compare was the one that
// failed and with which error.
type guard struct {
	cmp  clientv3.Cmp
	read clientv3.Op
	fail func(*pb.RangeResponse) error // nil when the compare held
}

// absent guards that key does not exist; if it does, the transaction fails
// with err.
func absent(key string, err error) guard {
	return guard{
		cmp:  clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
		read: clientv3.OpGet(key, clientv3.WithCountOnly()),
		fail: func(r *pb.RangeResponse) error {
			if r.GetCount() > 0 {
				return err
			}
			return nil
		},
	}
}

// present guards that key exists; if not, the transaction fails with err.
func present(key string, err error) guard {
	return guard{
		cmp:  clientv3.Compare(clientv3.CreateRevision(key), ">", 0),
		read: clientv3.OpGet(key, clientv3.WithCountOnly()),
		fail: func(r *pb.RangeResponse) error {
			if r.GetCount() == 0 {
				return err
			}
			return nil
		},
	}
}

// unchanged guards that the record read as kv has not been written or
// removed since.
func unchanged(kv *mvccpb.KeyValue) guard {
	key := string(kv.Key)
	return guard{
		cmp:  clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision),
		read: clientv3.OpGet(key, clientv3.WithKeysOnly()),
		fail: func(r *pb.RangeResponse) error {
			if len(r.Kvs) == 0 || r.Kvs[0].ModRevision != kv.ModRevision {
				return errRetry
			}
			return nil
		},
	}
}

// unchangedRange guards that no key under prefix has been written since
// revision rev. Keys removed since do not fail it.
func unchangedRange(prefix string, rev int64) guard {
	return guard{
		cmp: clientv3.Compare(clientv3.ModRevision(prefix), "<", rev+1).WithPrefix(),
		read: clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
			clientv3.WithMinModRev(rev+1), clientv3.WithLimit(1)),
		fail: func(r *pb.RangeResponse) error {
			if len(r.Kvs) > 0 {
				return errRetry
			}
			return nil
		},
	}
}

// emptyRange guards that no key exists under prefix.
func emptyRange(prefix string) guard {
	return guard{
		cmp:  clientv3.Compare(clientv3.CreateRevision(prefix), "=", 0).WithPrefix(),
		read: clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()),
		fail: func(r *pb.RangeResponse) error {
			if r.GetCount() > 0 {
				return errRetry
			}
			return nil
		},
	}
}

// guarded commits then if every guard holds. Otherwise it returns the
// error of the first guard that failed, or errRetry when none did any
// more (a record changed and changed back).
func (s *Store) guarded(
	ctx context.Context,
	op string,
	guards []guard,
	then ...clientv3.Op,
) (*clientv3.TxnResponse, error) {
	cmps := make([]clientv3.Cmp, len(guards))
	reads := make([]clientv3.Op, len(guards))
	for i, g := range guards {
		cmps[i], reads[i] = g.cmp, g.read
	}
	tr, err := s.txn(ctx, op, cmps, then, reads)
	if err != nil {
		return nil, err
	}
	if tr.Succeeded {
		return tr, nil
	}
	for i, g := range guards {
		if err := g.fail(tr.Responses[i].GetResponseRange()); err != nil {
			return nil, err
		}
	}
	return nil, errRetry
}

// commitOnce commits a creation guarded by existence alone. Such a
// transaction fails for a reason its reads see again, unless a key was
// created and removed in between; then it is simply tried again.
func (s *Store) commitOnce(
	ctx context.Context,
	op string,
	guards []guard,
	then []clientv3.Op,
) error {
	for {
		_, err := s.guarded(ctx, op, guards, then...)
		if !errors.Is(err, errRetry) {
			return err
		}
	}
}

// checkPage refuses pages the interface calls invalid.
func checkPage(p store.Page) error {
	if p.Limit <= 0 || p.Offset < 0 {
		return fmt.Errorf("etcd: invalid page (offset %d, limit %d): limit must be positive, "+
			"offset not negative", p.Offset, p.Limit)
	}
	return nil
}

// page reads the entries under prefix at p, in key order, all at one
// revision, and returns them with how many entries there are and that
// revision. etcd has no offsets: the keys before the page are read, keys
// only, to find where it starts.
func (s *Store) page(
	ctx context.Context,
	op, prefix string,
	p store.Page,
) ([]*mvccpb.KeyValue, int, int64, error) {
	if err := checkPage(p); err != nil {
		return nil, 0, 0, err
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	for {
		kvs, total, rev, err := s.pageAt(ctx, op, prefix, end, p)
		if errors.Is(err, rpctypes.ErrCompacted) {
			continue // the revision was compacted between the reads
		}
		return kvs, total, rev, err
	}
}

func (s *Store) pageAt(
	ctx context.Context,
	op, prefix, end string,
	p store.Page,
) ([]*mvccpb.KeyValue, int, int64, error) {
	counted, err := s.get(ctx, op, prefix, clientv3.WithRange(end), clientv3.WithCountOnly())
	if err != nil {
		return nil, 0, 0, err
	}
	total, rev := int(counted.Count), counted.Header.Revision
	if p.Offset >= total {
		return nil, total, rev, nil
	}
	from := prefix
	if p.Offset > 0 {
		skipped, err := s.get(ctx, op, prefix, clientv3.WithRange(end), clientv3.WithKeysOnly(),
			clientv3.WithLimit(int64(p.Offset)), clientv3.WithRev(rev))
		if err != nil {
			return nil, 0, 0, err
		}
		from = string(skipped.Kvs[len(skipped.Kvs)-1].Key) + "\x00"
	}
	resp, err := s.get(ctx, op, from, clientv3.WithRange(end),
		clientv3.WithLimit(int64(p.Limit)), clientv3.WithRev(rev))
	if err != nil {
		return nil, 0, 0, err
	}
	return resp.Kvs, total, rev, nil
}

// getMany reads keys at revision rev and returns their values in order; an
// index entry whose record is missing at that revision is corruption. It
// returns errRetry when etcd compacted rev since it was read: the caller
// reads again at a new revision.
func (s *Store) getMany(
	ctx context.Context,
	op string,
	keys []string,
	rev int64,
) ([]*mvccpb.KeyValue, error) {
	out := make([]*mvccpb.KeyValue, 0, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), s.opts.MaxTxnOps)
		reads := make([]clientv3.Op, n)
		for i, k := range keys[:n] {
			reads[i] = clientv3.OpGet(k, clientv3.WithRev(rev))
		}
		resp, err := s.read(ctx, op, reads...)
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil, fmt.Errorf("%w: %w", errRetry, err)
		}
		if err != nil {
			return nil, err
		}
		for i, k := range keys[:n] {
			found := kvs(resp, i)
			if len(found) == 0 {
				return nil, fmt.Errorf("%w: an index names %q, which does not exist", errCorrupt, k)
			}
			out = append(out, found[0])
		}
		keys = keys[n:]
	}
	return out, nil
}

// pageRecords reads the page p of the index under prefix, whose values are
// ids, and the records they name (the key of each given by recordKey), all
// at one revision; a revision compacted between the reads is read again.
// It returns the records in index order and how many entries the index has.
func (s *Store) pageRecords(
	ctx context.Context,
	op, prefix string,
	p store.Page,
	recordKey func(id string) string,
) ([]*mvccpb.KeyValue, int, error) {
	for {
		entries, total, rev, err := s.page(ctx, op, prefix, p)
		if err != nil {
			return nil, 0, err
		}
		keys := make([]string, len(entries))
		for i, kv := range entries {
			keys[i] = recordKey(string(kv.Value))
		}
		records, err := s.getMany(ctx, op, keys, rev)
		if errors.Is(err, errRetry) {
			continue
		}
		return records, total, err
	}
}
