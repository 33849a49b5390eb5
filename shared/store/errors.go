package store

import (
	"context"
	"errors"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsTransient is the package's IsTransient, for the stages that take the
// store through an interface.
func (s *Store) IsTransient(err error) bool { return IsTransient(err) }

// IsTransient reports whether err is a database failure that passes by
// itself: the server unreachable, restarting or shutting down, a dropped
// connection, too many connections, a serialization failure or deadlock.
// Retrying the same work later may succeed. Errors of the request itself
// (a different election, invalid data) are not transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "08": // connection exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutdown, crash, cannot connect now
			return true
		case pgErr.Code == "53300": // too many connections
			return true
		case pgErr.Code == "40001", pgErr.Code == "40P01": // serialization failure, deadlock
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	// pgx reports a connection that broke mid-query as "conn closed" or an
	// unexpected EOF wrapped in its own types.
	return errors.Is(err, net.ErrClosed) || isEOF(err)
}

func isEOF(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "unexpected EOF" || e.Error() == "EOF" || e.Error() == "conn closed" {
			return true
		}
	}
	return false
}
