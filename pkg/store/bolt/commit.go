package bolt

import (
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/bbolt"
)

// errRunAlone tells a writer that its function failed inside a shared
// transaction, which was rolled back, and that it must run again alone to
// learn its own error without failing the others.
var errRunAlone = errors.New("bolt: run alone")

// maxBatch bounds how many writers share one transaction, so that a burst
// does not make one transaction (and its rollback and rerun, should a
// writer fail) arbitrarily large. It is bbolt's default for Batch.
const maxBatch = 1000

// committer group-commits writers' functions. The first writer to arrive
// when no commit is running starts one at once; writers that arrive while
// it runs (mostly while it waits for fsync) queue up and go together in the
// next transaction. So a lone writer pays one commit and no timer, and under
// load one fsync makes everything that arrived during the previous one
// durable: the batch grows with the load by itself. bbolt's own Batch waits
// for a timer instead, which a lone writer always pays, and which at the
// short delays that keep that cost down commits about two writers at a time
// under load.
type committer struct {
	db *bbolt.DB

	mu      sync.Mutex
	queue   []*pending
	running bool // a goroutine is draining the queue
}

// pending is one writer waiting for its commit.
type pending struct {
	fn   func(*bbolt.Tx) error
	done chan error // buffered: the committer never waits on a writer
}

// do runs fn in a shared write transaction and returns once that
// transaction is durable, with fn's error or the commit's. fn may run more
// than once: when another writer's function fails, the transaction is
// rolled back and run again without it. A panic in fn becomes its error.
func (c *committer) do(fn func(*bbolt.Tx) error) error {
	p := &pending{fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, p)
	start := !c.running
	c.running = true
	c.mu.Unlock()
	if start {
		go c.drain()
	}

	err := <-p.done
	if errors.Is(err, errRunAlone) {
		return c.db.Update(func(tx *bbolt.Tx) error { return call(fn, tx) })
	}
	return err
}

// drain commits what is queued, batch after batch, until the queue is
// empty.
func (c *committer) drain() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		n := min(len(c.queue), maxBatch)
		batch := c.queue[:n:n]
		c.queue = c.queue[n:]
		if len(c.queue) == 0 {
			c.queue = nil // let the backing array go
		}
		c.mu.Unlock()
		c.commit(batch)
	}
}

// commit runs a batch in one transaction. A function that fails is taken
// out and told to run alone, and the rest run again, so that one writer's
// error never becomes another's.
func (c *committer) commit(batch []*pending) {
	for len(batch) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bbolt.Tx) error {
			for i, p := range batch {
				if err := call(p.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, p := range batch {
				p.done <- err
			}
			return
		}
		batch[failed].done <- errRunAlone
		batch = append(batch[:failed], batch[failed+1:]...)
	}
}

// call runs fn, turning a panic into an error so that one writer's bug
// fails its own request rather than the committing goroutine, and with it
// the process.
func call(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bolt: write panicked: %v", r)
		}
	}()
	return fn(tx)
}
