// Package web serves vantage's HTTP endpoints: /metrics, the lifecycle
// endpoints and (in later packages) the API and status page. TLS and basic
// auth come from exporter-toolkit's --web.config.file.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	toolkit "github.com/prometheus/exporter-toolkit/web"
	"github.com/rs/zerolog"
)

// Options wire the server to the rest of the daemon.
type Options struct {
	Logger   zerolog.Logger
	Gatherer prometheus.Gatherer
	// Sources, when set, are served in order instead of Gatherer (see
	// streamHandler).
	Sources []Source
	// Registerer receives promhttp's own metrics; may be nil.
	Registerer prometheus.Registerer
	// Reload re-reads the config; its error is shown to the caller.
	Reload func() error
	// Ready reports readiness and, when not ready, why.
	Ready func() (bool, string)
	// WebConfigFile is exporter-toolkit's TLS/auth file, or "".
	WebConfigFile string
}

// Server is the HTTP front of the daemon.
type Server struct {
	opts Options
	mux  *http.ServeMux
	srv  *http.Server
}

// New builds the handler tree. Extra routes can be added with Handle before
// Serve.
func New(o Options) *Server {
	s := &Server{opts: o, mux: http.NewServeMux()}
	var h http.Handler = promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{
		EnableOpenMetrics:   true,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 10,
		Timeout:             30 * time.Second,
	})
	if len(o.Sources) > 0 {
		h = streamHandler(o.Sources, o.Logger)
	}
	if o.Registerer != nil {
		h = promhttp.InstrumentMetricHandler(o.Registerer, h)
	}
	s.mux.Handle("GET /metrics", h)
	s.mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "vantage is healthy.")
	})
	s.mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := true, ""
		if o.Ready != nil {
			ok, why = o.Ready()
		}
		if !ok {
			http.Error(w, "vantage is not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "vantage is ready.")
		if why != "" {
			fmt.Fprintln(w, why)
		}
	})
	// Profiling, as Prometheus servers offer it: behind the same web config.
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, _ *http.Request) {
		if o.Reload == nil {
			http.Error(w, "reload not available", http.StatusNotImplemented)
			return
		}
		if err := o.Reload(); err != nil {
			http.Error(w, "failed to reload config:\n"+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "config reloaded")
	})
	return s
}

// Handle adds a route (Go 1.22 pattern syntax).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler is the full handler tree (for tests).
func (s *Server) Handler() http.Handler { return s.mux }

// Serve serves on l until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	logger := slog.New(zerolog.NewSlogHandler(s.opts.Logger))
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// The server's own complaints (TLS handshakes that fail, plain
		// HTTP to a TLS port) go to the daemon's log, not to stderr.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	cfgFile := s.opts.WebConfigFile
	systemd := false
	addrs := []string{l.Addr().String()}
	flags := &toolkit.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &systemd, WebConfigFile: &cfgFile}
	errc := make(chan error, 1)
	go func() { errc <- toolkit.Serve(l, s.srv, flags, logger) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
		<-errc
		return nil
	}
}
