package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// BackupInfo describes a backup Backup wrote, read back from the copy itself.
type BackupInfo struct {
	Path          string   // absolute path of the copy
	Size          int64    // its size in bytes
	SchemaVersion int64    // the migrations the copy has
	KeySetVersion int64    // the key-set version it holds (store.KeyStore.KeySetVersion)
	KIDs          []string // every key it holds, revoked ones included, in ListKeys order
}

// Backup writes a consistent copy of the Keygate database at dbPath to dest
// while other processes (a running server, the CLI) go on reading and writing
// it. The copy is made with VACUUM INTO, which reads the whole database in one
// read transaction: in WAL mode that blocks no writer, and the copy is the
// database as of one instant, a valid SQLite file that a server can be started
// on as it is.
//
// Backup opens dbPath itself, read-write but without creating it and without
// migrating it (so unlike Open it never turns a mistyped path into a new, empty
// database, and a backup taken before an upgrade keeps the old schema); it
// writes nothing to it. An absent dbPath is an error wrapping fs.ErrNotExist.
//
// The copy is written beside dest under a temporary name with mode 0600 (it
// holds sealed private keys and client secret hashes), synced, checked (it
// must hold a Keygate key set) and only then put in place, so dest is either
// absent or a whole backup, also after a crash. An existing dest is an error
// wrapping fs.ErrExist unless overwrite; dest is never the database itself.
func Backup(ctx context.Context, dbPath, dest string, overwrite bool) (BackupInfo, error) {
	src, err := filepath.Abs(dbPath)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store/sqlite: backup %q: %w", dbPath, err)
	}
	dst, err := filepath.Abs(dest)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store/sqlite: backup to %q: %w", dest, err)
	}
	fail := func(err error) (BackupInfo, error) {
		return BackupInfo{}, fmt.Errorf("store/sqlite: backup %q to %q: %w", src, dst, err)
	}
	srcInfo, err := os.Stat(src)
	if err != nil {
		return fail(err)
	}
	if dstInfo, err := os.Stat(dst); err == nil && os.SameFile(srcInfo, dstInfo) {
		return fail(errors.New("that is the database itself"))
	}
	if !overwrite {
		if _, err := os.Lstat(dst); err == nil {
			return fail(fs.ErrExist)
		}
	}
	tmp, err := vacuumInto(ctx, src, dst)
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp) // gone already once put in place
	info, err := readBackup(ctx, tmp)
	if err != nil {
		return fail(err)
	}
	if err := publish(tmp, dst, overwrite); err != nil {
		return fail(err)
	}
	info.Path = dst
	return info, nil
}

// vacuumInto copies the database at src into a new file with mode 0600 beside
// dst, syncs it, and returns the new file's path.
func vacuumInto(ctx context.Context, src, dst string) (tmp string, err error) {
	db, err := sql.Open("sqlite", existingDSN(src))
	if err != nil {
		return "", err
	}
	defer db.Close()
	// Connect before creating anything, so that a file SQLite cannot open
	// fails here.
	if err := db.PingContext(ctx); err != nil {
		return "", err
	}

	b := make([]byte, 8)
	rand.Read(b)
	tmp = filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-"+hex.EncodeToString(b))
	// VACUUM INTO accepts an existing empty file and keeps its mode; SQLite
	// would create a missing one 0644 (less the umask).
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	f.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// existingDSN opens the database file at abs for reading and writing (SQLite
// needs write access to the WAL index of a WAL database) but never creates it,
// and leaves its journal mode and schema alone.
func existingDSN(abs string) string {
	return fileURI(abs, fmt.Sprintf("mode=rw&_pragma=busy_timeout(%d)", busyTimeoutMillis))
}

// readBackup opens the copy at path read-only and describes it; a copy that
// does not hold a Keygate key set is an error.
func readBackup(ctx context.Context, path string) (BackupInfo, error) {
	// immutable: nobody else has the file, so no locks and no WAL index.
	db, err := sql.Open("sqlite", fileURI(path, "mode=ro&immutable=1"))
	if err != nil {
		return BackupInfo{}, err
	}
	defer db.Close()
	var info BackupInfo
	var check string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil {
		return BackupInfo{}, fmt.Errorf("check the copy: %w", err)
	} else if check != "ok" {
		return BackupInfo{}, fmt.Errorf("the copy fails quick_check: %s", check)
	}
	if info.SchemaVersion, err = appliedVersion(ctx, db); err != nil {
		return BackupInfo{}, fmt.Errorf("the copy: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT version FROM key_set_meta WHERE id = 1`).Scan(&info.KeySetVersion); err != nil {
		return BackupInfo{}, fmt.Errorf("the copy has no key set (is this a Keygate database?): %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT kid FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("the copy's keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kid string
		if err := rows.Scan(&kid); err != nil {
			return BackupInfo{}, fmt.Errorf("the copy's keys: %w", err)
		}
		info.KIDs = append(info.KIDs, kid)
	}
	if err := rows.Err(); err != nil {
		return BackupInfo{}, fmt.Errorf("the copy's keys: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return BackupInfo{}, err
	}
	info.Size = fi.Size()
	return info, nil
}

// publish gives the finished copy tmp the name dst and syncs the directory.
// Without overwrite it links rather than renames, so that a dst created in
// the meantime is refused, not replaced.
func publish(tmp, dst string, overwrite bool) error {
	if overwrite {
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
	} else {
		if err := os.Link(tmp, dst); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fs.ErrExist
			}
			return err
		}
		os.Remove(tmp)
	}
	return syncDir(filepath.Dir(dst))
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a new name in dir durable. Some systems cannot sync a
// directory; there the rename or link is as durable as the system makes it.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
