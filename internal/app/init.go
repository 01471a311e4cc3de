package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/keygate/keygate/config"
)

// InitResult is what Init did.
type InitResult struct {
	Created   bool   // false: a database was already there, and Init changed nothing
	Database  string // where, with any password redacted
	ActiveKID string // the signing key Init created ("" if Created is false)
}

// Init creates the configured database, its schema and the first signing keys
// (`keygate init`). On an existing database it changes nothing and says so
// (Created false): running it twice is harmless.
func Init(ctx context.Context, cfg config.Config, log *slog.Logger) (InitResult, error) {
	res := InitResult{Database: describeDatabase(cfg)}
	d, err := OpenDeps(ctx, cfg, log)
	if err == nil {
		return res, d.Close()
	}
	if !errors.Is(err, ErrNoDatabase) {
		return res, err
	}
	if d, err = CreateDeps(ctx, cfg, log); err != nil {
		return res, err
	}
	defer d.Close()
	mgr, err := d.Manager(nil, nil)
	if err != nil {
		return res, Explain(err)
	}
	snap, err := firstReconcile(ctx, mgr, log)
	if err != nil {
		return res, Explain(err)
	}
	res.Created, res.ActiveKID = true, snap.Signing.KID
	return res, nil
}
