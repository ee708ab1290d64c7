// Package api implements the promo.v1 gRPC services on top of the hot-loaded
// model set, the registry and the event log.
package api

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/eventlog"
)

// ToStatus maps internal errors onto gRPC status codes. It is the one place
// this mapping happens; grpc-gateway then turns codes into HTTP statuses.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, registry.ErrInvalid), errors.Is(err, eventlog.ErrInvalidEvent):
		code = codes.InvalidArgument
	case errors.Is(err, registry.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, registry.ErrConflict):
		code = codes.Aborted
	case errors.Is(err, registry.ErrCorrupt), errors.Is(err, registry.ErrPrecondition):
		code = codes.FailedPrecondition
	case errors.Is(err, registry.ErrUnavailable):
		code = codes.Unavailable
	}
	switch code {
	case codes.Internal:
		return &hiddenError{status.New(code, "internal error; the server log has the details"), err}
	case codes.Unavailable:
		return &hiddenError{status.New(code, "the store is unavailable; retry later (the server log has the details)"), err}
	}
	return status.Error(code, err.Error())
}

// hiddenError answers callers with a status that leaves out what went
// wrong inside (paths, hosts, stack traces: the caller can act on none of
// it), while Error and Unwrap keep it for the server's log.
type hiddenError struct {
	st    *status.Status
	cause error
}

func (e *hiddenError) Error() string              { return e.st.Message() + ": " + e.cause.Error() }
func (e *hiddenError) Unwrap() error              { return e.cause }
func (e *hiddenError) GRPCStatus() *status.Status { return e.st }

func invalidf(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

func notLoaded(model string) error {
	return status.Errorf(codes.Unavailable, "model %q is not loaded yet: the server is waiting for a promoted version (see /v1/status)", model)
}
