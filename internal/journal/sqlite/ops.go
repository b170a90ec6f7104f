package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
)

// The write path's statements, prepared once at Open.
const (
	qLease     = `SELECT generation FROM leases WHERE name = ?`
	qRunEnded  = `SELECT ended_at FROM runs WHERE id = ?`
	qInsertRun = `INSERT INTO runs (schedule, scheduled_at, kind, manual, plan, started_at, deadline, generation)
			VALUES (?, ?, 'run', ?, ?, ?, ?, ?)
			ON CONFLICT (schedule, scheduled_at) DO NOTHING RETURNING id`
	qRunByKey       = `SELECT id FROM runs WHERE schedule = ? AND scheduled_at = ?`
	qTouchScheduled = `INSERT INTO schedule_times (schedule, last_scheduled, generation) VALUES (?, ?, ?)
		ON CONFLICT (schedule) DO UPDATE SET last_scheduled = MAX(last_scheduled, excluded.last_scheduled), generation = excluded.generation
		WHERE schedule_times.generation <= excluded.generation`
	qInsertBatch = `INSERT INTO batches (run_id, app, batch_index, instances, state, submitted_at, generation)
			VALUES (?, ?, ?, ?, 'submitting', ?, ?) ON CONFLICT (run_id, app, batch_index) DO NOTHING`
	qBatch    = `SELECT state, change_order_id FROM batches WHERE run_id = ? AND app = ? AND batch_index = ?`
	qRecordCO = `UPDATE batches SET change_order_id = ?,
			state = CASE state WHEN 'submitting' THEN 'submitted' ELSE state END, generation = ?
			WHERE run_id = ? AND app = ? AND batch_index = ? AND generation <= ?`
	qEndBatch = `UPDATE batches SET state = 'ended', result = ?, code = ?, ended_at = ?, generation = ?
			WHERE run_id = ? AND app = ? AND batch_index = ? AND generation <= ?`
	qInsertFire = `INSERT INTO runs (schedule, scheduled_at, kind, started_at, ended_at, result, reason, generation)
			VALUES (?, ?, 'fire', ?, ?, ?, ?, ?) ON CONFLICT (schedule, scheduled_at) DO NOTHING`
	qInsertApp = `INSERT INTO apps (run_id, app, result, outcome, ended_at, generation)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, app) DO NOTHING`
	qRunSchedule = `SELECT schedule FROM runs WHERE id = ?`
	qBatchCOs    = `SELECT change_order_id FROM batches WHERE run_id = ? AND change_order_id != ''
			ORDER BY submitted_at, app, batch_index`
	qEndRun = `UPDATE runs SET ended_at = ?, result = ?, reason = ?, outcome = ?, apps = ?, restarted = ?,
			change_orders = ?, generation = ? WHERE id = ? AND generation <= ?`
	qTouchEnded = `INSERT INTO schedule_times (schedule, last_run, last_success, generation) VALUES (?, ?, ?, ?)
			ON CONFLICT (schedule) DO UPDATE SET last_run = MAX(last_run, excluded.last_run),
				last_success = MAX(last_success, excluded.last_success), generation = excluded.generation
			WHERE schedule_times.generation <= excluded.generation`
	// One request of a group commit (group.go).
	qSavepoint  = `SAVEPOINT req`
	qRollbackTo = `ROLLBACK TO req`
	qRelease    = `RELEASE req`
)

// hotQueries are prepared at Open.
var hotQueries = []string{qLease, qRunEnded, qInsertRun, qRunByKey, qTouchScheduled, qInsertBatch, qBatch, qRecordCO, qEndBatch,
	qInsertFire, qInsertApp, qRunSchedule, qBatchCOs, qEndRun, qTouchEnded, qSavepoint, qRollbackTo, qRelease}

// stx is a transaction that runs the statements prepared at Open as such:
// parsing is a third of a run start's CPU time.
type stx struct {
	tx *sql.Tx
	st map[string]*sql.Stmt // read-only after Open
	// bound holds st's statements bound to tx, made on first use: the
	// requests of a group reuse them. Nil: bind at each use.
	bound map[string]*sql.Stmt
}

// stmt returns q's prepared statement bound to the transaction, or nil.
func (t stx) stmt(ctx context.Context, q string) *sql.Stmt {
	p := t.st[q]
	if p == nil {
		return nil
	}
	if t.bound == nil {
		return t.tx.StmtContext(ctx, p)
	}
	b := t.bound[q]
	if b == nil {
		b = t.tx.StmtContext(ctx, p)
		t.bound[q] = b
	}
	return b
}

// ExecContext is sql.Tx.ExecContext through the prepared statement, if any.
func (t stx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if p := t.stmt(ctx, q); p != nil {
		return p.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

// QueryRowContext is sql.Tx.QueryRowContext through the prepared statement, if any.
func (t stx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if p := t.stmt(ctx, q); p != nil {
		return p.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// QueryContext is sql.Tx.QueryContext through the prepared statement, if any.
func (t stx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if p := t.stmt(ctx, q); p != nil {
		return p.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

// Times are Unix nanoseconds; the zero time is NULL (or 0 in schedule_times).
func nanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid || n.Int64 == 0 {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// validInstant rejects times Unix nanoseconds cannot hold (before 1678, after 2262).
func validInstant(t time.Time) bool {
	return !t.IsZero() && t.Year() > 1678 && t.Year() < 2262
}

// write runs fn as one request of a group commit (group.go): fn runs
// inside a write transaction under the store's lease, isolated from the
// other requests of its group by a savepoint, and write returns once the
// group committed (or fn's error, or the group's). fn must use the ctx it is
// given, not the caller's: a caller's cancellation must not interrupt
// statements the whole group shares.
//
// The transaction holds SQLite's write lock from BEGIN IMMEDIATE, so the
// lease generation read first cannot change before COMMIT — the whole
// transaction is conditional on it. Row updates also require generation <=
// ours, so a row a newer holder wrote is never overwritten even if a backend
// checks the lease less strictly.
func (s *Store) write(ctx context.Context, op string, fn func(ctx context.Context, tx stx) error) error {
	return s.group.do(ctx, &writeReq{op: op, fn: fn})
}

// wrap names the operation and turns corruption into the state-file error.
func (s *Store) wrap(op string, err error) error {
	if isCorrupt(err) {
		return fmt.Errorf("%s: %w", op, corrupt(s.path, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// runState checks that run id exists and is open.
func runState(ctx context.Context, tx stx, id int64) error {
	var ended sql.NullInt64
	err := tx.QueryRowContext(ctx, qRunEnded, id).Scan(&ended)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("run %d: %w", id, journal.ErrNotFound)
	case err != nil:
		return err
	case ended.Valid:
		return fmt.Errorf("run %d: %w", id, journal.ErrRunEnded)
	}
	return nil
}

// rowFenced is the error of an update that matched no row although the row
// was read in the same transaction: its generation is newer than ours.
func (s *Store) rowFenced(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s written by a newer generation than %d: %w", what, s.gen, journal.ErrFenced)
	}
	return nil
}

// BeginRun implements journal.Store.
func (s *Store) BeginRun(ctx context.Context, key journal.RunKey, rec journal.RunRecord) (int64, bool, error) {
	if key.Schedule == "" || !validInstant(key.ScheduledAt) {
		return 0, false, fmt.Errorf("begin run %q at %v: invalid key", key.Schedule, key.ScheduledAt)
	}
	if rec.Started.IsZero() {
		rec.Started = time.Now()
	}
	plan, err := json.Marshal(rec.Plan)
	if err != nil {
		return 0, false, fmt.Errorf("begin run %s: %w", key, err)
	}
	var id int64
	created := false
	err = s.write(ctx, "begin run "+key.String(), func(ctx context.Context, tx stx) error {
		at := key.ScheduledAt.UnixNano()
		err := tx.QueryRowContext(ctx, qInsertRun,
			key.Schedule, at, rec.Manual, string(plan), rec.Started.UnixNano(), nanos(rec.Deadline), s.gen).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			// The key is taken: the idempotent answer is the existing row.
			return tx.QueryRowContext(ctx, qRunByKey, key.Schedule, at).Scan(&id)
		}
		if err != nil {
			return err
		}
		created = true
		return s.touchScheduled(ctx, tx, key.Schedule, at)
	})
	if err != nil {
		return 0, false, err
	}
	return id, created, nil
}

// touchScheduled raises the schedule's last_scheduled to at.
func (s *Store) touchScheduled(ctx context.Context, tx stx, schedule string, at int64) error {
	_, err := tx.ExecContext(ctx, qTouchScheduled, schedule, at, s.gen)
	return err
}

// PlanBatch implements journal.Store.
func (s *Store) PlanBatch(ctx context.Context, runID int64, app string, index int, instanceIDs []string, submittedAt time.Time) error {
	op := fmt.Sprintf("plan batch %d of app %s in run %d", index, app, runID)
	if app == "" || index < 1 || len(instanceIDs) == 0 {
		return fmt.Errorf("%s: needs an app, an index >= 1 and instances", op)
	}
	if submittedAt.IsZero() {
		submittedAt = time.Now()
	}
	inst, err := json.Marshal(instanceIDs)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx stx) error {
		if err := runState(ctx, tx, runID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, qInsertBatch,
			runID, app, index, string(inst), submittedAt.UnixNano(), s.gen)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("planned already: %w", journal.ErrConflict)
		}
		return nil
	})
}

// batchRow reads a batch's state and change order.
func batchRow(ctx context.Context, tx stx, runID int64, app string, index int) (state, co string, err error) {
	err = tx.QueryRowContext(ctx, qBatch,
		runID, app, index).Scan(&state, &co)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("batch not planned: %w", journal.ErrNotFound)
	}
	return state, co, err
}

// RecordChangeOrder implements journal.Store.
func (s *Store) RecordChangeOrder(ctx context.Context, runID int64, app string, index int, changeOrderID string) error {
	op := fmt.Sprintf("record change order %s for batch %d of app %s in run %d", changeOrderID, index, app, runID)
	if changeOrderID == "" {
		return fmt.Errorf("%s: empty change order id", op)
	}
	return s.write(ctx, op, func(ctx context.Context, tx stx) error {
		if err := runState(ctx, tx, runID); err != nil {
			return err
		}
		_, co, err := batchRow(ctx, tx, runID, app, index)
		if err != nil {
			return err
		}
		switch co {
		case changeOrderID:
			return nil
		case "":
		default:
			return fmt.Errorf("change order %s recorded already: %w", co, journal.ErrConflict)
		}
		res, err := tx.ExecContext(ctx, qRecordCO,
			changeOrderID, s.gen, runID, app, index, s.gen)
		if err != nil {
			return err
		}
		return s.rowFenced(res, "batch")
	})
}

// EndBatch implements journal.Store.
func (s *Store) EndBatch(ctx context.Context, runID int64, app string, index int, result jobs.Result, code string, ended time.Time) error {
	op := fmt.Sprintf("end batch %d of app %s in run %d", index, app, runID)
	if result == "" {
		return fmt.Errorf("%s: empty result", op)
	}
	if ended.IsZero() {
		ended = time.Now()
	}
	return s.write(ctx, op, func(ctx context.Context, tx stx) error {
		if err := runState(ctx, tx, runID); err != nil {
			return err
		}
		if _, _, err := batchRow(ctx, tx, runID, app, index); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, qEndBatch,
			string(result), code, ended.UnixNano(), s.gen, runID, app, index, s.gen)
		if err != nil {
			return err
		}
		return s.rowFenced(res, "batch")
	})
}

// EndApp implements journal.Store.
func (s *Store) EndApp(ctx context.Context, runID int64, out jobs.AppOutcome) error {
	op := fmt.Sprintf("end app %s in run %d", out.App.ID, runID)
	if out.App.ID == "" || out.Result == "" {
		return fmt.Errorf("%s: needs an app ID and a result", op)
	}
	body, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx stx) error {
		if err := runState(ctx, tx, runID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, qInsertApp,
			runID, out.App.ID, string(out.Result), string(body), nanos(out.Ended), s.gen)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("ended already: %w", journal.ErrConflict)
		}
		return nil
	})
}

// EndRun implements journal.Store. A zero out.Ended is taken as now: an
// ended run must have an end time, or it would stay open.
func (s *Store) EndRun(ctx context.Context, runID int64, out jobs.RunOutcome) error {
	op := fmt.Sprintf("end run %d", runID)
	if out.Result == "" {
		return fmt.Errorf("%s: empty result", op)
	}
	if out.Ended.IsZero() {
		out.Ended = time.Now()
	}
	body, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	restarted := 0
	for _, a := range out.Apps {
		restarted += len(a.Restarted)
	}
	return s.write(ctx, op, func(ctx context.Context, tx stx) error {
		if err := runState(ctx, tx, runID); err != nil {
			return err
		}
		var schedule string
		if err := tx.QueryRowContext(ctx, qRunSchedule, runID).Scan(&schedule); err != nil {
			return err
		}
		cos, err := batchChangeOrders(ctx, tx, runID)
		if err != nil {
			return err
		}
		// Change orders the outcome knows but the journal does not (a
		// record that failed after the submit) still belong to history.
		for _, a := range out.Apps {
			for _, co := range a.ChangeOrders {
				if co != "" && !slices.Contains(cos, co) {
					cos = append(cos, co)
				}
			}
		}
		coJSON, err := json.Marshal(cos)
		if err != nil {
			return err
		}
		ended := out.Ended.UnixNano()
		res, err := tx.ExecContext(ctx, qEndRun,
			ended, string(out.Result), out.Reason, string(body), len(out.Apps), restarted, string(coJSON), s.gen, runID, s.gen)
		if err != nil {
			return err
		}
		if err := s.rowFenced(res, "run"); err != nil {
			return err
		}
		success := int64(0)
		if out.Result == jobs.ResultSuccess {
			success = ended
		}
		_, err = tx.ExecContext(ctx, qTouchEnded, schedule, ended, success, s.gen)
		return err
	})
}

// batchChangeOrders lists a run's recorded change orders in submit order.
func batchChangeOrders(ctx context.Context, tx stx, runID int64) ([]string, error) {
	rows, err := tx.QueryContext(ctx, qBatchCOs, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cos := []string{}
	for rows.Next() {
		var co string
		if err := rows.Scan(&co); err != nil {
			return nil, err
		}
		cos = append(cos, co)
	}
	return cos, rows.Err()
}

// RecordFire implements journal.Store.
func (s *Store) RecordFire(ctx context.Context, schedule string, scheduledAt time.Time, result jobs.Result, reason string) error {
	key := journal.RunKey{Schedule: schedule, ScheduledAt: scheduledAt}
	if schedule == "" || !validInstant(scheduledAt) || result == "" {
		return fmt.Errorf("record fire %q at %v: needs a schedule, an instant and a result", schedule, scheduledAt)
	}
	return s.write(ctx, "record fire "+key.String(), func(ctx context.Context, tx stx) error {
		at := scheduledAt.UnixNano()
		res, err := tx.ExecContext(ctx, qInsertFire,
			schedule, at, at, at, string(result), reason, s.gen)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // decided already: nothing to record
		}
		return s.touchScheduled(ctx, tx, schedule, at)
	})
}

// Prune implements journal.Store.
func (s *Store) Prune(ctx context.Context, olderThan time.Time) (int, error) {
	var n int64
	err := s.write(ctx, "prune", func(ctx context.Context, tx stx) error {
		// Batches and apps go with their run (ON DELETE CASCADE).
		res, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE ended_at IS NOT NULL AND ended_at < ?`, olderThan.UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// readTx runs fn in a read-only (deferred) transaction: one consistent
// snapshot across its queries.
func (s *Store) readTx(ctx context.Context, op string, fn func(tx stx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.wrap(op, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(stx{tx: tx}); err != nil {
		return s.wrap(op, err)
	}
	return nil
}

// OpenRuns implements journal.Store.
func (s *Store) OpenRuns(ctx context.Context) ([]journal.OpenRun, error) {
	var out []journal.OpenRun
	err := s.readTx(ctx, "open runs", func(tx stx) error {
		byID := map[int64]int{}
		rows, err := tx.QueryContext(ctx, `SELECT id, schedule, scheduled_at, manual, plan, started_at, deadline, generation
			FROM runs WHERE ended_at IS NULL ORDER BY scheduled_at, id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r journal.OpenRun
			var at, started int64
			var deadline sql.NullInt64
			var plan string
			if err := rows.Scan(&r.ID, &r.Key.Schedule, &at, &r.Record.Manual, &plan, &started, &deadline, &r.Generation); err != nil {
				rows.Close()
				return err
			}
			r.Key.ScheduledAt = time.Unix(0, at).UTC()
			r.Record.Started = time.Unix(0, started).UTC()
			r.Record.Deadline = fromNanos(deadline)
			if err := json.Unmarshal([]byte(plan), &r.Record.Plan); err != nil {
				rows.Close()
				return fmt.Errorf("run %d: plan: %w", r.ID, err)
			}
			byID[r.ID] = len(out)
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == 0 {
			return nil
		}
		if err := openBatches(ctx, tx, out, byID); err != nil {
			return err
		}
		return openApps(ctx, tx, out, byID)
	})
	return out, err
}

func openBatches(ctx context.Context, tx stx, out []journal.OpenRun, byID map[int64]int) error {
	rows, err := tx.QueryContext(ctx, `SELECT b.run_id, b.app, b.batch_index, b.instances, b.state, b.change_order_id,
			b.submitted_at, b.result, b.code, b.ended_at, b.generation
		FROM batches b JOIN runs r ON r.id = b.run_id WHERE r.ended_at IS NULL ORDER BY b.run_id, b.app, b.batch_index`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b journal.Batch
		var id, submitted int64
		var ended sql.NullInt64
		var inst, state, result string
		if err := rows.Scan(&id, &b.App, &b.Index, &inst, &state, &b.ChangeOrderID, &submitted, &result, &b.Code, &ended, &b.Generation); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(inst), &b.Instances); err != nil {
			return fmt.Errorf("run %d: batch %d of %s: instances: %w", id, b.Index, b.App, err)
		}
		b.State, b.Result = journal.BatchState(state), jobs.Result(result)
		b.Submitted, b.Ended = time.Unix(0, submitted).UTC(), fromNanos(ended)
		if i, ok := byID[id]; ok {
			out[i].Batches = append(out[i].Batches, b)
		}
	}
	return rows.Err()
}

func openApps(ctx context.Context, tx stx, out []journal.OpenRun, byID map[int64]int) error {
	rows, err := tx.QueryContext(ctx, `SELECT a.run_id, a.outcome FROM apps a JOIN runs r ON r.id = a.run_id
		WHERE r.ended_at IS NULL ORDER BY a.run_id, a.rowid`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var body string
		if err := rows.Scan(&id, &body); err != nil {
			return err
		}
		var a jobs.AppOutcome
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			return fmt.Errorf("run %d: app outcome: %w", id, err)
		}
		if i, ok := byID[id]; ok {
			out[i].Apps = append(out[i].Apps, a)
		}
	}
	return rows.Err()
}

// Runs implements journal.Store.
func (s *Store) Runs(ctx context.Context, f journal.RunFilter) ([]journal.RunSummary, error) {
	var out []journal.RunSummary
	err := s.readTx(ctx, "runs", func(tx stx) error {
		q := `SELECT id, schedule, scheduled_at, kind, manual, started_at, ended_at, result, reason, apps, restarted,
			change_orders, deadline FROM runs`
		var args []any
		if f.Schedule != "" {
			q += ` WHERE schedule = ?`
			args = append(args, f.Schedule)
		}
		q += ` ORDER BY scheduled_at DESC, id DESC`
		if f.Limit > 0 {
			q += ` LIMIT ?`
			args = append(args, f.Limit)
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r journal.RunSummary
			var at, started int64
			var ended, deadline sql.NullInt64
			var kind, result, cos string
			if err := rows.Scan(&r.ID, &r.Schedule, &at, &kind, &r.Manual, &started, &ended, &result, &r.Reason,
				&r.Apps, &r.Restarted, &cos, &deadline); err != nil {
				rows.Close()
				return err
			}
			r.Fire, r.Result = kind == "fire", jobs.Result(result)
			r.ScheduledAt, r.Started = time.Unix(0, at).UTC(), time.Unix(0, started).UTC()
			r.Ended, r.Deadline = fromNanos(ended), fromNanos(deadline)
			if ended.Valid {
				r.Duration = r.Ended.Sub(r.Started)
			}
			if err := json.Unmarshal([]byte(cos), &r.ChangeOrders); err != nil {
				rows.Close()
				return fmt.Errorf("run %d: change orders: %w", r.ID, err)
			}
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// An open run has no outcome yet: count from its batches and apps.
		for i := range out {
			if out[i].Ended.IsZero() {
				if err := openSummary(ctx, tx, &out[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}

func openSummary(ctx context.Context, tx stx, r *journal.RunSummary) error {
	cos, err := batchChangeOrders(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	r.ChangeOrders = cos
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM apps WHERE run_id = ?`, r.ID).Scan(&r.Apps); err != nil {
		return err
	}
	return tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(json_array_length(instances)), 0) FROM batches
		WHERE run_id = ? AND state = 'ended' AND result = ?`, r.ID, string(jobs.ResultSuccess)).Scan(&r.Restarted)
}

// LastTimestamps implements journal.Store.
func (s *Store) LastTimestamps(ctx context.Context) (map[string]journal.ScheduleTimes, error) {
	out := map[string]journal.ScheduleTimes{}
	err := s.readTx(ctx, "last timestamps", func(tx stx) error {
		rows, err := tx.QueryContext(ctx, `SELECT schedule, last_run, last_success, last_scheduled FROM schedule_times`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var run, success, scheduled sql.NullInt64
			if err := rows.Scan(&name, &run, &success, &scheduled); err != nil {
				return err
			}
			out[name] = journal.ScheduleTimes{LastRun: fromNanos(run), LastSuccess: fromNanos(success), LastScheduled: fromNanos(scheduled)}
		}
		return rows.Err()
	})
	return out, err
}

// LastScheduled implements journal.Store.
func (s *Store) LastScheduled(ctx context.Context, schedule string) (time.Time, error) {
	var at sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT last_scheduled FROM schedule_times WHERE schedule = ?`, schedule).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, s.wrap("last scheduled "+schedule, err)
	}
	return fromNanos(at), nil
}
