package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sae-scheduler/sae-scheduler/internal/journal"
)

// Group commit. SQLite has one writer, and a transaction's fixed cost (BEGIN,
// the lease check, COMMIT's WAL append) is most of a BeginRun's. When 1,000
// schedules fire in the same second, 1,000 transactions in a row put the last
// run start 100-250 ms behind its instant. So every write is a request to the
// committer: the writes queued while a group runs (up to maxGroup) go into
// ONE immediate transaction: one lease check for the group, each request
// inside its own savepoint (a request that fails is rolled back alone and
// the others commit), one COMMIT, then each caller gets its own result.
//
// Nothing waits for a group to fill: a write that finds the writer free runs
// at once on its own goroutine, and the queue is taken the moment the writer
// is free again, so grouping only happens while a previous group holds the
// writer. Durability is unchanged: a caller returns only after its group
// committed (WAL, synchronous=NORMAL).

// maxGroup bounds a group: it holds the write lock (and the connection the
// readers share) while its requests run. 256 BeginRuns take a few ms.
const maxGroup = 256

// ErrClosed: the store was closed before the write's group began, so the
// write was not made. Writes called after Close return it too.
var ErrClosed = errors.New("journal: store closed")

// The states of a request: queued until the committer takes it into a group
// or its caller gives up waiting (its context ended), whichever comes first.
const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// writeReq is one write waiting for its group.
type writeReq struct {
	op    string
	fn    func(ctx context.Context, tx stx) error
	state atomic.Int32
	done  chan error // buffered: the committer never blocks on a caller
}

// groupHooks let this package's tests hold the committer still: group is
// called with each group's size before its transaction begins, queued
// after each request is queued. Nil in production.
type groupHooks struct {
	group  func(n int)
	queued func()
}

// committer owns the store's write path. A write that finds no group
// running runs its own at once, on its caller's goroutine (no hand-off to
// pay for when there is no contention); writes that find one running queue,
// and the committer goroutine runs them as the next group as soon as the
// writer is free.
type committer struct {
	s       *Store
	hooks   groupHooks
	mu      sync.Mutex
	cond    *sync.Cond // broadcast when busy clears or closed is set
	queue   []*writeReq
	busy    bool // a group is running, on a caller or on the goroutine
	closed  bool
	stopped chan struct{} // closed when the goroutine has returned
}

func newCommitter(s *Store, hooks groupHooks) *committer {
	c := &committer{s: s, hooks: hooks, stopped: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	go c.run()
	return c
}

// do queues r and waits for its group. ctx bounds the wait in the queue
// only: once r's group has begun, r is made or fails with its group, so a
// caller never reads "canceled" for a write that was committed. Errors: r's
// own (wrapped with its op), its group's, ctx's while queued, or ErrClosed.
func (c *committer) do(ctx context.Context, r *writeReq) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", r.op, err)
	}
	r.done = make(chan error, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", r.op, ErrClosed)
	}
	c.queue = append(c.queue, r)
	var group []*writeReq
	lead := !c.busy
	if lead {
		c.busy = true
		group = c.takeLocked()
	}
	c.mu.Unlock()
	if c.hooks.queued != nil {
		c.hooks.queued()
	}
	if lead {
		c.commit(group)
		c.idle()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return fmt.Errorf("%s: %w", r.op, ctx.Err())
		}
		// Its group took it first: the result is on the way.
		return <-r.done
	}
}

// takeLocked removes the next group from the queue; c.mu is held.
func (c *committer) takeLocked() []*writeReq {
	n := min(len(c.queue), maxGroup)
	group := make([]*writeReq, n)
	copy(group, c.queue)
	c.queue = append(c.queue[:0], c.queue[n:]...)
	return group
}

// idle marks the group done: the goroutine takes what queued meanwhile,
// and close may proceed.
func (c *committer) idle() {
	c.mu.Lock()
	c.busy = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// run commits the queued groups until close.
func (c *committer) run() {
	defer close(c.stopped)
	for {
		c.mu.Lock()
		for (len(c.queue) == 0 || c.busy) && !c.closed {
			c.cond.Wait()
		}
		if c.closed {
			// close answered what was queued.
			c.mu.Unlock()
			return
		}
		c.busy = true
		group := c.takeLocked()
		c.mu.Unlock()
		c.commit(group)
		c.idle()
	}
}

// close stops taking requests, answers the queued ones with ErrClosed, and
// waits for the group in progress to commit and the goroutine to return.
func (c *committer) close() {
	c.mu.Lock()
	left := c.queue
	c.queue, c.closed = nil, true
	for _, r := range left {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			r.done <- fmt.Errorf("%s: %w", r.op, ErrClosed) // buffered
		}
	}
	c.cond.Broadcast()
	for c.busy {
		c.cond.Wait()
	}
	c.mu.Unlock()
	<-c.stopped
}

// commit runs one group and answers each of its callers.
func (c *committer) commit(group []*writeReq) {
	live := group[:0]
	for _, r := range group {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	if c.hooks.group != nil {
		c.hooks.group(len(live))
	}
	errs, gerr := c.s.runGroup(live)
	for i, r := range live {
		err := errs[i]
		if gerr != nil {
			err = gerr
		}
		if err != nil {
			err = c.s.wrap(r.op, err)
		}
		r.done <- err
	}
}

// runGroup runs the requests in one write transaction under the store's
// lease and returns each request's error and the group's. A group error
// (BEGIN, the lease check, a savepoint or COMMIT failed; or the store is
// fenced) means nothing of the group was committed; a request's error means
// that request was rolled back to its savepoint and the others committed.
func (s *Store) runGroup(reqs []*writeReq) ([]error, error) {
	// The group's statements run under no caller's context: a cancel would
	// interrupt the connection, and SQLite then rolls back the whole
	// transaction, every request of the group with it.
	ctx := context.Background()
	errs := make([]error, len(reqs))
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return errs, err
	}
	defer func() { _ = sqlTx.Rollback() }()
	tx := stx{tx: sqlTx, st: s.stmts, bound: make(map[string]*sql.Stmt, len(s.stmts))}
	if err := s.checkLease(ctx, tx); err != nil {
		return errs, err
	}
	if len(reqs) == 1 {
		// Alone, the request needs no savepoint: its error rolls back the
		// transaction (deferred).
		if errs[0] = reqs[0].fn(ctx, tx); errs[0] != nil {
			return errs, nil
		}
	} else {
		for i, r := range reqs {
			if _, err := tx.ExecContext(ctx, qSavepoint); err != nil {
				return errs, err
			}
			if errs[i] = r.fn(ctx, tx); errs[i] != nil {
				if _, rerr := tx.ExecContext(ctx, qRollbackTo); rerr != nil {
					// Some errors (SQLITE_FULL, IOERR, BUSY) roll back the
					// whole transaction, savepoints included: the group is lost.
					return errs, fmt.Errorf("group of %d writes rolled back: %w", len(reqs), errs[i])
				}
			}
			if _, err := tx.ExecContext(ctx, qRelease); err != nil {
				return errs, err
			}
		}
	}
	return errs, sqlTx.Commit()
}

// checkLease fails with journal.ErrFenced unless the file's lease is at the
// store's generation. Inside a write transaction the answer holds until
// COMMIT: the transaction holds the write lock.
func (s *Store) checkLease(ctx context.Context, tx stx) error {
	var cur int64
	if err := tx.QueryRowContext(ctx, qLease, leaseName).Scan(&cur); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no lease: %w", journal.ErrFenced)
		}
		return err
	}
	if cur != s.gen {
		return fmt.Errorf("generation %d, lease at %d: %w", s.gen, cur, journal.ErrFenced)
	}
	return nil
}
