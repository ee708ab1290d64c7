package inmem_test

import (
	"testing"

	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/registry/storetest"
)

func TestAcceptance(t *testing.T) { storetest.AcceptanceTest(t, inmem.New()) }
