package etcd

import (
	"slices"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// cursorsOf lists the cursors of evs.
func cursorsOf(evs []store.Event) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Cursor)
	}
	return out
}

// TestEventBuffer covers the in-memory history directly, including what
// the conformance suite cannot reach through etcd: a watch that lost
// events to a compaction, and revisions that hold several events.
func TestEventBuffer(t *testing.T) {
	ev := func(c uint64) store.Event {
		return store.Event{Cursor: c, Fingerprints: []string{"fp"}}
	}
	tests := []struct {
		name       string
		build      func(b *eventBuffer)
		after      int64
		limit      int
		want       []uint64
		floor      int64
		replayable bool
	}{
		{"new", func(*eventBuffer) {}, 10, 5, nil, 10, true},
		{"within the history", func(b *eventBuffer) {
			b.add(11, []store.Event{ev(11)})
			b.add(12, nil)
			b.add(13, []store.Event{ev(13)})
		}, 10, 5, []uint64{11, 13}, 10, true},
		{"limited", func(b *eventBuffer) {
			b.add(11, []store.Event{ev(11)})
			b.add(13, []store.Event{ev(13)})
		}, 10, 1, []uint64{11}, 10, true},
		{"trimmed to the newest three", func(b *eventBuffer) {
			for c := range int64(5) {
				b.add(11+c, []store.Event{ev(uint64(11 + c))})
			}
		}, 12, 5, []uint64{13, 14, 15}, 12, false},
		{"trimming never splits a revision", func(b *eventBuffer) {
			b.add(11, []store.Event{ev(11)})
			b.add(12, []store.Event{ev(12), ev(12)})
			b.add(13, []store.Event{ev(13), ev(13)})
		}, 12, 1, []uint64{13, 13}, 12, false},
		{"a limit inside a revision takes all of it", func(b *eventBuffer) {
			b.add(12, []store.Event{ev(12), ev(12)})
		}, 10, 1, []uint64{12, 12}, 10, true},
		{"events lost to a compaction", func(b *eventBuffer) {
			b.add(11, []store.Event{ev(11)})
			b.lost(20)
			b.add(21, []store.Event{ev(21)})
		}, 19, 5, []uint64{21}, 19, false},
		{"replayed events go first", func(b *eventBuffer) {
			b.add(11, []store.Event{ev(11)})
			b.prepend([]store.Event{ev(7), ev(9)}, 5)
		}, 5, 5, []uint64{7, 9, 11}, 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newEventBuffer(3)
			b.start(10)
			tt.build(&b)
			if b.floor != tt.floor || b.replayable != tt.replayable {
				t.Errorf("floor %d, replayable %t; want %d, %t",
					b.floor, b.replayable, tt.floor, tt.replayable)
			}
			got := b.after(tt.after, tt.limit)
			if !slices.Equal(cursorsOf(got), tt.want) {
				t.Errorf("after(%d, %d) = %v, want %v", tt.after, tt.limit, cursorsOf(got), tt.want)
			}
			if len(got) > 0 {
				got[0].Fingerprints[0] = "changed by a reader"
				if again := b.after(tt.after, 1); again[0].Fingerprints[0] != "fp" {
					t.Error("a returned event shares its fingerprints with the buffer")
				}
			}
		})
	}
}

// TestTimeKey checks that time keys sort as their times do, across the
// epoch and to the nanosecond, and read back exactly.
func TestTimeKey(t *testing.T) {
	times := []time.Time{
		time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1950, time.January, 1, 0, 0, 0, 999_999_999, time.UTC),
		time.Unix(-1, 0).UTC(),
		time.Unix(0, 0).UTC(),
		time.Unix(0, 1).UTC(),
		time.Date(2031, time.March, 4, 5, 6, 7, 123456789, time.UTC),
		time.Date(9999, time.December, 31, 23, 59, 59, 999_999_999, time.UTC),
	}
	prev := ""
	for _, tm := range times {
		k := timeKey(tm)
		if len(k) != timeKeyLen {
			t.Errorf("timeKey(%s) has %d characters, want %d", tm, len(k), timeKeyLen)
		}
		back, err := parseTimeKey(k)
		if err != nil || !back.Equal(tm) {
			t.Errorf("parseTimeKey(timeKey(%s)) = %s, %v", tm, back, err)
		}
		if k <= prev {
			t.Errorf("timeKey(%s) = %s does not sort after %s", tm, k, prev)
		}
		prev = k
		// upTo covers the keys of its own time and not those of the next.
		if end := upTo("p/", tm); "p/"+k+"/id" >= end || end >= "p/"+timeKey(tm.Add(1)) {
			t.Errorf("upTo(%s) = %q does not end the range at that time", tm, end)
		}
	}
}
