package store

import (
	"encoding/base32"
	"fmt"
	"io"
)

// idEncoding is lower-case base32 without padding: ids stay short, are safe
// in URL paths and are valid SPIFFE path segments.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a new random id of 16 characters (80 bits) read from r.
func NewID(r io.Reader) (string, error) {
	var b [10]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("store: new id: %w", err)
	}
	return idEncoding.EncodeToString(b[:]), nil
}
