package storage

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Prune deletes what is older than the retention: events, runs (with their
// artifact files), finished notifications, and alert instances that are
// neither pending nor firing and were last updated before the cutoff.
// Pending notifications are never pruned here; the alerting engine drops
// them after max_age. With no retention it does nothing.
func (s *Store) Prune(ctx context.Context) error {
	if s.opts.Retention <= 0 || s.w == nil {
		return nil
	}
	cut := s.now().Add(-s.opts.Retention).UnixNano()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE time_ns < ?`, cut); err != nil {
			return err
		}
		if err := s.removeArtifacts(ctx, tx, `SELECT `+runArtCols+` FROM runs WHERE start_ns < ? AND artifacts != ''`, cut); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE start_ns < ?`, cut); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM notifications WHERE state != 'pending' AND done_ns < ?`, cut); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE state NOT IN ('pending', 'firing') AND updated_ns < ?`, cut)
		return err
	})
	if err != nil {
		return s.wrap("pruning", err)
	}
	s.pruneOrphans(time.Unix(0, cut))
	return nil
}

// pruneOrphans removes old files in the artifacts directory that no run
// points to any more (their run was dropped or never stored).
func (s *Store) pruneOrphans(cut time.Time) {
	root := s.ArtifactDir()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().Before(cut) {
			_ = os.Remove(p)
		}
		return nil
	})
}

func (s *Store) pruneLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.opts.PruneInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := s.Prune(ctx); err != nil {
			s.log.Error().Err(err).Msg("storage retention failed")
		}
		cancel()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}
