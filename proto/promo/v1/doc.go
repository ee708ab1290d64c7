// Package promov1 holds the generated Go, gRPC and grpc-gateway bindings of
// the promo.v1 API (see promo.proto for the contract and its compatibility
// rules) and the OpenAPI document of its REST form.
//
// Regenerate with `make proto` from the repository root; `make lint` fails
// when the committed code differs from what the pinned generators produce.
package promov1
