package columns

// UserCount is one row of a per-user count (user_id, COUNT(*)).
type UserCount struct {
	UserID string
	N      int
}

// ScanUserCount reads a (user_id, count) row with the driver's scan.
func ScanUserCount(scan func(dest ...any) error) (UserCount, error) {
	var c UserCount
	err := scan(&c.UserID, &c.N)
	return c, err
}

// CountsByUser turns per-user count rows into a map; never nil.
func CountsByUser(rows []UserCount) map[string]int {
	m := make(map[string]int, len(rows))
	for _, r := range rows {
		m[r.UserID] = r.N
	}
	return m
}
