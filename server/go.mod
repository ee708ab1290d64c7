module github.com/promoai/promo/server

go 1.26.8
