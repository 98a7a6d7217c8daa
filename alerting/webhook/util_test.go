package webhook_test

import (
	"bytes"
	"encoding/json"
)

func jsonIndent(b *bytes.Buffer, src []byte) error {
	if err := json.Indent(b, src, "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	return nil
}
