package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// decodeJSON decodes one JSON value from r into v. It is the one place
// response bodies are decoded.
func decodeJSON(r io.Reader, v any) error {
	if err := json.NewDecoder(r).Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return ErrEmptyBody
		}
		if errors.Is(err, ErrResponseTooLarge) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrInvalidJSON, err)
	}
	return nil
}

// readAllCapped reads an error body, at most errorBodyLimit bytes of it.
func readAllCapped(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, errorBodyLimit))
}
