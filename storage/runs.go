package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"time"
)

// Run is one stored run of one target. Steps and Requests are JSON arrays
// of Step and Request (see sink.go); Artifacts are file paths, relative to
// the storage directory when inside it.
type Run struct {
	ID        int64
	TargetKey string
	Check     string
	Path      string
	Node      string
	Start     time.Time
	Duration  time.Duration
	Result    string
	Reason    string
	Steps     json.RawMessage
	Requests  json.RawMessage
	Artifacts []string
}

const runCols = `id, target_key, check_name, path, node, start_ns, duration_ns, result, reason, steps, requests, artifacts`

func insertRun(ctx context.Context, x execer, r *Run) (int64, error) {
	arts := ""
	if len(r.Artifacts) > 0 {
		b, err := json.Marshal(r.Artifacts)
		if err != nil {
			return 0, err
		}
		arts = string(b)
	}
	res, err := x.ExecContext(ctx, `INSERT INTO runs (target_key, check_name, path, node, start_ns, duration_ns, result, reason, steps, requests, artifacts)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.TargetKey, r.Check, r.Path, r.Node, nanos(r.Start), int64(r.Duration), r.Result, r.Reason, string(r.Steps), string(r.Requests), arts)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// RecordRun stores one run synchronously, drops the target's runs beyond
// the bound, and returns the new run's id. The probe sink uses the
// asynchronous path instead (see Sink).
func (s *Store) RecordRun(ctx context.Context, r Run) (int64, error) {
	if s.w == nil {
		return 0, errReadOnly
	}
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if id, err = insertRun(ctx, tx, &r); err != nil {
			return err
		}
		return s.boundRuns(ctx, tx, r.TargetKey)
	})
	if err != nil {
		return 0, s.wrap("recording run in", err)
	}
	return id, nil
}

// boundRuns keeps the newest RunsPerTarget runs of target and removes the
// artifacts of the ones it deletes.
func (s *Store) boundRuns(ctx context.Context, tx *sql.Tx, target string) error {
	var cut sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT id FROM runs WHERE target_key = ? ORDER BY id DESC LIMIT 1 OFFSET ?`,
		target, s.opts.RunsPerTarget).Scan(&cut)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.removeArtifacts(ctx, tx, `SELECT `+runArtCols+` FROM runs WHERE target_key = ? AND id <= ? AND artifacts != ''`, target, cut.Int64); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM runs WHERE target_key = ? AND id <= ?`, target, cut.Int64)
	return err
}

// removeArtifacts deletes the files listed by the artifacts column of the
// runs query selects (as runArtCols), but only each run's own files (see
// ArtifactPath).
func (s *Store) removeArtifacts(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	var runs []Run
	for rows.Next() {
		var r Run
		var start int64
		var raw string
		if err := rows.Scan(&r.ID, &r.Check, &r.Path, &r.Node, &start, &raw); err != nil {
			rows.Close()
			return err
		}
		r.Start = fromNanos(start)
		if json.Unmarshal([]byte(raw), &r.Artifacts) == nil {
			runs = append(runs, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range runs {
		for _, f := range r.Artifacts {
			p, err := s.ArtifactPath(r, f)
			if err != nil {
				if !errors.Is(err, ErrNotFound) {
					s.log.Warn().Err(err).Msg("not removing a file a run lists as its artifact")
				}
				continue
			}
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn().Err(err).Str("file", p).Msg("removing artifact failed")
			}
		}
	}
	return nil
}

// runArtCols are what removeArtifacts reads of each run.
const runArtCols = `id, check_name, path, node, start_ns, artifacts`

// Run returns one run by id, or ErrNotFound.
func (s *Store) Run(ctx context.Context, id int64) (Run, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+runCols+` FROM runs WHERE id = ?`, id)
	if err != nil {
		return Run{}, s.wrap("reading run from", err)
	}
	runs, err := scanRuns(rows)
	if err != nil {
		return Run{}, s.wrap("reading run from", err)
	}
	if len(runs) == 0 {
		return Run{}, ErrNotFound
	}
	return runs[0], nil
}

// RecentRuns returns up to n of target's runs, newest first: the stored ones
// merged with the successful runs this process keeps in memory only (those
// have ID 0 and no steps; see Sink).
func (s *Store) RecentRuns(ctx context.Context, target string, n int) ([]Run, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+runCols+` FROM runs WHERE target_key = ? ORDER BY id DESC LIMIT ?`, target, n)
	if err != nil {
		return nil, s.wrap("reading runs from", err)
	}
	stored, err := scanRuns(rows)
	if err != nil {
		return nil, s.wrap("reading runs from", err)
	}
	return mergeRuns(stored, s.mem.recent(target, n), n), nil
}

// LatestFailedRun returns target's newest run whose result is not
// "success", or ErrNotFound.
func (s *Store) LatestFailedRun(ctx context.Context, target string) (Run, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+runCols+` FROM runs WHERE target_key = ? AND result != 'success' ORDER BY id DESC LIMIT 1`, target)
	if err != nil {
		return Run{}, s.wrap("reading runs from", err)
	}
	runs, err := scanRuns(rows)
	if err != nil {
		return Run{}, s.wrap("reading runs from", err)
	}
	if len(runs) == 0 {
		return Run{}, ErrNotFound
	}
	return runs[0], nil
}

func scanRuns(rows *sql.Rows) ([]Run, error) {
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var start, dur int64
		var steps, reqs, arts string
		if err := rows.Scan(&r.ID, &r.TargetKey, &r.Check, &r.Path, &r.Node, &start, &dur, &r.Result, &r.Reason, &steps, &reqs, &arts); err != nil {
			return nil, err
		}
		r.Start, r.Duration = fromNanos(start), time.Duration(dur)
		if steps != "" {
			r.Steps = json.RawMessage(steps)
		}
		if reqs != "" {
			r.Requests = json.RawMessage(reqs)
		}
		if arts != "" {
			_ = json.Unmarshal([]byte(arts), &r.Artifacts)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// tx runs fn in a write transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

var errReadOnly = errors.New("storage: the store is open read-only")
