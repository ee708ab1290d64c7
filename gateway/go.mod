module github.com/promoai/promo/gateway

go 1.26.8
