package alerting

import (
	"fmt"
	"strings"
)

// maxAnnotationLen bounds one rendered annotation. The loader keeps
// templates from looping, but `{{printf "%999999d" 0}}` still writes a
// megabyte per action; receivers cut far shorter texts anyway.
const maxAnnotationLen = 64 << 10

// capWriter writes to a strings.Builder and fails writes past
// maxAnnotationLen, which ends the template's execution.
type capWriter struct{ b *strings.Builder }

func (w capWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > maxAnnotationLen {
		return 0, fmt.Errorf("annotation longer than %d bytes", maxAnnotationLen)
	}
	return w.b.Write(p)
}
