package checks

import (
	"sort"
	"strings"
	"sync"
)

// Redactor scrubs secret values out of text that leaves the process: logs,
// errors, `once` output and the API. Values shorter than minSecretLen are not
// tracked, since replacing them would mangle unrelated text.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string // longest first, so a secret containing another is replaced whole
	repl    *strings.Replacer
}

const minSecretLen = 4

// Placeholder replaces every secret.
const Placeholder = "<secret>"

// NewRedactor returns an empty Redactor.
func NewRedactor() *Redactor { return &Redactor{} }

// Add records a secret value.
func (r *Redactor) Add(s string) {
	if r == nil || len(s) < minSecretLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, have := range r.secrets {
		if have == s {
			return
		}
	}
	r.secrets = append(r.secrets, s)
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	args := make([]string, 0, 2*len(r.secrets))
	for _, v := range r.secrets {
		args = append(args, v, Placeholder)
	}
	r.repl = strings.NewReplacer(args...)
}

// Redact returns s with every recorded secret replaced by Placeholder.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	repl := r.repl
	r.mu.RUnlock()
	if repl == nil {
		return s
	}
	return repl.Replace(s)
}
