package etcd

// Replays returns how many replays of etcd's history s has run.
func Replays(s *Store) int64 { return s.replays.Load() }
