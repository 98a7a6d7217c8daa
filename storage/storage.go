// Package storage is vantage's embedded database: an SQLite file (pure-Go
// driver, no cgo) at --storage.path holding the timeline, the runs people
// look at later (failed, state-changing and browser runs; see Sink), alert
// instances and the notification queue, with artifacts kept as files beside
// it. The successful runs of healthy targets are kept in memory only, so a
// successful plain probe costs no database write (docs/storage.md). One
// package owns the schema; everyone else uses the methods of Store.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vantage-monitoring/vantage/probe"
)

// FileName is the database file inside the storage directory.
const FileName = "vantage.db"

// ArtifactsDir is the directory under the storage directory where probes
// write screenshots and other per-run files.
const ArtifactsDir = probe.ArtifactsDir

// ErrNotFound is returned for a run, alert or notification that does not
// exist (or no longer does, after retention).
var ErrNotFound = errors.New("not found")

// Options configure a Store.
type Options struct {
	// Retention is how long events, runs, artifacts and finished
	// notifications are kept; 0 keeps everything.
	Retention time.Duration
	Logger    zerolog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RunsPerTarget bounds the stored runs kept per target (default 100).
	RunsPerTarget int
	// MemoryRuns bounds the successful runs per target kept in memory only
	// (default DefaultMemoryRuns; negative keeps none). See Sink.
	MemoryRuns int
	// QueueSize bounds the asynchronous write queue (default 4096). When it
	// is full, new async writes are dropped and counted: probes never wait
	// for the disk.
	QueueSize int
	// PruneInterval is how often retention runs in the background (default
	// 10m; negative disables it, e.g. for tests that call Prune).
	PruneInterval time.Duration
	// ReadOnly opens an existing database for reading only (for `vantage
	// timeline` next to a running daemon): no directory or file is created
	// and no migration runs.
	ReadOnly bool
	// Registerer receives the store's own metrics; may be nil.
	Registerer prometheus.Registerer
}

// Store is an open vantage database.
type Store struct {
	dir  string
	path string
	opts Options
	log  zerolog.Logger
	now  func() time.Time

	w *sql.DB // the single writer connection
	r *sql.DB // readers (WAL lets them run beside the writer)

	mem *memRuns // recent successes not written (see Sink)

	// async writer
	qmu     sync.RWMutex
	closed  bool
	queue   chan writeItem
	flushc  chan chan struct{}
	done    chan struct{}
	stop    chan struct{}
	bg      sync.WaitGroup
	dropped prometheus.Counter
	werrs   prometheus.Counter
	qlen    prometheus.GaugeFunc
}

// Open opens (creating when needed) the database in dir, migrates its schema
// and starts the background writer and retention loop. Close it when done.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("storage: empty storage path")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RunsPerTarget <= 0 {
		opts.RunsPerTarget = 100
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.MemoryRuns == 0 {
		opts.MemoryRuns = DefaultMemoryRuns
	}
	if opts.PruneInterval == 0 {
		opts.PruneInterval = 10 * time.Minute
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	s := &Store{
		dir: abs, path: filepath.Join(abs, FileName), opts: opts, log: opts.Logger, now: opts.Now,
		mem: newMemRuns(max(opts.MemoryRuns, 0)),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "vantage_storage_writes_dropped_total",
			Help: "Runs and events not stored because the storage write queue was full."}),
		werrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "vantage_storage_write_errors_total",
			Help: "Batches of runs and events the storage failed to write."}),
	}
	if opts.ReadOnly {
		if _, err := os.Stat(s.path); err != nil {
			return nil, fmt.Errorf("storage: no database at %s (is --storage.path right?): %w", s.path, err)
		}
	} else {
		if err := os.MkdirAll(filepath.Join(abs, ArtifactsDir), 0o750); err != nil {
			return nil, fmt.Errorf("storage: creating storage directory %s: not writable or not a directory (check permissions, or point --storage.path elsewhere): %w", abs, err)
		}
		if err := checkWritable(abs); err != nil {
			return nil, err
		}
	}
	if err := s.openDBs(); err != nil {
		s.closeDBs()
		return nil, err
	}
	if opts.ReadOnly {
		if err := s.checkVersion(); err != nil {
			s.closeDBs()
			return nil, err
		}
		return s, nil
	}
	if err := s.quickCheck(); err != nil {
		s.closeDBs()
		return nil, err
	}
	if err := s.migrate(context.Background()); err != nil {
		s.closeDBs()
		return nil, err
	}
	s.queue = make(chan writeItem, opts.QueueSize)
	s.flushc = make(chan chan struct{})
	s.done = make(chan struct{})
	s.stop = make(chan struct{})
	s.qlen = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vantage_storage_write_queue_length",
		Help: "Runs and events waiting to be written to storage."}, func() float64 { return float64(len(s.queue)) })
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{s.dropped, s.werrs, s.qlen} {
			if err := opts.Registerer.Register(c); err != nil {
				s.closeDBs()
				return nil, fmt.Errorf("storage: registering metrics: %w", err)
			}
		}
	}
	go s.writer()
	if opts.PruneInterval > 0 && opts.Retention > 0 {
		s.bg.Add(1)
		go s.pruneLoop()
	}
	return s, nil
}

// checkWritable fails early, with a message naming the directory, when the
// storage directory cannot be written: SQLite would otherwise report a
// vague "unable to open database file" later.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("storage: directory %s is not writable (check permissions and free space, or point --storage.path elsewhere): %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return nil
}

func (s *Store) dsn(readOnly bool) string {
	// busy_timeout makes a locked database wait before failing; immediate
	// transactions take the write lock up front so two writers never
	// deadlock on a lock upgrade.
	q := "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_txlock=immediate"
	if readOnly {
		q += "&mode=ro&_query_only=1"
	} else {
		q += "&_journal_mode=WAL&_pragma=synchronous(NORMAL)"
	}
	return "file:" + s.path + "?" + q
}

func (s *Store) openDBs() error {
	var err error
	if !s.opts.ReadOnly {
		s.w, err = sql.Open("sqlite", s.dsn(false))
		if err != nil {
			return s.wrap("opening", err)
		}
		s.w.SetMaxOpenConns(1)
		s.w.SetConnMaxIdleTime(0)
		if err := s.w.Ping(); err != nil {
			return s.wrap("opening", err)
		}
	}
	s.r, err = sql.Open("sqlite", s.dsn(true))
	if err != nil {
		return s.wrap("opening", err)
	}
	s.r.SetMaxOpenConns(4)
	if err := s.r.Ping(); err != nil {
		return s.wrap("opening", err)
	}
	// Ping does not read the file; a query does, and surfaces a file that
	// is not a database.
	var n int
	if err := s.r.QueryRow("SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		return s.wrap("reading", err)
	}
	return nil
}

// quickCheck runs SQLite's PRAGMA quick_check before the daemon writes to
// the file: a damaged database is refused at start with what to do, rather
// than failing writes one by one later or being written further. (Starting
// fresh on its own would silently drop the timeline, alert state and
// queued notifications that a backup might still hold.)
func (s *Store) quickCheck() error {
	var problems []string
	err := func() error {
		rows, err := s.w.Query("PRAGMA quick_check(5)")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			if line != "ok" {
				problems = append(problems, line)
			}
		}
		return rows.Err()
	}()
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_CORRUPT || se.Code()&0xff == sqlite3.SQLITE_NOTADB) {
		problems, err = append(problems, err.Error()), nil
	}
	if err != nil {
		return s.wrap("checking", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("storage: %s failed its integrity check (PRAGMA quick_check: %s); vantage does not start on a damaged database: %s",
			s.path, strings.Join(problems, "; "), s.corruptAdvice())
	}
	return nil
}

// corruptAdvice says what to do about a damaged database file.
func (s *Store) corruptAdvice() string {
	return fmt.Sprintf("stop vantage and move the file aside "+
		"(mv %[1]s %[1]s.corrupt, and any %[1]s-wal and %[1]s-shm beside it) to start with a fresh, empty database "+
		"(the old timeline, runs, alert state and queued notifications stay in the moved file), or restore a backup", s.path)
}

func (s *Store) closeDBs() {
	if s.w != nil {
		_ = s.w.Close()
	}
	if s.r != nil {
		_ = s.r.Close()
	}
}

// wrap turns SQLite's terse codes into errors that say what to do.
func (s *Store) wrap(op string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return fmt.Errorf("storage: %s %s: the file is corrupt or not a vantage database (%w); %s", op, s.path, err, s.corruptAdvice())
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("storage: %s %s: the database is locked (is another vantage using the same --storage.path?): %w", op, s.path, err)
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
			return fmt.Errorf("storage: %s %s: the database is read-only (check file and directory permissions): %w", op, s.path, err)
		case sqlite3.SQLITE_CANTOPEN:
			return fmt.Errorf("storage: %s %s: cannot open the database file (check that the directory exists and is writable): %w", op, s.path, err)
		case sqlite3.SQLITE_FULL:
			return fmt.Errorf("storage: %s %s: the disk is full: %w", op, s.path, err)
		case sqlite3.SQLITE_IOERR:
			return fmt.Errorf("storage: %s %s: I/O error (disk full or failing?): %w", op, s.path, err)
		}
	}
	return fmt.Errorf("storage: %s %s: %w", op, s.path, err)
}

// Dir is the storage directory (absolute).
func (s *Store) Dir() string { return s.dir }

// ArtifactDir is where probes should write per-run files (screenshots).
func (s *Store) ArtifactDir() string { return filepath.Join(s.dir, ArtifactsDir) }

// Dropped is the number of async writes dropped because the queue was full.
func (s *Store) Dropped() float64 {
	return counterValue(s.dropped)
}

// Close flushes pending writes, stops the background work and closes the
// database. It is safe to call more than once.
func (s *Store) Close() error {
	if s.queue != nil {
		s.qmu.Lock()
		already := s.closed
		s.closed = true
		if !already {
			close(s.stop)
			close(s.queue)
		}
		s.qmu.Unlock()
		if already {
			return nil
		}
		<-s.done
		s.bg.Wait()
		if s.opts.Registerer != nil {
			s.opts.Registerer.Unregister(s.dropped)
			s.opts.Registerer.Unregister(s.werrs)
			s.opts.Registerer.Unregister(s.qlen)
		}
	}
	var errs []error
	// Readers first: the writer, closing last, checkpoints the WAL and
	// removes the -wal and -shm files, leaving one self-contained file.
	if s.r != nil {
		errs = append(errs, s.r.Close())
		s.r = nil
	}
	if s.w != nil {
		_, _ = s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		errs = append(errs, s.w.Close())
		s.w = nil
	}
	return errors.Join(errs...)
}

// ArtifactPath resolves one of run r's stored artifact paths to its file.
// Only a regular file named by the run's own stem
// (artifacts/<check>/<start>-<path>-<node>.<ext>, see probe.ArtifactStem)
// qualifies: a row pointing anywhere else (vantage.db, another run's file,
// "..", an absolute path) or at a symlink, or a check directory that is a
// symlink out of the artifacts directory, is refused with an error, so a
// tampered database can neither read nor delete other files. A missing
// file is ErrNotFound.
func (s *Store) ArtifactPath(r Run, p string) (string, error) {
	if p == "" {
		return "", ErrNotFound
	}
	rel := filepath.Clean(p)
	if filepath.IsAbs(rel) {
		var err error
		if rel, err = filepath.Rel(s.dir, rel); err != nil {
			rel = p
		}
	}
	rel = filepath.ToSlash(rel)
	stem := probe.ArtifactStem(r.Check, r.Path, r.Node, r.Start)
	ext := path.Ext(rel)
	if ext == "" || strings.TrimSuffix(rel, ext) != stem {
		return "", fmt.Errorf("artifact %q is not a file of run %d (want %s.*)", p, r.ID, stem)
	}
	full := filepath.Join(s.dir, filepath.FromSlash(rel))
	root, err := filepath.EvalSymlinks(filepath.Join(s.dir, ArtifactsDir))
	if err != nil {
		return "", ErrNotFound
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(full))
	if err != nil {
		return "", ErrNotFound
	}
	if dir != filepath.Join(root, probe.SafeName(r.Check)) {
		return "", fmt.Errorf("artifact %q of run %d: its directory resolves to %s, outside %s", p, r.ID, dir, root)
	}
	fi, err := os.Lstat(full)
	if err != nil {
		return "", ErrNotFound
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return "", fmt.Errorf("artifact %q of run %d is a symlink", p, r.ID)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("artifact %q of run %d is not a regular file", p, r.ID)
	}
	return full, nil
}

// OpenArtifact opens artifact i of run r (see ArtifactPath). The opened
// file is checked to be the one that was vetted, so a swap for a symlink
// in between is refused too.
func (s *Store) OpenArtifact(r Run, i int) (*os.File, os.FileInfo, error) {
	if i < 0 || i >= len(r.Artifacts) {
		return nil, nil, ErrNotFound
	}
	p, err := s.ArtifactPath(r, r.Artifacts[i])
	if err != nil {
		return nil, nil, err
	}
	before, err := os.Lstat(p)
	if err != nil {
		return nil, nil, ErrNotFound
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, ErrNotFound
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !os.SameFile(before, fi) {
		_ = f.Close()
		return nil, nil, fmt.Errorf("artifact %q of run %d changed while being opened", p, r.ID)
	}
	return f, fi, nil
}

// nanos stores times as Unix nanoseconds: exact, sortable, zone-free.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
