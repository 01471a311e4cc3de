package columns

import (
	"errors"
	"fmt"

	"github.com/keygate/keygate/store"
)

// Rows is what Collect needs of a driver's result set: both *sql.Rows and
// pgx.Rows satisfy it.
type Rows interface {
	Next() bool
	Err() error
}

// Collect scans every row of rows with scan, in order, into a slice that is
// never nil. Errors are prefixed with the backend's prefix ("store/sqlite")
// and what, which names the listing. The caller closes rows.
func Collect[R Rows, T any](prefix, what string, rows R, scan func(R) (T, error)) ([]T, error) {
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", prefix, what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", prefix, what, err)
	}
	return out, nil
}

// OneRow finishes a read of one row that gave v and err: a driver's noRows
// (sql.ErrNoRows, pgx.ErrNoRows) becomes an error wrapping
// store.ErrNotFound, any other error is wrapped as is, both prefixed with
// the backend's prefix and what, which names the read.
func OneRow[T any](prefix, what string, v T, err, noRows error) (T, error) {
	var zero T
	switch {
	case errors.Is(err, noRows):
		return zero, fmt.Errorf("%s: %s: %w", prefix, what, store.ErrNotFound)
	case err != nil:
		return zero, fmt.Errorf("%s: %s: %w", prefix, what, err)
	}
	return v, nil
}
