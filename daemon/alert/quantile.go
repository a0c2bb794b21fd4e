package alert

import (
	"math"
	"sort"
)

// bucket is one classic histogram bucket: the count of observations at or
// below upper.
type bucket struct {
	upper float64
	count float64
}

// bucketQuantile is Prometheus' histogram_quantile over classic buckets,
// case for case: linear interpolation inside the bucket that holds the
// rank, 0 as the lower bound of the first bucket when it is positive, the
// second-highest bound when the rank falls into +Inf, NaN without a +Inf
// bucket, with fewer than two buckets or with no observations. Counts are
// made monotonic first, as Prometheus does, since rates of separately
// scraped buckets can disagree slightly. bs is sorted in place.
func bucketQuantile(q float64, bs []bucket) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(+1)
	}
	if len(bs) == 0 {
		return math.NaN()
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].upper < bs[j].upper })
	if !math.IsInf(bs[len(bs)-1].upper, +1) {
		return math.NaN()
	}
	// Merge buckets with the same bound.
	n := 0
	for i := 1; i < len(bs); i++ {
		if bs[i].upper == bs[n].upper {
			bs[n].count += bs[i].count
		} else {
			n++
			bs[n] = bs[i]
		}
	}
	bs = bs[:n+1]
	// Float noise: a count within 1e-12 of the previous one is taken as equal.
	prev := bs[0].count
	for i := 1; i < len(bs); i++ {
		cur := bs[i].count
		if d := math.Abs(cur - prev); d != 0 && d/cur <= 1e-12 {
			bs[i].count = prev
		} else if d != 0 {
			prev = cur
		}
	}
	top := bs[0].count
	for i := 1; i < len(bs); i++ {
		if bs[i].count < top {
			bs[i].count = top
		} else {
			top = bs[i].count
		}
	}
	if len(bs) < 2 {
		return math.NaN()
	}
	total := bs[len(bs)-1].count
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	b := sort.Search(len(bs)-1, func(i int) bool { return bs[i].count >= rank })
	if b == len(bs)-1 {
		return bs[len(bs)-2].upper
	}
	if b == 0 && bs[0].upper <= 0 {
		return bs[0].upper
	}
	start, end, count := 0.0, bs[b].upper, bs[b].count
	if b > 0 {
		start = bs[b-1].upper
		count -= bs[b-1].count
		rank -= bs[b-1].count
	}
	return start + (end-start)*(rank/count)
}
