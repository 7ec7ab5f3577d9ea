package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// deletion is one live/ key deleted in a revision, with its value before.
// The value is nil when etcd no longer had it.
type deletion struct {
	key, prev []byte
}

// change is what one revision did to the live/ keys, as far as the event
// stream is concerned.
type change struct {
	rev      int64
	sessions []deletion // session records
	certs    []deletion // certificate records
	cause    *causeRecord
}

// classify adds one watched deletion to ch. The watch delivers deletions
// only; anything else is ignored.
func (s *Store) classify(ch *change, e *clientv3.Event) {
	if e.Type != mvccpb.DELETE {
		return
	}
	key := string(e.Kv.Key)
	switch {
	case strings.HasPrefix(key, s.k.sessions):
		ch.sessions = append(ch.sessions, deletion{key: e.Kv.Key, prev: prevValue(e.PrevKv)})
	case strings.HasPrefix(key, s.k.certs):
		ch.certs = append(ch.certs, deletion{key: e.Kv.Key, prev: prevValue(e.PrevKv)})
	}
}

// removes reports whether ch removed a session or a certificate, and so
// needs its cause.
func (ch *change) removes() bool { return len(ch.sessions) > 0 || len(ch.certs) > 0 }

func prevValue(kv *mvccpb.KeyValue) []byte {
	if kv == nil {
		return nil
	}
	return kv.Value
}

// group splits watched events, which come in revision order, into one
// change per revision; a revision without any interesting key still gets
// one, so that readers of the watch know how far it has come.
func (s *Store) group(evs []*clientv3.Event) []change {
	var out []change
	for _, e := range evs {
		if len(out) == 0 || out[len(out)-1].rev != e.Kv.ModRevision {
			out = append(out, change{rev: e.Kv.ModRevision})
		}
		s.classify(&out[len(out)-1], e)
	}
	return out
}

// readCauses fills in the cause of every change that removed something:
// the value of live/cause as of the change's revision, if that revision
// wrote it. The reads of up to MaxTxnOps revisions share one round trip. A
// revision etcd has compacted meanwhile keeps no cause and is reported; its
// events then read as lease expiries would, with their fingerprints. Other
// errors are returned: the caller reads the changes again.
func (s *Store) readCauses(ctx context.Context, changes []change, report func(error)) error {
	var todo []*change
	for i := range changes {
		if changes[i].removes() {
			todo = append(todo, &changes[i])
		}
	}
	for len(todo) > 0 {
		n := min(len(todo), s.opts.MaxTxnOps)
		if err := s.causesOf(ctx, todo[:n], report); err != nil {
			return err
		}
		todo = todo[n:]
	}
	return nil
}

// causesOf reads the causes of changes, at most MaxTxnOps, in one read.
func (s *Store) causesOf(ctx context.Context, changes []*change, report func(error)) error {
	reads := make([]clientv3.Op, len(changes))
	for i, ch := range changes {
		reads[i] = clientv3.OpGet(s.k.cause, clientv3.WithRev(ch.rev))
	}
	resp, err := s.read(ctx, "read removal causes", reads...)
	switch {
	case errors.Is(err, rpctypes.ErrCompacted) && len(changes) == 1:
		report(fmt.Errorf("etcd: cause of the removal at revision %d: %w", changes[0].rev, err))
		return nil
	case errors.Is(err, rpctypes.ErrCompacted):
		// One at a time, so that the revisions still kept keep their cause.
		for _, ch := range changes {
			if err := s.causesOf(ctx, []*change{ch}, report); err != nil {
				return err
			}
		}
		return nil
	case err != nil:
		return err
	}
	for i, ch := range changes {
		found := kvs(resp, i)
		if len(found) == 0 || found[0].ModRevision != ch.rev {
			continue // no Store wrote a cause: a lease expiry
		}
		var c causeRecord
		if err := decode(found[0].Key, found[0].Value, &c); err != nil {
			report(err)
			continue
		}
		ch.cause = &c
	}
	return nil
}

// derive turns one revision's change into its events: one apiSessionRemoved
// per deleted session record, naming the certificate records deleted with
// it, and one certificateDeleted per session that lost certificates alone.
// Only a removal no Store made (an operator's own delete) can produce more
// than one event in a revision. The cause comes from live/cause written in
// the same revision; without it a session was removed by its lease: cause
// expiry, at the session's ExpiresAt.
func (s *Store) derive(ch change, report func(error)) []store.Event {
	cursor := uint64(ch.rev) //nolint:gosec // G115: revisions are positive
	byID := make(map[string]*store.Event)
	for _, d := range ch.sessions {
		id, _ := rest(d.key, s.k.sessions)
		ev := &store.Event{
			Cursor:       cursor,
			Type:         store.EventAPISessionRemoved,
			APISessionID: id,
			Cause:        store.CauseExpiry,
		}
		var rec sessionRecord
		if d.prev == nil {
			report(fmt.Errorf("%w: removed session %q has no previous value", errCorrupt, id))
		} else if err := decode(d.key, d.prev, &rec); err != nil {
			report(err)
		}
		ev.IdentityID, ev.At = rec.IdentityID, rec.ExpiresAt
		if ch.cause != nil && !ch.cause.Quiet {
			ev.Cause, ev.At = store.Cause(ch.cause.Cause), ch.cause.At
		}
		byID[id] = ev
	}

	for _, d := range ch.certs {
		sessionID, fp, ok := split2(strings.TrimPrefix(string(d.key), s.k.certs))
		if !ok {
			report(fmt.Errorf("%w: certificate key %q", errCorrupt, d.key))
			continue
		}
		ev := byID[sessionID]
		if ev == nil {
			if ch.cause != nil && ch.cause.Quiet {
				continue
			}
			ev = &store.Event{
				Cursor:       cursor,
				Type:         store.EventCertificateDeleted,
				APISessionID: sessionID,
				Cause:        store.CauseDeleted,
			}
			if ch.cause != nil {
				ev.Cause, ev.At, ev.IdentityID = store.Cause(ch.cause.Cause), ch.cause.At,
					ch.cause.IdentityID
			}
			if ev.IdentityID == "" && d.prev != nil {
				var rec certificateRecord
				if err := decode(d.key, d.prev, &rec); err == nil {
					ev.IdentityID = rec.IdentityID
				}
			}
			byID[sessionID] = ev
		}
		ev.Fingerprints = append(ev.Fingerprints, fp)
	}

	out := make([]store.Event, 0, len(byID))
	for _, ev := range byID {
		out = append(out, *ev)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].APISessionID < out[j].APISessionID })
	return out
}

// eventBuffer is the newest events of the stream, in memory. It holds every
// event with a cursor after floor, up to the revision seen; events at or
// before floor were either dropped (replayable false) or never read from
// etcd's history (replayable true: a replay may add them).
type eventBuffer struct {
	history    int
	events     []store.Event // oldest first, all after floor
	floor      int64
	replayable bool
	opened     int64 // revision of this Store's mark, where its watch started
	seen       int64 // newest revision the watch has processed
	changed    chan struct{}
	done       chan struct{}
}

func newEventBuffer(history int) eventBuffer {
	return eventBuffer{
		history: history,
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// start makes the buffer begin, empty, at the revision Open wrote.
func (b *eventBuffer) start(rev int64) {
	b.floor, b.opened, b.seen, b.replayable = rev, rev, rev, true
}

// close wakes every waiter for good.
func (b *eventBuffer) close() { close(b.done) }

// wake wakes every waiter; they check again whether what they wait for has
// arrived.
func (b *eventBuffer) wake() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// add appends the events of revision rev, which is newer than any before,
// and drops the oldest ones beyond the history.
func (b *eventBuffer) add(rev int64, evs []store.Event) {
	b.events = append(b.events, evs...)
	b.seen = max(b.seen, rev)
	if over := len(b.events) - b.history; over > 0 {
		// Never keep part of a revision: its events share one cursor.
		last := b.events[over-1].Cursor
		for over < len(b.events) && b.events[over].Cursor == last {
			over++
		}
		b.floor = int64(last) //nolint:gosec // G115: cursors are revisions
		b.replayable = false
		// Copy rather than reslice now and then, so that the dropped
		// events do not stay reachable through the backing array.
		if cap(b.events) > 4*b.history+64 {
			b.events = slices.Clone(b.events[over:])
		} else {
			b.events = b.events[over:]
		}
	}
	b.wake()
}

// lost records that the watch missed every revision before compacted:
// cursors before it are expired, and the stream resumes there.
func (b *eventBuffer) lost(compacted int64) {
	b.events = nil
	b.floor = max(b.floor, compacted-1)
	b.seen = max(b.seen, compacted-1)
	b.replayable = false
	b.wake()
}

// prepend adds the replayed events after floor, which are older than every
// buffered one, and lowers the floor to floor.
func (b *eventBuffer) prepend(evs []store.Event, floor int64) {
	b.events = append(slices.Clone(evs), b.events...)
	b.floor = floor
}

// newest returns the cursor of the newest buffered event, or 0.
func (b *eventBuffer) newest() int64 {
	if len(b.events) == 0 {
		return 0
	}
	return int64(b.events[len(b.events)-1].Cursor) //nolint:gosec // G115: cursors are revisions
}

// after returns copies of up to limit buffered events after cursor a, more
// when the limit falls inside a revision, which is never split.
func (b *eventBuffer) after(a int64, limit int) []store.Event {
	i := sort.Search(len(b.events), func(i int) bool {
		return int64(b.events[i].Cursor) > a //nolint:gosec // G115: cursors are revisions
	})
	var out []store.Event
	for ; i < len(b.events); i++ {
		e := b.events[i]
		if len(out) >= limit && e.Cursor != out[len(out)-1].Cursor {
			break
		}
		e.Fingerprints = slices.Clone(e.Fingerprints)
		out = append(out, e)
	}
	return out
}

// watch follows the live/ keys from revision from until Close, restarting
// the etcd watch whenever it ends.
func (s *Store) watch(from int64) {
	defer s.wg.Done()
	const minBackoff, maxBackoff = 50 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	for {
		next, err := s.follow(from)
		if s.bg.Err() != nil {
			return
		}
		if next > from {
			backoff = minBackoff
		}
		from = next
		s.opts.OnError(fmt.Errorf("etcd: watch %s from revision %d: %w", s.k.live, from, err))

		t := time.NewTimer(backoff)
		select {
		case <-s.bg.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// follow runs one etcd watch from revision from, feeding the buffer, and
// returns the revision to resume at and why the watch ended. The watch
// receives deletions only, with the values they deleted: the puts of
// activity and of new records, most of etcd's writes, stay out of it.
func (s *Store) follow(from int64) (int64, error) {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.bg))
	defer cancel()
	wch := s.cli.Watch(ctx, s.k.live, clientv3.WithPrefix(), clientv3.WithPrevKV(),
		clientv3.WithFilterPut(), clientv3.WithRev(from))
	for resp := range wch {
		if resp.CompactRevision != 0 {
			// The watch fell behind a compaction; what it missed is gone.
			s.mu.Lock()
			s.ev.lost(resp.CompactRevision)
			s.mu.Unlock()
			return resp.CompactRevision, fmt.Errorf("missed events up to revision %d: %w",
				resp.CompactRevision, resp.Err())
		}
		if err := resp.Err(); err != nil {
			return from, err
		}
		changes := s.group(resp.Events)
		if len(changes) == 0 {
			continue
		}
		if err := s.readCauses(ctx, changes, s.opts.OnError); err != nil {
			// Nothing of this response is kept: the watch starts again at it.
			return from, err
		}
		derived := make([][]store.Event, len(changes))
		for i, ch := range changes {
			derived[i] = s.derive(ch, s.opts.OnError)
		}
		s.mu.Lock()
		for i, ch := range changes {
			s.ev.add(ch.rev, derived[i])
		}
		s.mu.Unlock()
		from = changes[len(changes)-1].rev + 1
	}
	if err := ctx.Err(); err != nil {
		return from, err
	}
	return from, errors.New("watch channel closed")
}

// catchUp waits until the watch has seen this Store's newest write to the
// live/ keys, so that a caller reads the events of its own removals. A
// watch that does not get there within RequestTimeout means that etcd is
// not serving it: store.ErrUnavailable.
func (s *Store) catchUp(ctx context.Context) error {
	target := s.wrote.Load()
	timer := time.NewTimer(s.opts.RequestTimeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		seen, changed, done := s.ev.seen, s.ev.changed, s.ev.done
		s.mu.Unlock()
		if s.closed.Load() {
			return store.ErrClosed
		}
		if seen >= target {
			return nil
		}
		select {
		case <-changed:
		case <-done:
			return store.ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("etcd: wait for the watch: %w", ctx.Err())
		case <-timer.C:
			return fmt.Errorf("etcd: the watch is at revision %d, behind this store's write "+
				"at %d: %w", seen, target, store.ErrUnavailable)
		}
	}
}

// cursorRev converts a cursor to a revision; cursors beyond any revision
// mean "after everything".
func cursorRev(c uint64) int64 {
	if c > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(c)
}

// errExpired is returned, wrapped, for cursors before the history.
func errExpired(after uint64) error {
	return fmt.Errorf("etcd: events after %d: %w", after, store.ErrCursorExpired)
}

// checkAhead returns store.ErrCursorExpired for a cursor after etcd's
// current revision: no event can ever follow it, and a follower holding it
// follows another etcd cluster, or one restored from a backup, and would
// miss every removal. A cursor the watch has not passed yet costs one read
// to tell; others cost nothing.
func (s *Store) checkAhead(ctx context.Context, after uint64) error {
	a := cursorRev(after)
	s.mu.Lock()
	seen := s.ev.seen
	s.mu.Unlock()
	if a <= seen {
		return nil
	}
	resp, err := s.get(ctx, "check event cursor", s.k.cause, clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	if a > resp.Header.Revision {
		return fmt.Errorf("etcd: events after %d, which is after etcd's revision %d: %w",
			after, resp.Header.Revision, store.ErrCursorExpired)
	}
	return nil
}

// Events returns up to limit events with a cursor greater than after, oldest
// first, and more than limit only when the last revision holds several
// events (which only a removal no Store made produces). It first waits
// until the watch has seen this Store's own removals. A cursor from before
// this Store opened is answered from etcd's history. It returns
// store.ErrCursorExpired when more than EventHistory events follow the
// cursor, when etcd has compacted its revision, when it is more than
// ReplayRevisions before this Store's Open, and when it is after etcd's
// current revision; and an error when limit is not positive.
func (s *Store) Events(ctx context.Context, after uint64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("etcd: event limit %d is not positive", limit)
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	if err := s.checkAhead(ctx, after); err != nil {
		return nil, err
	}
	a := cursorRev(after)
	for {
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			return nil, store.ErrClosed
		}
		if a >= s.ev.floor {
			out := s.ev.after(a, limit)
			s.mu.Unlock()
			return out, nil
		}
		if !s.ev.replayable || s.ev.opened-a > s.opts.ReplayRevisions {
			s.mu.Unlock()
			return nil, errExpired(after)
		}
		s.mu.Unlock()

		if err := s.replayFor(ctx, a, after); err != nil {
			return nil, err
		}
	}
}

// replayFor reads from etcd's history the events after revision a that the
// buffer lacks, and keeps them there, so that this follower and every
// later one from a cursor at or after a is served from memory. Replays run
// one at a time: followers that arrive together wait for the first, and
// then find their events in memory, or replay only the part still missing.
// It returns store.ErrCursorExpired when more events follow a than the
// buffer has room for.
func (s *Store) replayFor(ctx context.Context, a int64, after uint64) error {
	select {
	case s.replaying <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("etcd: wait for a replay of events: %w", ctx.Err())
	case <-s.bg.Done():
		return store.ErrClosed
	}
	defer func() { <-s.replaying }()

	s.mu.Lock()
	if a >= s.ev.floor || !s.ev.replayable {
		s.mu.Unlock()
		return nil // served, or refused, by the caller's next look
	}
	target, room := s.ev.floor, s.ev.history-len(s.ev.events)
	s.mu.Unlock()

	evs, err := s.replay(ctx, a, target, room)
	if err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ev.floor != target || !s.ev.replayable || len(evs)+len(s.ev.events) > s.ev.history {
		// The live watch filled the buffer meanwhile: the events after a
		// are more than it holds.
		return errExpired(after)
	}
	s.ev.prepend(evs, a)
	return nil
}

// replay reads from etcd's history the events after revision a up to and
// including target, the floor of the buffer. The watch it uses receives
// deletions only, and knows it is done on reaching target or a revision
// after it: one is sure to come, because this Store's Open deleted a key
// at the revision the buffer started from, which is at or after target.
// It returns store.ErrCursorExpired when etcd has compacted a or more than
// room events follow it.
func (s *Store) replay(ctx context.Context, a, target int64, room int) ([]store.Event, error) {
	s.replays.Add(1)
	after := uint64(a) //nolint:gosec // G115: a is below the floor, a revision
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.cli.Watch(wctx, s.k.live, clientv3.WithPrefix(), clientv3.WithPrevKV(),
		clientv3.WithFilterPut(), clientv3.WithRev(a+1))

	// Collect the removals first, each at least one event, then read their
	// causes together.
	var removals []change
	done := false
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return nil, errExpired(after)
		}
		if err := resp.Err(); err != nil {
			return nil, s.fail(ctx, "replay events", err)
		}
		for _, ch := range s.group(resp.Events) {
			if ch.rev > target {
				done = true
				break
			}
			if ch.removes() {
				removals = append(removals, ch)
			}
			if ch.rev == target {
				done = true
				break
			}
		}
		if len(removals) > room {
			return nil, errExpired(after)
		}
		if done {
			break
		}
	}
	if !done {
		if err := s.ready(ctx); err != nil {
			return nil, s.fail(ctx, "replay events", err)
		}
		return nil, fmt.Errorf("etcd: replay events after %d: watch ended: %w", after,
			store.ErrUnavailable)
	}

	report := func(error) {} // the live watch reports the same values
	if err := s.readCauses(ctx, removals, report); err != nil {
		return nil, err
	}
	var out []store.Event
	for _, ch := range removals {
		out = append(out, s.derive(ch, report)...)
	}
	if len(out) > room {
		return nil, errExpired(after)
	}
	return out, nil
}

// EventCursor returns the newest revision the Store's watch has processed,
// once it has seen this Store's own removals. Every event after it reaches
// this Store later, so a follower that starts there misses nothing. It
// returns store.ErrClosed after Close.
func (s *Store) EventCursor(ctx context.Context) (uint64, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	if err := s.catchUp(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(s.ev.seen), nil //nolint:gosec // G115: revisions are positive
}

// WaitEvents returns nil as soon as an event with a cursor greater than
// after is known to this Store, ctx's error when ctx ends first, and
// store.ErrClosed when the store closes first. It returns
// store.ErrCursorExpired at once for a cursor before the history or after
// etcd's current revision. It does not poll: the watch wakes it whenever
// events arrive.
func (s *Store) WaitEvents(ctx context.Context, after uint64) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	a := cursorRev(after)
	checked := false
	for {
		s.mu.Lock()
		floor, newest, seen := s.ev.floor, s.ev.newest(), s.ev.seen
		changed, done := s.ev.changed, s.ev.done
		s.mu.Unlock()
		if s.closed.Load() {
			return store.ErrClosed
		}

		if a < floor {
			// Older than the buffer: Events replays or refuses it, and
			// afterwards the buffer reaches back to the cursor.
			evs, err := s.Events(ctx, after, 1)
			if err != nil || len(evs) > 0 {
				return err
			}
			continue
		}
		if newest > a {
			return nil
		}
		if a > seen && !checked {
			if err := s.checkAhead(ctx, after); err != nil {
				return err
			}
			checked = true
		}

		select {
		case <-changed:
		case <-done:
			return store.ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
