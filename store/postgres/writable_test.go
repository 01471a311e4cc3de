package postgres

import "testing"

// TestCheckWritableReadOnly checks that the write probe fails where the
// server refuses writes (every transaction read-only, as on a hot standby)
// while reads keep working.
func TestCheckWritableReadOnly(t *testing.T) {
	dsn, _ := freshSchema(t)
	rw := openStore(t, dsn)
	if err := rw.CheckWritable(t.Context()); err != nil {
		t.Fatalf("CheckWritable: %v", err)
	}
	ro := openStore(t, withParam(t, dsn, "default_transaction_read_only", "on"))
	if err := ro.Ping(t.Context()); err != nil {
		t.Errorf("Ping on a read-only connection: %v", err)
	}
	if err := ro.CheckWritable(t.Context()); err == nil {
		t.Error("CheckWritable succeeded on a read-only connection")
	}
}
