package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/server/ingest"
)

// MaxIngestBatch bounds one Ingest request.
const MaxIngestBatch = 5000

// Events implements the event service.
type Events struct {
	promov1.UnimplementedEventServiceServer
	Writer *ingest.Writer
	Bucket registry.Bucket
	Now    func() time.Time
	// Pseudonyms, when set, replaces user ids before anything is stored.
	Pseudonyms *eventlog.Pseudonymizer
	// Erased, when set, learns of erasures at once (serving stops using
	// the user's profile immediately).
	Erased *Erasures
}

var eventTypes = map[promov1.EventType]string{
	promov1.EventType_EVENT_TYPE_VIEW:           eventlog.TypeView,
	promov1.EventType_EVENT_TYPE_SEARCH:         eventlog.TypeSearch,
	promov1.EventType_EVENT_TYPE_ADD_TO_CART:    eventlog.TypeAddToCart,
	promov1.EventType_EVENT_TYPE_PURCHASE:       eventlog.TypePurchase,
	promov1.EventType_EVENT_TYPE_PROMO_EXPOSURE: eventlog.TypePromoExposure,
	promov1.EventType_EVENT_TYPE_PROMO_REDEEM:   eventlog.TypePromoRedeem,
	promov1.EventType_EVENT_TYPE_USER_UPSERT:    eventlog.TypeUserUpsert,
	promov1.EventType_EVENT_TYPE_ITEM_UPSERT:    eventlog.TypeItemUpsert,
}

// FromProto converts an API event to the event-log form.
func FromProto(e *promov1.Event) eventlog.Event {
	out := eventlog.Event{
		ID: e.GetEventId(), Type: eventTypes[e.GetType()], User: e.GetUserId(), Item: e.GetItemId(),
		Session: e.GetSessionId(), Query: e.GetQuery(), Quantity: e.GetQuantity(), UnitPrice: e.GetUnitPrice(),
		Offer: e.GetOfferId(), Arm: e.GetExperimentArm(), Propensity: e.GetPropensity(), Decision: e.GetDecisionId(),
		ModelVersion: e.GetModelVersion(), Order: e.GetOrderId(), Campaign: e.GetCampaignId(),
	}
	if out.Type == "" {
		out.Type = strings.ToLower(strings.TrimPrefix(e.GetType().String(), "EVENT_TYPE_"))
	}
	if e.GetTime() != nil {
		out.Time = e.GetTime().AsTime()
	}
	if u := e.GetUser(); u != nil {
		out.UserAttrs = &eventlog.UserAttrs{Age: u.GetAge(), Gender: u.GetGender(), Location: u.GetLocation(), Extra: u.GetExtra()}
	}
	if it := e.GetItem(); it != nil {
		out.ItemAttrs = &eventlog.ItemAttrs{Category: it.GetCategory(), Price: it.GetPrice(), Cost: it.GetCost(), Title: it.GetTitle(), Extra: it.GetExtra()}
	}
	return out
}

// Ingest implements promov1.EventServiceServer.
func (s *Events) Ingest(ctx context.Context, req *promov1.IngestRequest) (*promov1.IngestResponse, error) {
	n := len(req.GetEvents())
	if n == 0 {
		return nil, invalidf("the batch is empty")
	}
	if n > MaxIngestBatch {
		return nil, invalidf("%d events in one request; send at most %d", n, MaxIngestBatch)
	}
	now := s.Now()
	resp := &promov1.IngestResponse{}
	accepted := make([]eventlog.Event, 0, n)
	inBatch := make(map[string]bool, n)
	for i, pe := range req.GetEvents() {
		e := FromProto(pe)
		if err := e.Validate(now); err != nil {
			resp.Rejected++
			resp.Errors = append(resp.Errors, &promov1.EventError{Index: int32(i), EventId: safeID(e.ID), Message: strings.TrimPrefix(err.Error(), "invalid event: ")})
			continue
		}
		s.Pseudonyms.Apply(&e)
		if s.Erased.Has(e.User) {
			resp.Rejected++
			resp.Errors = append(resp.Errors, &promov1.EventError{Index: int32(i), EventId: safeID(e.ID), Message: "the user was erased: their events are not stored"})
			continue
		}
		if inBatch[e.ID] || s.Writer.Seen(e.ID) {
			resp.Duplicate++
			continue
		}
		inBatch[e.ID] = true
		accepted = append(accepted, e)
	}
	if err := s.Writer.Append(ctx, accepted); err != nil {
		switch {
		case errors.Is(err, ingest.ErrFull):
			return nil, status.Error(codes.ResourceExhausted, err.Error())
		case errors.Is(err, ingest.ErrClosed):
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		// Whatever the store said, the events were not stored: the caller
		// should retry, not give up.
		return nil, ToStatus(fmt.Errorf("%w: store events: %v", registry.ErrUnavailable, err))
	}
	resp.Accepted = int32(len(accepted))
	return resp, nil
}

func safeID(id string) string {
	if !utf8.ValidString(id) || len(id) > MaxIDLen {
		return ""
	}
	return id
}

// EraseUser implements promov1.EventServiceServer.
func (s *Events) EraseUser(ctx context.Context, req *promov1.EraseUserRequest) (*promov1.EraseUserResponse, error) {
	id := req.GetUserId()
	if id == "" || len(id) > MaxIDLen || !utf8.ValidString(id) {
		return nil, invalidf("user_id must be 1 to %d bytes of UTF-8", MaxIDLen)
	}
	now := s.Now().UTC()
	pid := s.Pseudonyms.ID(id)
	if err := eventlog.Erase(ctx, s.Bucket, eventlog.Erasure{User: pid, Time: now, Reason: req.GetReason()}); err != nil {
		if !errors.Is(err, eventlog.ErrInvalidEvent) && !errors.Is(err, registry.ErrUnavailable) {
			err = fmt.Errorf("%w: record the erasure: %v", registry.ErrUnavailable, err)
		}
		return nil, ToStatus(err)
	}
	if s.Erased != nil {
		s.Erased.Add(pid)
	}
	return &promov1.EraseUserResponse{UserId: id, ErasedAt: timestamppb.New(now)}, nil
}
