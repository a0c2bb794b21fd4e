package modelgen

// splitMix64 is Steele, Lea and Flood's SplitMix64 generator. It is written
// out here rather than taken from math/rand so that the weight stream, and
// therefore the bytes of every generated model, can never change under a Go
// upgrade.
type splitMix64 struct{ state uint64 }

func (r *splitMix64) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform returns a float32 in [-1, 1). It uses the top 24 bits, which a
// float32 mantissa holds exactly, so the conversion involves no rounding.
func (r *splitMix64) uniform() float32 {
	u := float32(r.next()>>40) * (1.0 / (1 << 24))
	return 2*u - 1
}
