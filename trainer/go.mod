module github.com/promoai/promo/trainer

go 1.26.8
