package alerting

import (
	"fmt"
	"strings"
)

// maxAnnotationLen bounds one rendered annotation. The loader keeps
// templates from looping, but `{{printf "%999999d" 0}}` still writes a
// megabyte per action; receivers cut far shorter texts anyway.
const maxAnnotationLen = 64 << 10

// cappedBuilder is a strings.Builder that fails writes past
// maxAnnotationLen, which ends the template's execution.
type cappedBuilder struct{ strings.Builder }

func (b *cappedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxAnnotationLen {
		return 0, fmt.Errorf("annotation longer than %d bytes", maxAnnotationLen)
	}
	return b.Builder.Write(p)
}
