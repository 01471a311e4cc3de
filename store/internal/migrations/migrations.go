// Package migrations reads a backend's embedded schema migrations and checks
// their numbering, so store/sqlite and store/postgres share one rule for what a
// well-formed migration set is; each backend applies them in its own dialect.
package migrations

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
)

// name is the form of a migration file name: a zero-padded version number
// (from 1, no gaps), an underscore, and a description.
var name = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// Migration is one schema version's SQL.
type Migration struct {
	Version int64
	Name    string
	SQL     string
}

// Load reads the migrations in dir of fsys in version order and checks they
// are numbered 1, 2, 3, ... without gaps, so a misnamed file is caught by the
// tests rather than silently skipped in production.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries { // ReadDir sorts by name, so by version
		m := name.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("embedded migration %q: name is not NNNN_description.sql", e.Name())
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("embedded migration %q: version: %w", e.Name(), err)
		}
		if want := int64(len(ms) + 1); v != want {
			return nil, fmt.Errorf("embedded migration %q: version %d, want %d (versions must run 1, 2, 3, ... without gaps or repeats)", e.Name(), v, want)
		}
		body, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("embedded migration %q: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(body)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no embedded migrations")
	}
	return ms, nil
}
