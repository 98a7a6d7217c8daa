package checks

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// String renders p as FILE:LINE:COL (or just FILE when the line is unknown,
// e.g. for a file that could not be read).
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one problem in a configuration, at a position.
type Error struct {
	Pos Pos
	Msg string
}

// Error renders the problem as `FILE:LINE:COL: message`, the format editors
// and `vantage validate` understand.
func (e Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errors is every problem found in a configuration, sorted by position.
// Print one entry per line (Error() already does).
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sortErrors orders errors by file, line and column, keeping the order they
// were found in for equal positions.
func sortErrors(es Errors) {
	slices.SortStableFunc(es, func(a, b Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
		)
	})
}

// WriteErrors writes err for people: a config's problems one per line as
// FILE:LINE:COL: message, anything else as it is.
func WriteErrors(w io.Writer, err error) {
	var list Errors
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}
