package features

import "math"

type categoryCount struct {
	category, n int32
	// The category's priced views and the sum of their log prices.
	pricedViews int32
	logPrice    float64
}

// viewPrice gives a viewed item's category index and log price, if it has
// both. It runs for every shopper's views, followed or not, so it reads
// what the item's upsert worked out.
func (b *Builder) viewPrice(item string) (category int32, logPrice float64, ok bool) {
	i, known := b.itemIdx[item]
	if !known {
		return 0, 0, false
	}
	it := &b.items[i]
	if it.Category == "" || it.Price <= 0 {
		return 0, 0, false
	}
	return it.catIndex, it.logPrice, true
}

func (u *userAgg) addViewPrice(c int32, logPrice float64) {
	for i := range u.categories {
		if u.categories[i].category == c {
			u.categories[i].pricedViews++
			u.categories[i].logPrice += logPrice
			return
		}
	}
	u.categories = append(u.categories, categoryCount{category: c, pricedViews: 1, logPrice: logPrice})
}

// priceIndex is the mean, over the user's priced views, of how much
// dearer (in log price) the item was than what shoppers view in its
// category on average: below 0 for someone who looks at cheaper things
// than others do. The reference is the views' mean, not the catalogue's:
// popular items are viewed more, so a category's typical viewed price
// can sit well off its items' mean price, and a shopper who keeps to
// one category would otherwise inherit that gap.
func (b *Builder) priceIndex(u *userAgg) float64 {
	var sum, n float64
	for _, c := range u.categories {
		if c.pricedViews == 0 {
			continue
		}
		ref := b.catViewLogPrice[c.category]
		sum += c.logPrice - float64(c.pricedViews)*ref[0]/ref[1]
		n += float64(c.pricedViews)
	}
	return safeDiv(sum, n)
}

// category is the index of a category name, assigned on first sight.
func (b *Builder) category(name string) int32 {
	i, ok := b.catIdx[name]
	if !ok {
		i = int32(len(b.catIdx))
		b.catIdx[name] = i
	}
	return i
}

func (u *userAgg) countCategory(c int32) {
	for i := range u.categories {
		if u.categories[i].category == c {
			u.categories[i].n++
			return
		}
	}
	u.categories = append(u.categories, categoryCount{category: c, n: 1})
}

// topCategoryShare is the share of the user's interactions in their
// favourite category.
func (u *userAgg) topCategoryShare() float64 {
	var top, all int32
	for _, c := range u.categories {
		top = max(top, c.n)
		all += c.n
	}
	return safeDiv(float64(top), float64(all))
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return math.Min(1, float64(a)/float64(b))
}
